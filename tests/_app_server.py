"""Launch ``app.py`` for real on a free port: in this process (one server per test module), or
as ``python app.py`` in its own process for what only a process shows (signals, ``--share``)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Debian's Chromium, as the browser test and bench_app drive it (never a Playwright download).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def load_app_module():
    """``app.py`` imported from the repository root, whatever the working directory."""
    if "app" in sys.modules and getattr(sys.modules["app"], "__file__", None) == str(ROOT / "app.py"):
        return sys.modules["app"]
    spec = importlib.util.spec_from_file_location("app", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def offline_hub(tmp: Path) -> Iterator[None]:
    """An empty, offline Hugging Face cache: Hub models are "download" and fail at once."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "GRADIO_ANALYTICS_ENABLED")}
    os.environ.update(HF_HUB_CACHE=str(tmp / "hub"), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def running_app(tmp: Path, keep_outputs: int = 32) -> Iterator[tuple[object, str, object]]:
    """Yield ``(app module, local URL, engine)`` of an app serving on a free port; close it after."""
    app = load_app_module()
    from morphlib.app.engine import Engine, OutputDirs

    with offline_hub(tmp):
        engine = Engine(outputs=OutputDirs(tmp / "outputs", keep=keep_outputs))
        demo = app.create_demo(engine)
        url, _ = app.launch(demo, host="127.0.0.1", port=free_port(), block=False, quiet=True)
        try:
            yield app, url, engine
        finally:
            demo.close()


@contextlib.contextmanager
def app_process(tmp: Path, *args: str, **env: str) -> Iterator[tuple[subprocess.Popen, int, Path]]:
    """Yield ``(process, port, log)`` of ``python app.py --port PORT *args`` run in ``tmp``,
    offline, with ``env`` added to its environment. Its output (stdout and stderr) goes to
    ``log``. Afterwards a process still running is stopped with SIGTERM, as a user would stop
    it (so it removes its temporary files), and killed only if that fails."""
    port, log = free_port(), tmp / "app.log"
    environment = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        **env,
    )
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port), *args],
            cwd=tmp,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc, port, log
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)


def wait_for_log(proc: subprocess.Popen, log: Path, text: str, timeout: float) -> str:
    """The log of ``proc`` once it shows ``text`` (or ``timeout`` seconds have passed); fails
    at once, with the log, if the process exits meanwhile."""
    deadline = time.time() + timeout
    while time.time() < deadline and text not in log.read_text():
        assert proc.poll() is None, log.read_text()
        time.sleep(0.5)
    return log.read_text()
