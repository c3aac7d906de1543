"""Request latency of the app through ``gradio_client`` against the direct library call.

For each case, in the same run and interleaved (so that machine load hits all alike):

* **morph()**: ``morphlib.morph`` on the image already fitted to the model, with the
  settings the app uses for the case (numerics only);
* **library**: the same morph through :class:`morphlib.app.engine.Engine` in this process
  (decode the file, fit it, gradient, morph, and the renders the app returns: the annotated
  frames and their MP4, the change map, the plot's data; the GIF is made only when asked
  for) — the direct library call for the app's output;
* **app**: ``client.predict(..., api_name="/morph")`` against ``python app.py`` running in
  another process: upload, queue, the same work, and downloading the returned files.

The app's overhead is ``app / library − 1`` (goal: under 20 %).  Both sides compute the
gradient every time (the app runs with ``MORPHLIB_APP_GRADIENT_CACHE=0``).  Cases: the
bundled ``digits-cnn-robust`` (32 x 32) with the app's default settings (a step-local path,
one gradient per frame) and with the paper's (csp-phase, frozen: one gradient), and a
ResNet-50 with random weights at 224 x 224 with the paper's settings (served as a Hub
model from a Hub cache laid out in a temporary folder, offline).
A second table splits the app's time into the server's own work (``Engine.morph``'s
``seconds`` in the returned summary, measured inside the server) and the rest: serving
(upload, queue, Gradio's pre- and post-processing) and transport (downloading the files).
A third table measures the floor of any request through ``gradio_client``, on requests
that do almost no work: ``/models`` (JSON in and out), ``/predict`` (adds an image upload;
one forward pass of the digits model) and ``/frame`` (adds one file download: a frame of
the last morph).  A ``/morph`` request pays the upload, the queue round trip and three
downloads (video, frame, change map) on top of its work.
A last table clicks *Morph* in a real headless Chromium (Debian's, driven by Playwright) on
the same server, for the start page as it opens and for each case, and times in the page's
own clock until Gradio has set the outputs: what a user waits for, without gradio_client's
per-request HTTP client (see ``CLICK``).
Times are medians over ``--repeats`` runs after one warm-up.  Run::

    python benchmarks/bench_app.py [--repeats 5] [--threads 1] [--write /tmp/app.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the browser the app's tests drive, with the same flags

from _app_server import CHROMIUM, CHROMIUM_FLAGS, free_port  # noqa: E402

from morphlib import morph  # noqa: E402
from morphlib.app.engine import (  # noqa: E402
    Engine,
    GradientCache,
    ModelRegistry,
    OutputDirs,
    morph_config,
    morph_strength,
)
from morphlib.app.settings import Settings  # noqa: E402
from morphlib.imaging import fit_to_size, load_image  # noqa: E402
from morphlib.zoo.manifest import DEFAULT_MANIFEST  # noqa: E402

FRAMES = 16
COMMIT = "0123456789abcdef0123456789abcdef01234567"
# The paper's setting: one gradient, extrapolated (the cheapest morph).  The app's default
# (settings.py, from morphlib.config.RECOMMENDED) walks a step-local path, one gradient per frame.
PAPER = dict(family="csp-phase", regime="frozen", smooth_sigma=0.0)
# (label, model id, example file, target, L2 budget, settings besides the app's defaults)
DIGIT, CAT = "assets/examples/digit-3.png", "assets/examples/cat.jpg"
MNIST = "assets/examples/mnist-3.png"
AUTO = {"mode": "auto"}  # the app's default mode, cap and stopping rule
CASES = [
    # the page's default morph: the study's MNIST driver, auto strength to its stopping rule
    ("mnist-cnn-robust-eps3, 28x28, app default (auto)", "mnist-cnn-robust-eps3", MNIST, "8", 0.0, AUTO),
    ("digits-cnn-robust, 32x32, app default", "digits-cnn-robust", DIGIT, "9", 4.0, {}),
    ("digits-cnn-robust, 32x32, csp-phase frozen", "digits-cnn-robust", DIGIT, "9", 4.0, PAPER),
    ("ResNet-50 (random weights), 224x224, csp-phase frozen", "resnet50-random", CAT, "281", 10.0, PAPER),
]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def hub_with_random_resnet(folder: Path) -> Path:
    """A Hub cache holding a random-weight timm ResNet-50, and a manifest serving it; returns the manifest."""
    import timm

    torch.manual_seed(0)
    net = timm.create_model("resnet50", pretrained=False, num_classes=1000).eval()
    repo = folder / "hub" / "models--bench--resnet50-random"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    timm.models.save_for_hf(net, str(snapshot), safe_serialization=True)
    zoo = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    # the start page's model (see START) and the bundled cases' model
    bundled = [m for m in zoo["models"] if m["id"] in ("mnist-cnn-robust-eps3", "digits-cnn-robust")]
    resnet = next(m for m in zoo["models"] if m["id"] == "resnet50")
    resnet = dict(
        resnet, id="resnet50-random", name="ResNet-50 (random weights)", weights="bench/resnet50-random"
    )
    manifest = folder / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"models": [*bundled, resnet]}, sort_keys=False))
    return manifest


def start_app(manifest: Path, env: dict, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "app.py"),
                "--port",
                str(port),
                "--zoo",
                str(manifest),
                "--device",
                "cpu",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"the app did not start within 120 s: {log.read_text()}")


def settings_of(model_id: str, target: str, budget: float, preset: dict) -> Settings:
    given = {"mode": "budget", "strength": budget, **preset}
    return Settings(model=model_id, target=target, frames=FRAMES, **given)


def bench_case(label, model_id, image, target, budget, preset, engine, clients, repeats) -> dict:
    from gradio_client import handle_file

    path = str(ROOT / image)
    settings = settings_of(model_id, target, budget, preset)
    s = settings.validated()
    config, strength = morph_config(s), None  # the app's morph, as a library call
    model = engine.registry.load(model_id)
    size = tuple(engine.registry.choice(model_id).entry.input_size)
    x = fit_to_size(load_image(path).image, size)[0]
    strength = morph_strength(s, x.numel())

    server: list[dict] = []  # the server's own times per default-client request (summary["seconds"])

    def app_call(client, record: bool = False):
        outputs = client.predict(
            image=handle_file(path),
            model=model_id,
            target=target,
            frames=FRAMES,
            **{"mode": "budget", "strength": budget, **preset},
            api_name="/morph",
        )
        if record:
            server.append(outputs[6]["seconds"])

    steps = {
        "morph": lambda: morph(model, x, target, config, strength, frames=FRAMES, progress=False),
        "library": lambda: engine.morph(path, settings),
        "app": lambda: app_call(clients[0], record=True),
        "app_local": lambda: app_call(clients[1]),
    }
    for fn in steps.values():  # warm-up: loads the model in both processes, fills filter caches
        fn()
    runs: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for key, fn in steps.items():
            runs[key].append(timed(fn))
    med = {k: statistics.median(v) for k, v in runs.items()}
    server = server[1:]  # after the warm-up
    work = [s["morph"] + s["render"] for s in server]
    return dict(
        name=label,
        **med,
        server=statistics.median(work),
        server_morph=statistics.median(s["morph"] for s in server),
        server_render=statistics.median(s["render"] for s in server),
        server_render_cpu=statistics.median(s["render_cpu"] for s in server),
        render_share=statistics.median(s["render"] / s["morph"] for s in server),
        serving=statistics.median(a - w for a, w in zip(runs["app"], work, strict=True)),
        overhead=med["app"] / med["library"] - 1,
        overhead_local=med["app_local"] / med["library"] - 1,
        vs_morph=med["app"] / med["morph"],
    )


def bench_floor(client, repeats: int) -> dict[str, float]:
    """Latency of near-empty requests: the fixed cost of a request through ``gradio_client``."""
    from gradio_client import handle_file

    model_id, image, target, budget, preset = CASES[0][1:]
    client.predict(
        image=handle_file(str(ROOT / image)),
        model=model_id,
        target=target,
        mode="budget",
        strength=budget,
        frames=FRAMES,
        api_name="/morph",
    )  # the session's morph, which /frame shows
    steps = {
        "/models": lambda: client.predict(api_name="/models"),
        "/predict": lambda: client.predict(handle_file(str(ROOT / image)), model_id, api_name="/predict"),
        "/frame": lambda: client.predict(FRAMES - 1, api_name="/frame"),
    }
    for fn in steps.values():
        fn()
    runs: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for key, fn in steps.items():
            runs[key].append(timed(fn))
    return {k: statistics.median(v) for k, v in runs.items()}


# Clicks *Morph* and resolves, in the page's own clock, when the video's status overlay (Gradio's
# ``.wrap.default``) has shown the request running and is hidden again: Gradio has then set the
# outputs on the page.  The video's URL cannot serve as the signal: Gradio names served files by
# their content's hash, and the same morph twice is the same file (which the browser then has
# already, so fetching and decoding the MP4 are not in this time).  Rejects after 120 s.
CLICK = """() => new Promise((resolve, reject) => {
    const tracker = document.querySelector('#video > .wrap.default');
    let busy = false;
    const start = performance.now();
    const watch = new MutationObserver(() => {
        if (!tracker.classList.contains('hide')) busy = true;
        else if (busy) { watch.disconnect(); resolve((performance.now() - start) / 1000); }
    });
    watch.observe(tracker, {attributes: true, attributeFilter: ['class']});
    setTimeout(() => { watch.disconnect(); reject(new Error('no result within 120 s')); }, 120000);
    document.querySelector('#run').click();
})"""
SHOWN = "() => document.querySelector('#video video')?.readyState >= 2"
#: The page as it opens, with its defaults: a real MNIST digit, the robust MNIST model, auto strength.
START = "the start page: mnist-cnn-robust-eps3, 28x28, app default, auto strength"


def bench_browser(url: str, repeats: int) -> dict[str, float] | None:
    """Click to shown outputs in a real headless Chromium, per case: the page opens on the
    case's permalink (which runs it once, the warm-up), then *Morph* is clicked ``repeats``
    times.  None when Chromium or Playwright is missing."""
    if not Path(CHROMIUM).exists():
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    pages = {START: url}  # the start page morphs on the first click (the warm-up)
    for label, model_id, image, target, budget, preset in CASES:
        s = settings_of(model_id, target, budget, preset)
        pages[label] = replace(s, example=Path(image).stem).link(url)  # morphs on opening
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            for label, link in pages.items():
                page = browser.new_page(viewport={"width": 1400, "height": 1600})
                page.set_default_timeout(120_000)
                page.goto(link)
                if label == START:
                    page.locator("#top5").get_by_text("3", exact=True).first.wait_for()
                    page.evaluate(CLICK)
                page.wait_for_function(SHOWN)
                out[label] = statistics.median(page.evaluate(CLICK) for _ in range(repeats))
                page.close()
        finally:
            browser.close()
    return out


def bench_renders(engine, repeats: int) -> list[dict]:
    """The app's render of a morph now, against rendering everything at once as the app did
    before (MP4 with x264's default preset, GIF, matplotlib plot as PNG, change map), on the
    same morph in this process, interleaved: wall and CPU seconds (this thread and ffmpeg)."""
    from PIL import Image

    from morphlib.app.engine import _render_cpu, video_side
    from morphlib.render import annotated_frames, change_map, probability_plot, write_gif, write_mp4

    rows = []
    for label, model_id, image, target, budget, preset in CASES:
        s = settings_of(model_id, target, budget, preset)
        out = engine.morph(str(ROOT / image), s)
        r, folder = out.result, out.video.parent

        def now(s=s, path=str(ROOT / image)):  # Engine.morph, which times its own render
            return engine.morph(path, s).summary["seconds"]

        def eager(r=r, folder=folder):
            wall, cpu = time.perf_counter(), _render_cpu()
            frames = annotated_frames(r, min_side=video_side(r))
            write_mp4(frames, folder / "eager.mp4", preset="medium")
            write_gif(frames, folder / "eager.gif")
            probability_plot(r, folder / "eager.png")
            Image.fromarray(change_map(r)).save(folder / "eager-change.png")
            return {"render": time.perf_counter() - wall, "render_cpu": _render_cpu() - cpu}

        runs: dict[str, list[dict]] = {"now": [], "eager": []}
        eager()
        for _ in range(repeats):
            runs["now"].append(now())
            runs["eager"].append(eager())
        med = {
            k: {m: statistics.median(x[m] for x in v) for m in ("render", "render_cpu")}
            for k, v in runs.items()
        }
        rows.append(dict(name=label, **{f"{k}_{m}": v[m] for k, v in med.items() for m in v}))
    return rows


def renders_table(rows: list[dict]) -> str:
    lines = [
        "| case | render now: wall (s) | CPU (s) | everything at once (MP4 default preset, GIF, plot PNG): "
        "wall (s) | CPU (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['now_render']:.3f} | {r['now_render_cpu']:.3f} | {r['eager_render']:.3f} "
            f"| {r['eager_render_cpu']:.3f} |"
        )
    return "\n".join(lines)


def split_table(rows: list[dict]) -> str:
    lines = [
        "| case | library (s) | app (s) | of which the server's work (s) | serving + transport (s) "
        "| server's work / library |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['library']:.3f} | {r['app']:.3f} | {r['server']:.3f} | {r['serving']:.3f} "
            f"| {r['server'] / r['library']:.2f}x |"
        )
    return "\n".join(lines)


def goals_table(rows: list[dict]) -> str:
    """The latency goals: rendering <= 0.15 s (bundled models) and <= 20 % of the morph (ResNet-50),
    a whole /morph request <= 0.5 s on a bundled model."""
    lines = [
        "| case | morph, in the server (s) | render, in the server (s) | render's CPU time (s) "
        "| render / morph | serving + transport (s) | whole /morph request (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['server_morph']:.3f} | {r['server_render']:.3f} "
            f"| {r['server_render_cpu']:.3f} "
            f"| {100 * r['render_share']:.0f} % | {r['serving']:.3f} | {r['app']:.3f} |"
        )
    return "\n".join(lines)


def floor_table(floors: dict[str, dict[str, float]]) -> str:
    lines = [
        "| client | /models: JSON only (s) | /predict: + upload (s) | /frame: + 1 download (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, f in floors.items():
        lines.append(f"| {name} | {f['/models']:.3f} | {f['/predict']:.3f} | {f['/frame']:.3f} |")
    return "\n".join(lines)


def browser_table(browser: dict[str, float] | None, rows: list[dict]) -> str:
    if browser is None:
        return f"(not measured: needs Playwright and Chromium at {CHROMIUM})"
    lines = [
        "| case | browser: click to outputs shown (s) | gradio_client, default (s) "
        "| gradio_client, ssl_verify=False (s) |",
        "|---|---:|---:|---:|",
    ]
    lines.append(f"| {START} | {browser[START]:.3f} | | |")
    for r in rows:
        lines.append(f"| {r['name']} | {browser[r['name']]:.3f} | {r['app']:.3f} | {r['app_local']:.3f} |")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    lines = [
        "| case | morph() (s) | library: morph + renders (s) | app via gradio_client (s) "
        "| app overhead vs library | app, client ssl_verify=False (s) | overhead | app / morph() |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['morph']:.3f} | {r['library']:.3f} | {r['app']:.3f} "
            f"| {100 * r['overhead']:+.1f} % | {r['app_local']:.3f} | {100 * r['overhead_local']:+.1f} % "
            f"| {r['vs_morph']:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads, here and in the app")
    parser.add_argument("--write", default=None, help="also write the table (markdown) to this file")
    parser.add_argument("--renders-only", action="store_true", help="only the render table, no server")
    args = parser.parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        folder = Path(tmp)
        manifest = hub_with_random_resnet(folder)
        env = dict(
            os.environ,
            HF_HUB_CACHE=str(folder / "hub"),
            HF_HUB_OFFLINE="1",
            OMP_NUM_THREADS=str(threads),
            MORPHLIB_APP_GRADIENT_CACHE="0",
            GRADIO_ANALYTICS_ENABLED="False",
        )
        os.environ.update(HF_HUB_CACHE=env["HF_HUB_CACHE"], HF_HUB_OFFLINE="1")
        if args.renders_only:
            engine = Engine(
                ModelRegistry(manifest, device="cpu"), cache=GradientCache(), outputs=OutputDirs()
            )
            load = os.getloadavg()[0]
            print(
                f"load average {load:.1f}; medians of {args.repeats}\n"
                + renders_table(bench_renders(engine, args.repeats))
            )
            return
        proc, url = start_app(manifest, env, folder / "app.log")
        try:
            engine = Engine(
                ModelRegistry(manifest, device="cpu"), cache=GradientCache(0), outputs=OutputDirs()
            )
            clients = [
                Client(url, verbose=False, download_files=str(folder / "downloads")),
                Client(url, verbose=False, download_files=str(folder / "downloads"), ssl_verify=False),
            ]
            load_before = os.getloadavg()[0]
            rows = [bench_case(*case, engine, clients, args.repeats) for case in CASES]
            floors = {
                name: bench_floor(client, args.repeats)
                for name, client in zip(("default", "ssl_verify=False"), clients, strict=True)
            }
            renders = bench_renders(engine, args.repeats)
            browser = bench_browser(url, args.repeats)
            load_after = os.getloadavg()[0]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    info = (
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {threads} torch threads "
        f"(each process); torch {torch.__version__}; load average {load_before:.1f} before, "
        f"{load_after:.1f} after; {FRAMES}-frame morphs at a fixed L2 budget, with each case's settings; "
        f"medians of {args.repeats} runs"
    )
    text = (
        "Where a `/morph` request's time goes (medians; morph and render are `Engine.morph`'s own "
        "`seconds`, measured inside the server; serving + transport is the rest of the request):\n\n"
        + goals_table(rows)
        + "\n\nThe app against the direct library call:\n\n"
        + table(rows)
        + "\n\nWhere an app request's time goes (default client; the server's work is the time "
        + "`Engine.morph` reports in the summary, measured inside the server):\n\n"
        + split_table(rows)
    )
    text += (
        "\n\nThe render alone, in this process, against rendering everything at once (same morphs, "
        "interleaved):\n\n" + renders_table(renders)
    )
    text += "\n\nFloor of a request (near-empty requests, same runs):\n\n" + floor_table(floors)
    text += "\n\nIn a browser (headless Chromium, same server): click *Morph* until the outputs are shown\n\n"
    text += browser_table(browser, rows)
    print(info)
    print(text)
    if args.write:
        Path(args.write).write_text(f"# App latency benchmark\n\n{info}\n\n{text}\n")


if __name__ == "__main__":
    main()
