"""The app launched for real, attacked the way a public Space is: file paths it was never sent,
markup in every parameter, out-of-range numbers, forged headers, crowds of sessions and images
that decode to gigabytes. Each test talks HTTP (or ``gradio_client``) to a running server.
"""

from __future__ import annotations

import functools
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from _app_server import app_process, running_app, wait_for_log
from gradio.utils import get_upload_folder
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from morphlib.app import handlers
from morphlib.app.examples import example_by_name
from morphlib.app.ui import NO_UPLOAD

DIGIT = str(example_by_name("digit-3").file)
MODEL = "digits-cnn-robust"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("security-app"), keep_outputs=6) as (app, url, engine):
        yield app, url, engine


@pytest.fixture(scope="module")
def client(server):
    return Client(server[1], verbose=False, download_files=str(server[2].outputs.root.parent / "downloads"))


@functools.cache
def api_info(base: str) -> dict:
    return httpx.get(f"{base}/gradio_api/info", timeout=60, trust_env=False).json()


def call(url: str, endpoint: str, data: list, headers: dict | None = None) -> tuple[str, object]:
    """POST ``data`` (the first parameters; defaults for the others) to ``/gradio_api/call/ENDPOINT``
    and read the answer: ``("complete", outputs)`` or ``("error", payload)``, as any HTTP client
    (no ``gradio_client`` in between) gets it."""
    base = url.rstrip("/")
    params = api_info(base)["named_endpoints"][f"/{endpoint}"]["parameters"]
    data = [*data, *(p.get("parameter_default") for p in params[len(data) :])]
    with httpx.Client(timeout=120, trust_env=False, headers=headers or {}) as http:
        posted = http.post(f"{base}/gradio_api/call/{endpoint}", json={"data": data})
        posted.raise_for_status()
        stream = http.get(f"{base}/gradio_api/call/{endpoint}/{posted.json()['event_id']}").text
    events = re.findall(r"event: (\w+)\ndata: (.*)", stream)
    event, payload = next((e, d) for e, d in events if e in ("complete", "error"))
    return event, json.loads(payload) if payload.strip() else None


def private_png(folder: Path) -> Path:
    """A PNG the server was never sent, outside every folder it serves."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "private.png"
    Image.open(DIGIT).save(path)
    return path


# --------------------------------------------------------------------- 1: files on the server
def payloads(path: str) -> dict[str, dict]:
    meta = {"_type": "gradio.FileData"}
    return {"bare": {"path": path}, "meta": {"path": path, "meta": meta}}


def test_no_file_outside_the_upload_folder_is_read_and_none_is_told_to_exist(server, tmp_path):
    url = server[1]
    private = private_png(tmp_path / "secret")
    upload = Path(get_upload_folder())
    traversal = str(upload / ".." / ".." / private.relative_to("/"))
    for name, path in {
        "private": str(private),
        "traversal": traversal,
        "relative": "../" * 12 + str(private),
    }.items():
        missing = path.replace("private.png", "missing.png")
        for kind in ("bare", "meta"):
            answers = [call(url, "predict", [payloads(p)[kind], MODEL]) for p in (path, missing)]
            assert [event for event, _ in answers] == ["error", "error"], (name, kind, answers)
            assert answers[0] == answers[1], (name, kind, answers)  # same answer, there or not
            assert str(private.parent) not in json.dumps(answers)
        event, payload = call(url, "morph", [payloads(path)["bare"], MODEL, "9"])
        assert event == "error" and payload["error"] == NO_UPLOAD, payload
    event, payload = call(url, "predict", [payloads(str(private))["bare"], MODEL])
    assert payload["error"] == NO_UPLOAD


def test_a_link_inside_the_upload_folder_to_a_private_file_is_refused(server, tmp_path):
    private = private_png(tmp_path / "secret")
    link = Path(get_upload_folder()) / f"link-{time.time_ns()}.png"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(private)
    try:
        event, payload = call(server[1], "predict", [{"path": str(link)}, MODEL])
    finally:
        link.unlink()
    assert event == "error" and payload["error"] == NO_UPLOAD


def test_a_real_upload_still_works(client):
    top5, _, _ = client.predict(handle_file(DIGIT), MODEL, api_name="/predict")
    assert top5["label"] == "3"


def test_internal_errors_are_not_sent_to_clients(server, tmp_path):
    """An error raised inside Gradio (here: a path with ``meta`` it refuses) sends no internals."""
    event, payload = call(server[1], "predict", [payloads(str(private_png(tmp_path)))["meta"], MODEL])
    assert event == "error" and "gradio cache dir" not in json.dumps(payload)


# --------------------------------------------------------------------- 5: numbers and texts
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "alpha", "strength": 1e308}, "greater than maximum value 10000"),
        ({"mode": "auto", "regime": "step-local", "strength": 1e308}, "greater than maximum value 10000"),
        ({"mode": "budget", "strength": 1e308}, "greater than maximum value 10000"),
        ({"target": "²"}, "unknown class '²'"),
    ],
)
def test_out_of_range_numbers_and_odd_digits_get_clear_messages(client, changes, message):
    kwargs = dict(image=handle_file(DIGIT), model=MODEL, target="9", frames=3) | changes
    with pytest.raises(AppError, match=message) as err:
        client.predict(**kwargs, api_name="/morph")
    assert not re.search(r"NaN|stack|invalid literal|Traceback", str(err.value))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "alpha", "family": "csp-joint", "strength": 1000.0}, "amplification must be at most 50"),
        ({"mode": "auto", "regime": "step-local", "strength": 400.0}, "cap_rms must be at most 1"),
        (
            {"mode": "auto", "regime": "frozen", "family": "csp-joint", "strength": 40.0},
            "cap_rms must be at most 1",
        ),
    ],
)
def test_strengths_past_what_the_mode_can_use_get_clear_messages(client, changes, message):
    """Within the widget's bound but beyond what the mode can use: the library would answer with
    NaN, an empty stack or an index error."""
    kwargs = dict(image=handle_file(DIGIT), model=MODEL, target="9", frames=3) | changes
    with pytest.raises(AppError, match=message):
        client.predict(**kwargs, api_name="/morph")


def test_compare_refuses_odd_targets_and_budgets(client):
    with pytest.raises(AppError, match="unknown class '²'"):
        client.predict(handle_file(DIGIT), MODEL, "²", 3.0, frames=3, api_name="/compare")
    with pytest.raises(AppError, match="greater than maximum value 10000"):
        client.predict(handle_file(DIGIT), MODEL, "9", 1e308, frames=3, api_name="/compare")


def test_atlas_validates_its_inputs_as_morph_does(client):
    with pytest.raises(AppError, match="unknown class '²'"):
        client.predict(handle_file(DIGIT), MODEL, "²", "", api_name="/atlas")
    with pytest.raises(AppError, match="greater than maximum value 10000"):
        client.predict(handle_file(DIGIT), MODEL, "", "", strength=1e308, api_name="/atlas")
    with pytest.raises(AppError, match="unknown model"):
        client.predict(handle_file(DIGIT), "<b>nope</b>", "", "", api_name="/atlas")


def test_the_settings_checks_bound_strength_itself(client, server):
    """Past the widget: the settings refuse a strength that overflows, whoever calls them."""
    from morphlib.app.settings import Settings

    with pytest.raises(ValueError, match="strength must be at least 0 and at most 10000"):
        Settings(model=MODEL, mode="alpha", strength=1e308).validated()


def test_a_frame_index_that_is_not_a_number_gets_a_message(server, client):
    client.predict(handle_file(DIGIT), MODEL, "9", mode="budget", strength=2.0, frames=3, api_name="/morph")
    with pytest.raises(AppError, match="there is no frame|less than minimum"):
        client.predict(0, api_name="/frame")
    frame = client.predict(3, api_name="/frame")  # frames are counted from 1, as the video counts them
    assert Path(frame).is_file()


def test_permalinks_ignore_forwarded_headers_unless_told_to_trust_them(server, monkeypatch):
    url = server[1]
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    event, (link,) = call(url, "permalink", [None, MODEL, "9"], headers=forged)
    assert event == "complete" and link.startswith(url.rstrip("/") + "/?"), link
    event, (link,) = call(url, "permalink", [None, MODEL, "9"], headers={"Host": "<script>"})
    assert "<" not in link and link.startswith("http://localhost")
    monkeypatch.setenv("MORPHLIB_APP_TRUST_FORWARDED", "1")
    event, (link,) = call(url, "permalink", [None, MODEL, "9"], headers=forged)
    assert link.startswith("https://evil.example/?")
    monkeypatch.delenv("MORPHLIB_APP_TRUST_FORWARDED")
    monkeypatch.setenv("MORPHLIB_APP_URL", "https://morph.example.org/app")
    event, (link,) = call(url, "permalink", [None, MODEL, "9"], headers=forged)
    assert link.startswith("https://morph.example.org/app/?")


# --------------------------------------------------------------------- 4: markup in what is echoed
HTML = '<a href="https://evil.example/login">log in</a><img src="https://evil.example/x.png">'


def test_markup_sent_to_the_page_comes_back_escaped(server):
    out = handlers.on_load(_Request(model=HTML, target=HTML, frames=HTML, colour=HTML, example="digit-3"))
    status = out[-3]  # the model info is filled by the model's change: describe_model
    for text in (status, handlers.describe_model(HTML)):
        assert "evil.example" in text  # shown, as text: no tag, link or autolink starts unescaped
        assert not re.search(r"(?<!\\)[<\[(]|(?<!\\)://", text), text


def test_error_messages_quote_requests_as_text(client):
    with pytest.raises(AppError) as err:
        client.predict(image=handle_file(DIGIT), model=MODEL, target=HTML[:180], api_name="/morph")
    assert "<a" not in str(err.value) and "&lt;a href" in str(err.value)


def test_long_links_and_model_ids_are_refused_not_echoed(client):
    with pytest.raises(AppError, match="at most 4096 characters"):
        client.predict("?model=" + "x" * 100_000, api_name="/restore")
    with pytest.raises(AppError, match="model is not a short text") as err:
        client.predict(handle_file(DIGIT), "m" * 100_000, api_name="/predict")
    assert len(str(err.value)) < 500
    out = handlers.on_load(_Request(**{f"p{i}": "x" * 50 for i in range(200)}))
    assert "longer than 4096 characters" in out[-3] and len(out[-3]) < 4096


class _Request:
    def __init__(self, **query):
        self.query_params = query
        self.headers: dict = {}


# --------------------------------------------------------------------- 2: per-session state
def test_sessions_keep_a_key_and_the_results_are_bounded(server, monkeypatch):
    """Morphs from many new sessions: each session's state is a short key; the results they point
    to are held once, bounded in number and bytes, and expire."""
    store = handlers.SHOWN
    monkeypatch.setattr(store, "max_items", 5)
    sessions = [Client(server[1], verbose=False) for _ in range(8)]
    with ThreadPoolExecutor(2) as pool:
        list(
            pool.map(
                lambda c: c.predict(
                    handle_file(DIGIT), MODEL, "9", mode="budget", strength=2.0, frames=3, api_name="/morph"
                ),
                sessions,
            )
        )
    assert len(store) <= 5 and store.bytes <= store.max_bytes
    held = handlers.DEMO.state_holder
    states = [held[c.session_hash].state_data for c in sessions if c.session_hash in held]
    values = [v for data in states for v in data.values() if not isinstance(v, bool | None)]
    assert values and all(isinstance(v, str) and len(v) < 64 for v in values), values
    with pytest.raises(AppError, match="no longer kept"):  # the first sessions' results were dropped
        [c.predict(1, api_name="/frame") for c in sessions]
    assert Path(sessions[-1].predict(1, api_name="/frame")).is_file()
    monkeypatch.setattr(store, "ttl_s", 0.0)
    with pytest.raises(AppError, match="no longer kept"):
        sessions[-1].predict(1, api_name="/frame")
    assert handlers.DEMO.state_holder.capacity <= 1000


# --------------------------------------------------------------------- 13: the in-app API example
def test_the_api_example_shown_in_the_app_runs_against_it(server, monkeypatch):
    url = server[1]
    config = httpx.get(f"{url.rstrip('/')}/config", timeout=30, trust_env=False).json()
    text = next(c["props"]["value"] for c in config["components"] if c["props"].get("elem_id") == "api-help")
    code = text[text.index("```python") + len("```python") : text.rindex("```")]
    code = code.replace("http://127.0.0.1:7860/", url).replace('"digit.png"', repr(DIGIT))
    namespace: dict = {}
    exec(compile(code, "api-help", "exec"), namespace)
    assert namespace["top5"]["label"] == "3" and "3 → 9" in namespace["message"]
    assert namespace["budget"] == pytest.approx(namespace["summary"]["frames"][-1]["l2"], rel=1e-3)
    assert len(namespace["summary"]["frames"]) == 8 and Path(namespace["gif"]).suffix == ".gif"


# --------------------------------------------------------------------- 3: images that decode to GBs
def high_water_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def test_an_elongated_image_is_refused_before_it_is_decoded(client, tmp_path):
    """38000 x 120 (4.6 MP) cannot be reduced for a 32 px model (its short side is small already):
    it would be decoded at full size, for a model that sees its centre only."""
    strip = tmp_path / "strip.png"
    Image.new("L", (38000, 120), 128).save(strip)
    with pytest.raises(AppError, match="so elongated .* crop it first"):
        client.predict(handle_file(str(strip)), MODEL, api_name="/predict")


def test_large_images_are_decoded_reduced_and_an_attack_leaves_the_server_small(tmp_path):
    """Two 6300 x 6300 PNGs (a few kB each) classified at once raise the server's peak memory by
    their two 8-bit decodes (119 MB each; a PNG cannot be decoded reduced), not by gigabytes (as
    float32 each is 476 MB, twice that while converted: 2.1 GB in all).
    Then the rest of an attack (:func:`attack`): the server's peak stays under 1.5 GB and a
    normal morph still works."""
    big = tmp_path / "big.png"
    Image.new("RGB", (6300, 6300), (200, 30, 30)).save(big)
    assert big.stat().st_size < 200_000
    with app_process(tmp_path, "--concurrency", "2") as (proc, port, log):
        wait_for_log(proc, log, f"127.0.0.1:{port}", timeout=180)
        url = f"http://127.0.0.1:{port}/"
        clients = [Client(url, verbose=False) for _ in range(2)]
        clients[0].predict(handle_file(DIGIT), MODEL, api_name="/predict")  # warm: the model is loaded
        before = high_water_mb(proc.pid)
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(lambda c: c.predict(handle_file(str(big)), MODEL, api_name="/predict"), clients)
            )
        grown = high_water_mb(proc.pid) - before
        assert all(len(top5["confidences"]) == 5 for top5, _, _ in answers)
        assert "decoded at" in answers[0][2]
        assert grown < 500, f"peak memory grew by {grown:.0f} MB"
        attack(url, tmp_path)
        fresh = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        video, *_, summary, message, _, _ = fresh.predict(
            handle_file(DIGIT), MODEL, "9", mode="budget", strength=2.0, frames=4, api_name="/morph"
        )
        assert Path(video).is_file() and len(summary["frames"]) == 4 and "3 → 9" in message
        assert high_water_mb(proc.pid) < 1536, f"peak memory {high_water_mb(proc.pid):.0f} MB"


def attack(url: str, tmp_path: Path) -> None:
    """The rest of the battery, on the server at ``url``: paths it was never sent (with and without
    ``meta``), markup, huge numbers, a decompression bomb, a crowd of sessions and of morphs."""
    from test_app import bomb_header

    private = private_png(tmp_path / "secret")
    for payload in payloads(str(private)).values():
        assert call(url, "morph", [payload, MODEL, "9"])[0] == "error"
    for data in ([None, HTML, HTML], [None, MODEL, "9", "pixel", "frozen", "alpha", 1e308]):
        event, payload = call(url, "permalink" if data[1] == HTML else "morph", data)
        assert "<a" not in json.dumps(payload)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_header())
    with pytest.raises(AppError, match="too large"):
        Client(url, verbose=False).predict(handle_file(str(bomb)), MODEL, api_name="/predict")
    for _ in range(300):
        call(url, "permalink", [None, MODEL, "9"])
    with ThreadPoolExecutor(2) as pool:
        list(
            pool.map(
                lambda _: call(
                    url, "morph", [handle_upload(url), MODEL, "9", "pixel", "frozen", "budget", 2.0, 0.9, 8]
                ),
                range(20),
            )
        )


def handle_upload(url: str) -> dict:
    """The digit uploaded the way a browser uploads it; its file payload."""
    with open(DIGIT, "rb") as f:
        posted = httpx.post(f"{url.rstrip('/')}/gradio_api/upload", files={"files": f}, trust_env=False)
    return {"path": posted.json()[0], "meta": {"_type": "gradio.FileData"}}


def rss_mb(pid: int) -> float:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024


def test_a_crowd_of_new_sessions_does_not_grow_the_server_without_bound(tmp_path):
    """Every API call without a session is a new session, and Gradio keeps a copy of the page's
    settings for each (about 0.12 MB here; its default keeps 10,000). Past the app's bound
    (``MORPHLIB_APP_SESSIONS``, 150 here) the oldest are dropped and memory stays flat."""
    with app_process(tmp_path, MORPHLIB_APP_SESSIONS="150") as (proc, port, log):
        wait_for_log(proc, log, f"127.0.0.1:{port}", timeout=180)
        url = f"http://127.0.0.1:{port}/"
        for _ in range(200):
            call(url, "permalink", [None, MODEL, "9"])
        filled = rss_mb(proc.pid)
        for _ in range(500):
            call(url, "permalink", [None, MODEL, "9"])
        grown = rss_mb(proc.pid) - filled
    assert grown < 25, f"500 more sessions grew the server by {grown:.0f} MB"
