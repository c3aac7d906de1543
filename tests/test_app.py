"""The app launched for real; every named endpoint called through ``gradio_client``.

One server for the module, bundled models only, small frame counts.
"""

from __future__ import annotations

import io
import json
import shutil
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import imageio_ffmpeg
import numpy as np
import pytest
from _app_server import ROOT, app_process, running_app, wait_for_log
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from morphlib.app import handlers
from morphlib.app.examples import example_by_name, load_examples
from morphlib.app.settings import Settings
from morphlib.stopping import CHOICES

DIGIT = str(example_by_name("digit-3").file)
MODEL = "digits-cnn-robust"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("app"), keep_outputs=6) as (app, url, engine):
        yield app, url, engine


@pytest.fixture(scope="module")
def client(server):
    return Client(server[1], verbose=False, download_files=str(server[2].outputs.root.parent / "downloads"))


def morph(client, **changes):
    kwargs = dict(image=handle_file(DIGIT), model=MODEL, target="9", mode="budget", strength=3.0, frames=5)
    kwargs.update(changes)
    return client.predict(**kwargs, api_name="/morph")


def mp4_frames(path) -> int:
    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


def test_every_endpoint_is_named(client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {
        "/models",
        "/predict",
        "/morph",
        "/frame",
        "/compare",
        "/atlas",
        "/permalink",
        "/restore",
    } <= names


def test_models_lists_bundled_and_downloadable(client):
    models = {m["id"]: m for m in client.predict(api_name="/models")}
    assert models[MODEL]["available"] and models[MODEL]["location"] == "bundled"
    assert (
        models["resnet50-l2-eps3"]["location"] == "download" and not models["resnet50-l2-eps3"]["available"]
    )
    assert "downloads on first use" in models["resnet50-l2-eps3"]["label"]


def test_predict_gives_top5_and_suggests_the_runner_up(client):
    top5, target, message = client.predict(handle_file(DIGIT), MODEL, api_name="/predict")
    confidences = top5["confidences"]
    assert top5["label"] == "3" and len(confidences) == 5
    suggested = target["value"]
    assert suggested == confidences[1]["label"] and f"suggested target: **{suggested}**" in message
    assert [choice[1] for choice in target["choices"]] == [str(d) for d in range(10)]


def test_morph_returns_a_video_with_the_requested_frames_and_a_rising_target(client):
    video, gif, scrubber, frame, plot, change, summary, message, link, budget = morph(client, frames=6)
    assert Path(video).suffix == ".mp4" and mp4_frames(video) == 2 * 6 - 2  # forward and back
    assert gif is None  # made when asked for
    with Image.open(client.predict(api_name="/gif")) as g:
        assert g.n_frames == 2 * 6 - 2
    for path in (frame, change):
        assert Path(path).is_file() and Path(path).stat().st_size > 1000
    assert plot["columns"] == ["α", "probability", "class"]  # the plot's data, drawn by the browser
    assert {row[2] for row in plot["data"]} == {"source", "target"} and len(plot["data"]) == 2 * 6
    frames = summary["frames"]
    assert len(frames) == 6 and summary["target"]["label"] == "9"
    assert frames[-1]["p_target"] > frames[0]["p_target"]
    assert frames[-1]["l2"] == pytest.approx(3.0, rel=0.01) and budget == pytest.approx(
        frames[-1]["l2"], rel=1e-3
    )
    assert scrubber["value"] == scrubber["maximum"] == 6  # frames counted from 1, as in the video
    assert "3 → 9" in message and "model=digits-cnn-robust" in link and "example=digit-3" in link


def test_new_strength_or_frame_count_reuses_the_gradient(client):
    first = morph(client, target="5", frames=4)[6]
    second = morph(client, target="5", frames=7, strength=5.0)[6]
    assert first["gradient_cached"] is False and second["gradient_cached"] is True
    assert len(second["frames"]) == 7


def test_frame_scrubber_shows_frames_of_this_sessions_morph(client):
    shown = morph(client, frames=4)[3]
    first = np.asarray(Image.open(client.predict(1, api_name="/frame")))  # counted from 1, as the video
    last = np.asarray(Image.open(client.predict(4, api_name="/frame")))
    assert first.shape == last.shape and first.shape[1] == 256
    assert not np.array_equal(first, last)
    # frames are handed to Gradio as files (it copies those atomically; arrays it encodes in place)
    assert shown.endswith("frame-004.png") and np.array_equal(np.asarray(Image.open(shown)), last)
    with pytest.raises(AppError, match="greater than maximum value 4"):  # the scrubber's range: this morph
        client.predict(9, api_name="/frame")


def test_frame_needs_a_morph_first(server):
    fresh = Client(server[1], verbose=False)
    with pytest.raises(AppError, match="morph an image first"):
        fresh.predict(1, api_name="/frame")


def test_auto_strength_finds_where_the_target_wins(client):
    summary, message = morph(client, family="pixel", mode="auto", strength=0, frames=4)[6:8]
    assert summary["auto"]["reached"] and summary["frames"][-1]["top5"][0][0] == "9"
    assert (
        "meets the goal (log-odds margin >= 3)" in message
    )  # the default goal: a clear lead over the runner-up


def test_auto_strength_says_when_the_cap_comes_first(client):
    summary, message = morph(client, family="csp-phase", mode="auto", strength=0.07, frames=3)[6:8]  # RMS cap
    assert not summary["auto"]["reached"]
    assert "never met the goal (log-odds margin >= 3)" in message and "cap" in message


def test_compare_families_side_by_side_at_one_budget(client):
    video, table, message = client.predict(handle_file(DIGIT), MODEL, "9", 3.0, frames=3, api_name="/compare")
    assert mp4_frames(video) == 2 * 3 - 2
    rows = table["data"]
    assert [r[0] for r in rows] == ["pixel", "fourier-phase", "csp-phase", "csp-joint"]
    assert all(r[1] == pytest.approx(3.0, rel=0.01) for r in rows)
    assert "L2 budget **3**" in message


def test_compare_families_at_the_default_budget_changes_the_image(client):
    """Budget 0: an RMS change of 0.15 per value, where every family moves the digit toward the target."""
    video, table, message = client.predict(handle_file(DIGIT), MODEL, "9", 0, frames=3, api_name="/compare")
    rows = table["data"]
    assert all(r[1] == pytest.approx(0.15 * (3 * 32 * 32) ** 0.5, rel=0.02) for r in rows)
    assert all(r[3] > 0.5 for r in rows), rows  # p(target): the change shows


def test_permalinks_round_trip_through_the_api(client):
    settings = dict(
        model="orientation-cnn",
        target="45 degrees",
        family="csp-joint",
        regime="step-local",
        mode="budget",
        strength=2.5,
        goal="top-1",
        frames=9,
        orientations=6,
        bandwidth="half-octave",
        luma_only=True,
        phase_cap=1.0,
        smooth_sigma=0.5,
    )
    grating = example_by_name("grating-90").file
    link = client.predict(handle_file(str(grating)), **settings, api_name="/permalink")
    assert link.startswith("http://127.0.0.1:") and "example=grating-90" in link and "run=1" in link
    restored = client.predict(link, api_name="/restore")
    assert restored["warnings"] == [] and restored["run"] is True
    assert Path(restored["image"]).read_bytes() == grating.read_bytes()
    assert Settings(**restored["settings"]) == Settings(example="grating-90", **settings)
    odd = client.predict("?model=digits-cnn&frames=500&family=warp", api_name="/restore")
    assert odd["settings"]["model"] == "digits-cnn" and odd["settings"]["frames"] == 16
    assert len(odd["warnings"]) == 2


@pytest.mark.parametrize("query", [None, 5, ["?model=digits-cnn"]])
def test_restore_refuses_a_query_that_is_not_text(client, query):
    with pytest.raises(AppError, match="restore takes a permalink .* as text") as err:
        client.predict(query, api_name="/restore")
    assert "AttributeError" not in str(err.value)


@pytest.mark.parametrize(
    ("luma", "expected"), [("false", False), ("1", True), (None, True)]
)  # None: the default
def test_luma_only_is_parsed_not_cast(client, luma, expected):
    summary = morph(client, frames=2, luma_only=luma)[6]
    assert summary["settings"]["luma_only"] is expected


def test_a_bad_boolean_is_refused(client):
    with pytest.raises(AppError, match="luma_only must be true or false"):
        morph(client, frames=2, luma_only="maybe")


def test_a_permalink_to_a_model_with_broken_weights_keeps_the_page(server, tmp_path, monkeypatch):
    from test_app_support import bad_weights_zoo

    from morphlib.app.engine import Engine, ModelRegistry, OutputDirs

    broken = Engine(ModelRegistry(bad_weights_zoo(tmp_path, monkeypatch)), outputs=OutputDirs(tmp_path / "o"))
    monkeypatch.setattr(handlers, "ENGINE", broken)

    class Request:
        query_params = {"model": "bad-mismatch", "example": "digit-3", "frames": "8", "family": "pixel"}
        headers: dict = {}

    out = handlers.on_load(Request())
    image, model, status, run = out[0], out[1], out[-3], out[-1]
    assert image.endswith("digit-3.png") and model["value"] == "bad-mismatch" and run is False
    assert out[3] == "pixel" and out[8] == 8  # the link's other settings are kept
    assert "'bad-mismatch'" in status and "corrupt or incompatible" in status


def test_concurrency_bounds_the_compute_events(server, monkeypatch):
    app = server[0]
    monkeypatch.setattr(handlers, "ENGINE", handlers.ENGINE)  # create_demo sets both; restored afterwards
    monkeypatch.setattr(handlers, "DEMO", handlers.DEMO)
    for concurrency in (1, 3):
        demo = app.create_demo(server[2], concurrency=concurrency)
        compute = [fn for fn in demo.fns.values() if fn.concurrency_id == "compute"]
        assert len(compute) >= 3 and {fn.concurrency_limit for fn in compute} == {concurrency}
        assert {fn.api_name for fn in compute} >= {"morph", "compare"}
    goal = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "goal")
    assert [c[1] for c in goal.choices] == list(CHOICES)


@pytest.mark.parametrize(("device", "message"), [("gpu", "unknown device 'gpu'"), ("cuda", "CUDA is not")])
def test_a_device_that_cannot_be_used_stops_the_app_at_once(server, monkeypatch, device, message):
    app = server[0]
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr(app, "create_demo", lambda *a, **k: pytest.fail("the app was built"))
    with pytest.raises(SystemExit) as err:
        app.main(["--device", device])
    assert isinstance(err.value.code, str) and message in err.value.code and "\n" not in err.value.code


def test_sigterm_removes_the_temporary_outputs(tmp_path):
    """``kill -TERM`` of ``python app.py`` runs the exit handlers, which remove its output folder."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with app_process(tmp_path, TMPDIR=str(tmp)) as (proc, port, log):
        url = f"http://127.0.0.1:{port}/"
        wait_for_log(proc, log, f"127.0.0.1:{port}", timeout=120)
        morph(Client(url, verbose=False, download_files=str(tmp_path / "downloads")), frames=2)
        outputs = list(tmp.glob("morphlib-app-*"))
        assert len(outputs) == 1 and any(outputs[0].rglob("morph.mp4")), log.read_text()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert not outputs[0].exists(), log.read_text()
        assert "Traceback" not in log.read_text()


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def bomb_header() -> bytes:
    import struct
    import zlib

    data = bytearray(png(Image.new("L", (1, 1))))
    data[16:24] = struct.pack(">II", 50000, 50000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


BAD_FILES = {
    "notes.png": (b"just some text, not an image", "not an image"),
    "truncated.png": (png(Image.new("RGB", (64, 64), "red"))[:70], "corrupt|could not be decoded"),
    "bomb.png": (bomb_header(), "too large"),
    "tiny.png": (png(Image.new("RGB", (4, 4))), "only 4×4 pixels"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_uploads_get_messages_and_the_server_keeps_answering(client, tmp_path, name):
    data, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(path)), MODEL, api_name="/predict")
    with pytest.raises(AppError, match=message):
        morph(client, image=handle_file(str(path)))
    assert client.predict(handle_file(DIGIT), MODEL, api_name="/predict")[0]["label"] == "3"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target": "eleven"}, "unknown class 'eleven'"),
        ({"model": "no-such-model"}, "unknown model 'no-such-model'"),
        ({"model": "resnet50-l2-eps3"}, "HF_HUB_OFFLINE"),
        ({"frames": 1}, "less than minimum value 2"),
        ({"mode": "budget", "strength": 1000.0}, "cannot be reached"),
        ({"mode": "alpha", "strength": 0}, "amplification mode needs a strength"),
    ],
)
def test_bad_settings_get_messages(client, changes, message):
    with pytest.raises(AppError, match=message) as err:
        morph(client, **changes)
    assert "Traceback" not in str(err.value)


@pytest.mark.parametrize(
    ("image", "note"),
    [
        (Image.new("L", (32, 32), 40), "greyscale"),
        (Image.new("RGBA", (40, 40), (255, 255, 255, 0)), "transparent"),
        (Image.fromarray(np.full((32, 32), 20000, np.uint16)), "16-bit"),
        (Image.new("RGB", (500, 300), "white"), "centre-cropped to 32×32"),
        (Image.new("RGB", (12, 12), "white"), "enlarged from 12×12"),
    ],
)
def test_odd_images_work_with_a_note(client, tmp_path, image, note):
    path = tmp_path / "odd.png"
    path.write_bytes(png(image))
    top5, _, message = client.predict(handle_file(str(path)), MODEL, api_name="/predict")
    assert len(top5["confidences"]) == 5 and note in message


def test_concurrent_requests_are_queued_and_all_answered(server):
    clients = [Client(server[1], verbose=False) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda c: morph(c, target="7", frames=3), clients))
    assert [len(r[6]["frames"]) for r in results] == [3, 3, 3]


def test_temporary_outputs_are_pruned(server, client):
    for frames in (3, 4, 5, 6, 7, 8, 9):
        morph(client, frames=frames)
    folders = [p for p in server[2].outputs.root.iterdir() if p.is_dir()]
    assert 1 <= len(folders) <= 6


def test_share_without_internet_says_so_and_keeps_serving_locally(tmp_path):
    """``python app.py --share`` with Gradio's share server unreachable (a dead proxy stands in for
    no internet, so the test behaves the same on a machine that has it)."""
    dead_proxy = "http://127.0.0.1:9"
    with app_process(tmp_path, "--share", HTTPS_PROXY=dead_proxy, https_proxy=dead_proxy) as (
        proc,
        port,
        log,
    ):
        text = wait_for_log(proc, log, "keeps serving locally", timeout=90)
        assert "could not create a public share link" in text, text
        assert f"http://127.0.0.1:{port}" in text and "Traceback" not in text
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10, trust_env=False)
        assert page.status_code == 200 and "gradio" in page.text.lower()
        assert proc.poll() is None
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_readme_api_example_runs_against_the_app(server, tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### HTTP / Python API") :]
    code = section[
        section.index("```python") + len("```python") : section.index("```\n", section.index("```python"))
    ]
    code = code.replace("http://127.0.0.1:7860/", server[1])
    monkeypatch.chdir(ROOT)
    namespace: dict = {"print": lambda *a, **k: None}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["top5"]["label"] == "3" and namespace["target"]["value"] == "9"
    assert mp4_frames(namespace["video"]) == 2 * 16 - 2  # the compare video, 16 frames by default
    assert len(namespace["summary"]["frames"]) == 8 and namespace["settings"]["target"] == "9"
    assert [r[0] for r in namespace["table"]["data"]][0] == "pixel"


def test_plain_http_api(server):
    base = server[1].rstrip("/")
    with httpx.Client(timeout=30, trust_env=False) as http:
        event = http.post(
            f"{base}/gradio_api/call/restore", json={"data": ["?model=digits-cnn&target=8"]}
        ).json()
        stream = http.get(f"{base}/gradio_api/call/restore/{event['event_id']}").text
    assert "event: complete" in stream and '"target": "8"' in stream


def test_space_front_matter_matches_requirements_and_zoo():
    import re

    import yaml

    from morphlib.zoo import read_manifest

    readme = (ROOT / "README.md").read_text()
    assert readme.startswith("---\n")
    meta = yaml.safe_load(readme.split("---\n")[1])
    pinned = re.search(r"^gradio==([\d.]+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned and meta["sdk"] == "gradio" and str(meta["sdk_version"]) == pinned.group(1)
    assert meta["app_file"] == "app.py" and (ROOT / meta["app_file"]).is_file() and meta["license"] == "mit"
    hub = {e.hub_repo for e in read_manifest().values() if e.source == "hf-hub"}
    assert set(meta["models"]) == hub and len(meta["short_description"]) <= 60


def test_a_failing_example_clears_the_previous_answer(server):
    """Picking the cat photo offline (its Hub model cannot be fetched) leaves no stale outputs."""
    fresh = Client(server[1], verbose=False)
    good = fresh.predict(handle_file(DIGIT), MODEL, api_name="/pick_example")
    assert good[0]["label"] == "3"
    cat = str(example_by_name("cat").file) if _has_example("cat") else None
    if cat is None:
        pytest.skip("no cat example")
    out = fresh.predict(handle_file(cat), "resnet50-l2-eps3", api_name="/pick_example")
    top5, message = out[0], out[2]
    assert not top5.get("confidences") and message.startswith("⚠")
    video, gif, frame, plot, change, summary, numbers = (
        out[3],
        out[4],
        out[6],
        out[7],
        out[8],
        out[9],
        out[10],
    )
    assert all(v is None for v in (video, gif, frame, change, summary))
    assert [row[1] for row in plot["data"]] == [None, None] and numbers["data"] == []


def _has_example(name):
    try:
        example_by_name(name)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------- honest outputs
def follow_up(demo, api_name: str, on: str):
    """The event that runs after the endpoint ``api_name`` when it fails (``on="failure"``) or succeeds."""
    first = next(fn for fn in demo.fns.values() if fn.api_name == api_name)
    flag = "trigger_only_on_failure" if on == "failure" else "trigger_only_on_success"
    return next(fn for fn in demo.fns.values() if fn.trigger_after == first._id and getattr(fn, flag))


def as_browser(url: str, fn, session: str, data: list) -> tuple[list, bool]:
    """Run event ``fn`` for ``session`` the way the page does (Gradio's queue: join, then read the
    stream); returns its outputs and whether it succeeded."""
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as http:
        body = {
            "data": data,
            "fn_index": fn._id,
            "session_hash": session,
            "event_data": None,
            "trigger_id": None,
        }
        http.post("gradio_api/queue/join", json=body).raise_for_status()
        with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed":
                    return message["output"].get("data"), message["success"]
    raise AssertionError("the event did not complete")


def test_a_failed_morph_clears_every_output_it_would_have_filled(server):
    url = server[1]
    fresh = Client(url, verbose=False)
    morph(fresh, frames=3)
    assert fresh.predict(2, api_name="/frame") is not None  # a result is shown
    with pytest.raises(AppError, match="cannot be reached"):
        morph(fresh, strength=1000.0)
    cleanup = follow_up(handlers.DEMO, "morph", "failure")
    run = next(fn for fn in handlers.DEMO.fns.values() if fn.api_name == "morph")
    assert set(run.outputs[:-2]) <= set(cleanup.outputs)  # all but the permalink and the compare budget
    outputs, ok = as_browser(url, cleanup, fresh.session_hash, [])
    assert ok
    video, gif, _, frame, plot, change, summary = outputs[:7]  # then the session's result, numbers, status
    numbers, status = outputs[-2:]
    assert all(v is None for v in (video, gif, frame, change, summary))
    assert [row[1] for row in plot["data"]] == [None, None] and numbers["data"] == []
    assert status.startswith("⚠ The morph failed:") and "cannot be reached" in status
    with pytest.raises(AppError, match="morph an image first"):  # the session's result is gone too
        fresh.predict(1, api_name="/frame")


def test_a_failed_prediction_clears_the_top5_and_the_morph(server, tmp_path):
    url = server[1]
    fresh = Client(url, verbose=False)
    morph(fresh, frames=3)
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(AppError, match="not an image"):
        fresh.predict(handle_file(str(bad)), MODEL, api_name="/predict")
    cleanup = follow_up(handlers.DEMO, "predict", "failure")
    predict = next(fn for fn in handlers.DEMO.fns.values() if fn.api_name == "predict")
    assert set(predict.outputs) <= set(cleanup.outputs)
    outputs, ok = as_browser(url, cleanup, fresh.session_hash, [MODEL])
    top5, target, status, video = outputs[:4]
    assert ok and not top5.get("confidences") and video is None
    assert [c[1] for c in target["choices"]] == [str(d) for d in range(10)] and target["value"] is None
    assert status.startswith("⚠ Classifying the image failed:") and "not an image" in status
    with pytest.raises(AppError, match="morph an image first"):
        fresh.predict(1, api_name="/frame")


def test_a_hub_model_picked_offline_says_so_in_one_short_line(server):
    fresh = Client(server[1], verbose=False)
    with pytest.raises(AppError, match="HF_HUB_OFFLINE"):
        fresh.predict(handle_file(DIGIT), "resnet50-l2-eps3", api_name="/predict")
    cleanup = follow_up(handlers.DEMO, "predict", "failure")
    (top5, target, status, *_), ok = as_browser(server[1], cleanup, fresh.session_hash, ["resnet50-l2-eps3"])
    assert ok and "cannot be downloaded" in status and len(status) < 200


def test_a_failed_comparison_clears_its_outputs(server):
    url = server[1]
    fresh = Client(url, verbose=False)
    with pytest.raises(AppError, match="unknown class"):
        fresh.predict(handle_file(DIGIT), MODEL, "eleven", 3.0, frames=3, api_name="/compare")
    cleanup = follow_up(handlers.DEMO, "compare", "failure")
    compare = next(fn for fn in handlers.DEMO.fns.values() if fn.api_name == "compare")
    assert set(compare.outputs) == set(cleanup.outputs)
    (video, table, status), ok = as_browser(url, cleanup, fresh.session_hash, [])
    assert ok and video is None and table["data"] == []
    assert status.startswith("⚠ The comparison failed:") and "unknown class 'eleven'" in status


def test_every_morph_event_clears_on_failure_and_fills_the_table_on_success(server):
    demo = handlers.DEMO
    morphs = [fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") in ("run_morph", "morph_if")]
    assert len(morphs) == 3  # the button, strength/frames changes, a permalink with run=1
    for fn in morphs:
        after = [f for f in demo.fns.values() if f.trigger_after == fn._id]
        assert {f.fn.__name__ for f in after if f.trigger_only_on_failure} == {"morph_failed"}
        assert {f.fn.__name__ for f in after if f.trigger_only_on_success} == {"numbers_table"}


# --------------------------------------------------------------------- what the page opens on
def test_the_space_preloads_the_imagenet_models_offered_first():
    import yaml

    from morphlib.zoo import read_manifest

    meta = yaml.safe_load((ROOT / "README.md").read_text().split("---\n")[1])
    zoo = read_manifest()
    preloaded = [tuple(line.split()) for line in meta["preload_from_hub"]]
    wanted = [zoo["resnet50-l2-eps3"], zoo["resnet50"]]  # the robust checkpoint first, as the app offers
    assert preloaded == [(e.hub_repo, e.hub_filename) if e.hub_filename else (e.hub_repo,) for e in wanted]


def robust_resnet_in_cache(cache: Path) -> None:
    """The robust ResNet-50 checkpoint (random weights, the Madry lab's layout) in a Hub cache."""
    import torch
    import torchvision

    from morphlib.zoo import read_manifest

    entry = read_manifest()["resnet50-l2-eps3"]
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + entry.hub_repo.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    torch.manual_seed(0)
    weights = torchvision.models.resnet50().state_dict()
    model = {f"module.model.{k}": v for k, v in weights.items()}
    model["module.normalizer.new_mean"] = torch.tensor(entry.mean).view(3, 1, 1)
    model["module.normalizer.new_std"] = torch.tensor(entry.std).view(3, 1, 1)
    torch.save({"model": model, "epoch": 90}, repo / "snapshots" / commit / entry.hub_filename)


class PageRequest:
    def __init__(self, **query):
        self.query_params = query
        self.headers: dict = {}


def test_the_page_opens_on_the_robust_imagenet_model_when_it_is_there(server, tmp_path, monkeypatch):
    # offline, nothing cached: real MNIST on the robust model (the photos fall back to efficientnet-lite0,
    # a standard model, which the page does not open on)
    offline = handlers.start_example()
    assert offline.name == "mnist-3"
    assert handlers.example_model(example_by_name("cat")) == "efficientnet-lite0"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    robust_resnet_in_cache(tmp_path / "hub")
    assert handlers.start_example().name == "cat" and server[2].registry.default() == "resnet50-l2-eps3"
    image, model, *_, top5, status, info, run = handlers.on_load(PageRequest())
    assert image.endswith("cat.jpg") and model["value"] == "resnet50-l2-eps3" and run is False
    assert len(top5) == 5 and "suggested target" in status and "ε = 3" in info
    groups = handlers.example_groups(load_examples())
    assert {e.name for e in groups[0][0]} >= {"cat", "digit-3"} and len(groups) == 1


def test_page_load_downloads_nothing(server, monkeypatch):
    engine = server[2]
    monkeypatch.setattr(engine.registry, "load", lambda *a: pytest.fail("a model was loaded"))
    out = handlers.on_load(PageRequest(example="cat", model="resnet50-l2-eps3", run="1"))
    image, model, status, run = out[0], out[1], out[-3], out[-1]
    assert image.endswith("cat.jpg") and model["value"] == "resnet50-l2-eps3"
    assert "not on this machine" in status and run is False
    assert "cannot be downloaded" in status and "pick it again" not in status  # offline: say so
    assert len(out[2]["choices"]) == 1000  # the targets: ImageNet's labels, from the zoo


def test_examples_are_cached_lazily_on_a_space_only_where_the_model_is(server, monkeypatch):
    monkeypatch.setattr(handlers, "ON_SPACE", True)
    assert len(handlers.example_groups(load_examples())) == 1  # efficientnet-lite0 takes the photos offline
    monkeypatch.delitem(server[2].registry.entries, "efficientnet-lite0")
    (ready, cached), (later, not_cached) = handlers.example_groups(load_examples())
    assert cached and not not_cached
    assert "digit-3" in {e.name for e in ready} and "cat" in {e.name for e in later}
    monkeypatch.setattr(handlers, "ON_SPACE", False)
    assert not any(cache for _, cache in handlers.example_groups(load_examples()))


# --------------------------------------------------------------------- ZeroGPU
def test_on_zerogpu_a_second_request_neither_reloads_the_model_nor_loses_the_gradient(tmp_path):
    """``python app.py`` with ``SPACES_ZERO_GPU`` set and a stand-in ``spaces`` whose ``@GPU``
    runs the call in a forked child: models are loaded once, in the main process, at start; the
    gradient computed in the first call's child is still there for the second call."""
    standin = ROOT / "tests" / "zerogpu"
    with app_process(tmp_path, SPACES_ZERO_GPU="1", PYTHONPATH=str(standin)) as (proc, port, log):
        text = wait_for_log(proc, log, f"127.0.0.1:{port}", timeout=180)
        assert "ZeroGPU: preloaded" in text and MODEL in text.split("ZeroGPU: preloaded")[1].split("\n")[0]
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "dl"))
        first = morph(client, target="5", frames=4)[6]
        second = morph(client, target="5", frames=6)[6]
        text = log.read_text()
    assert first["gradient_cached"] is False and second["gradient_cached"] is True
    assert len(second["frames"]) == 6
    children = {int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if "ran in child" in line}
    assert len(children) == 2 and proc.pid not in children, text  # each call ran in its own fork
    loads = [line for line in text.splitlines() if " loaded " in line and " in process " in line]
    assert loads and all(line.endswith(f"in process {proc.pid}") for line in loads), text
    assert sum(f"loaded {MODEL} " in line for line in loads) == 1


def test_a_grey_mnist_digit_morphs_as_grey_with_the_default_settings(client):
    """The offline default: a real MNIST digit, the study's MNIST driver, the study's settings."""
    mnist = str(example_by_name("mnist-3").file)
    video, _, _, frame, _, _, summary, message, _, _ = client.predict(
        image=handle_file(mnist), model="mnist-cnn-robust-eps3", target="8", api_name="/morph"
    )
    settings = summary["settings"]
    assert (settings["family"], settings["regime"], settings["mode"]) == ("csp-joint", "step-local", "auto")
    assert summary["auto"]["reached"] and summary["frames"][-1]["top5"][0][0] == "8"
    # within the auto cap, RMS 0.28 over the upload's three (equal) channels
    assert summary["frames"][-1]["l2"] <= 0.28 * (3 * 28 * 28) ** 0.5 * 1.01
    with Image.open(frame) as shown:
        pixels = np.asarray(shown.convert("RGB"), dtype=np.int16)
    spread = np.abs(pixels - pixels[..., :1]).max(axis=(1, 2))  # per row of the annotated frame
    side = pixels.shape[1]  # the image is square; the coloured probability panel lies below it
    side -= 2  # the encoder's 2x2 chroma blocks bleed the panel's colour into the image's last rows
    # grey in, grey out: the served frame is lossily encoded (a level or two of chroma noise);
    # the colour fringes of an RGB edit of a grey digit were 25 levels (channel spread 0.10)
    assert spread[:side].max() <= 2


def test_atlas_ranks_every_other_class_and_maps_a_plane(client):
    """/atlas: the distances (nearest first, as the library finds them), a frame per class and the plane."""
    chart, frames, plane, summary, message = client.predict(
        image=handle_file(DIGIT), model=MODEL, target="", plane="", strength=0.2, api_name="/atlas"
    )
    ranked = [row[0] for row in chart["data"]]
    assert sorted(ranked) == [d for d in "012456789"] and summary["source"]["label"] == "3"
    assert [c["label"] for c in summary["classes"]] == ranked and summary["cap_rms"] == 0.2
    reached = [c["distance"] for c in summary["classes"] if c["distance"] is not None]
    assert reached == sorted(reached) and [row[1] for row in chart["data"]][: len(reached)] == pytest.approx(
        reached
    )
    assert [f["caption"].split(":")[0] for f in frames] == ranked and Path(frames[0]["image"]).is_file()
    assert Path(plane).suffix == ".png" and summary["plane"]["source"] == "3"
    assert {summary["plane"]["a"], summary["plane"]["b"]} == set(ranked[:2])  # the two nearest
    assert f"nearest **{ranked[0]}**" in message and "not pixels" in message


def test_atlas_plane_takes_the_classes_asked_for_and_refuses_odd_ones(client):
    *_, summary, _ = client.predict(
        image=handle_file(DIGIT), model=MODEL, target="", plane="8, 5", strength=0.15, api_name="/atlas"
    )
    assert (summary["plane"]["a"], summary["plane"]["b"]) == ("8", "5")
    for plane, message in (("8", "as A,B"), ("8,8", "two different classes"), ("8,eleven", "unknown class")):
        with pytest.raises(AppError, match=message):
            client.predict(image=handle_file(DIGIT), model=MODEL, target="", plane=plane, api_name="/atlas")
