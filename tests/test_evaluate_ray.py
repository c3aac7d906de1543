"""The evaluation on a real local Ray cluster: the same rows as the serial run, nothing lost when
workers die, and a run whose driver was stopped or killed resumes from its file."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_evaluate import assert_same_rows

from morphlib.evaluate import EvalConfig, evaluate, read_rows
from morphlib.executors import RayExecutor

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = EvalConfig(
    dataset="digits",
    model="digits-cnn-robust",
    judges=("digits-judge",),
    families=("pixel",),
    budgets=(3.0,),
    regimes=("frozen",),
    sources=4,
    frames=3,
)


class Interrupt(Exception):
    pass


def descendants(pid: int) -> set[int]:
    """Live (not zombie) processes below ``pid``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError):
            continue
        if state != "Z":
            children.setdefault(int(parent), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.fixture(scope="module")
def cluster():
    before = descendants(os.getpid())
    address = os.environ.pop("RAY_ADDRESS", None)  # a local cluster of its own, whatever the shell says
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        if address is not None:
            os.environ["RAY_ADDRESS"] = address
        deadline = time.monotonic() + 30
        while descendants(os.getpid()) - before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not descendants(os.getpid()) - before, "Ray left processes behind"


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return evaluate(CONFIG, tmp_path_factory.mktemp("serial"), batch=1)


def workers_gone() -> bool:
    """Every CPU of the cluster free again (the run's actors are gone)."""
    deadline = time.monotonic() + 20
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    return ray.available_resources().get("CPU", 0) == 2


def test_killed_workers_lose_nothing_and_the_rows_equal_the_serial_run(cluster, serial, tmp_path):
    executor = RayExecutor(workers=2)

    def kill_the_workers_once(done, total, eta):
        # After the first chunk: one worker was just given the next chunk, the other is busy or done.
        if not executor.retried and done == 1:
            for actor in executor.actors:
                ray.kill(actor)

    rows = evaluate(CONFIG, tmp_path, progress=kill_the_workers_once, executor=executor, batch=1)
    assert executor.retried  # a dead worker's chunk ran again, on a fresh worker
    assert len(read_rows(tmp_path / "results.jsonl")) == 4  # every case written once, by the driver
    assert_same_rows(rows, serial)
    assert workers_gone()


def test_a_stopped_ray_run_resumes_from_its_file(cluster, serial, tmp_path):
    def stop(done, total, eta):
        if done > 0:  # the first call comes before any chunk
            raise Interrupt

    with pytest.raises(Interrupt):
        evaluate(CONFIG, tmp_path, progress=stop, executor=RayExecutor(workers=1), batch=1)
    assert len(read_rows(tmp_path / "results.jsonl")) == 1
    assert workers_gone()  # the stopped run took its workers down with it
    calls = []
    rows = evaluate(
        CONFIG, tmp_path, progress=lambda d, t, e: calls.append(d), executor=RayExecutor(), batch=1
    )
    assert calls == [1, 2, 3, 4]  # said at once (one row done), then a row per chunk
    assert_same_rows(rows, serial)


def test_a_killed_driver_resumes_and_the_command_takes_an_address(cluster, serial, tmp_path):
    argv = [
        sys.executable,
        "-m",
        "morphlib",
        "evaluate",
        "--dataset",
        "digits",
        "--model",
        "digits-cnn-robust",
    ]
    argv += ["--judges", "digits-judge", "--families", "pixel", "--budgets", "3", "--regime", "frozen"]
    argv += ["--sources", "4", "--frames", "3", "--out", str(tmp_path), "--batch", "1"]
    argv += ["--executor", "ray", "--address", cluster, "--workers", "1"]
    driver = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = tmp_path / "results.jsonl"
    try:
        deadline = time.monotonic() + 240
        while not read_rows(results) and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert read_rows(results), "the driver wrote no row"
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert len(read_rows(results)) < 4  # killed mid-run
    assert workers_gone()  # the cluster ends a dead driver's workers
    rows = evaluate(CONFIG, tmp_path, executor=RayExecutor(), batch=2)  # two workers, two sources each
    assert_same_rows(rows, serial)
