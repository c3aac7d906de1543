"""The resumable run folder: one writer at a time, no key twice, lines that are not rows set aside."""

import json
import os
import socket
import subprocess
import sys

import pytest

from morphlib.store import RunStore


def test_a_second_writer_is_refused_and_named(tmp_path):
    with RunStore(tmp_path).open({"a": 1}):
        with pytest.raises(
            ValueError, match=f"being written by process {os.getpid()} on {socket.gethostname()}"
        ):
            with RunStore(tmp_path).open({"a": 1}):
                pass
    with RunStore(tmp_path).open({"a": 1}):  # free again once the first is done
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock = tmp_path / ".results.jsonl.lock"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "started": "then"}))
    with RunStore(tmp_path).open({"a": 1}) as store:
        store.append([{"key": "k"}])
    assert not lock.exists()


def test_other_settings_are_refused(tmp_path):
    with RunStore(tmp_path).open({"model": "a"}):
        pass
    with pytest.raises(ValueError, match="holds a run with other settings"):
        with RunStore(tmp_path).open({"model": "b"}):
            pass


def test_repeated_keys_and_bad_lines(tmp_path, caplog):
    rows = tmp_path / "results.jsonl"
    rows.write_text(
        '{"key": "a", "x": 1}\n{}\nnull\n{"key": "a", "x": 2}\n[1, 2]\n{"key": "b", "x": 3}\n{"key": "c", "x'
    )
    assert [r["x"] for r in RunStore(tmp_path).rows()] == [1, 3]
    assert any("line 2 skipped" in m for m in caplog.messages) and any(
        "line 7 skipped" in m for m in caplog.messages
    )
    with RunStore(tmp_path).open({}) as store:
        assert store.done == {"a", "b"}
        assert store.append([{"key": "a", "x": 9}, {"key": "c", "x": 4}]) == 1  # "a" is never written again
    assert [json.loads(line)["x"] for line in rows.read_text().splitlines()] == [1, 3, 4]
    set_aside = (tmp_path / "results.jsonl.bad").read_text().splitlines()
    assert set_aside == ["{}", "null", "[1, 2]", '{"key": "c", "x']
