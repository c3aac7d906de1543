"""A resumable run folder: its settings, its finished rows, and one writer at a time.

The evaluation and the settings study both append one JSON row per finished case to a JSONL
file in their folder, and a rerun of the same command skips the rows already there.
:class:`RunStore` is that file and its guards:

* the run's settings are stored beside the rows and a rerun with other settings is refused;
* one process writes at a time: a lock file names its holder (host, process, start time), and
  a lock left by a process that no longer runs on this host is taken over;
* a row is never written twice (its ``key`` is already there), and a file that holds the same
  key twice (an older run) counts it once;
* a line that is not a row (torn by an interruption, or not a JSON object with a ``key``) is
  reported with its line number and set aside in ``<rows>.bad``, so that the rest still counts.

Examples
--------
>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> with RunStore(folder).open({"model": "m"}) as store:
...     written = store.append([{"key": "a", "x": 1}, {"key": "a", "x": 2}, {"key": "b", "x": 3}])
...     sorted(store.done)
['a', 'b']
>>> [row["x"] for row in RunStore(folder).rows()]
[1, 3]
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

log = logging.getLogger("morphlib.store")

__all__ = ["RunStore"]


class RunStore:
    """The rows file ``rows`` and settings file ``settings`` of a run folder (see the module notes)."""

    def __init__(
        self, folder: str | Path, rows: str = "results.jsonl", settings: str = "config.json"
    ) -> None:
        self.folder = Path(folder)
        self.path = self.folder / rows
        self.settings_path = self.folder / settings
        self.lock_path = self.folder / f".{rows}.lock"
        self.done: set[str] = set()

    # ------------------------------------------------------------------ settings and lock
    @contextlib.contextmanager
    def open(self, settings: dict, same: Callable[[dict], bool] | None = None) -> Iterator[RunStore]:
        """Hold the folder for writing: check and store ``settings``, clean the rows file, and yield.

        ``same(stored)`` says whether settings stored by an earlier run are this run's
        (default: equal); other settings raise ValueError.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        self._acquire()
        try:
            if self.settings_path.exists():
                stored = json.loads(self.settings_path.read_text())
                plain = json.loads(json.dumps(settings))  # tuples read back as lists
                if not (same(stored) if same is not None else stored == plain):
                    raise ValueError(
                        f"{self.folder} holds a run with other settings ({self.settings_path}); "
                        "use a new output folder"
                    )
            self.settings_path.write_text(json.dumps(settings, indent=2))
            self.done = {row["key"] for row in self._clean()}
            yield self
        finally:
            self.lock_path.unlink(missing_ok=True)

    def _acquire(self) -> None:
        holder = dict(host=socket.gethostname(), pid=os.getpid(), started=time.strftime("%Y-%m-%d %H:%M:%S"))
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                other = self._holder()
                if other is not None and not _gone(other):
                    raise ValueError(
                        f"{self.folder} is being written by process {other.get('pid')} on "
                        f"{other.get('host')} (since {other.get('started')}); wait for it to finish, or "
                        "use another output folder. "
                        f"If that process is gone, remove {self.lock_path}"
                    ) from None
                log.warning("taking over %s from a process that no longer runs (%s)", self.lock_path, other)
                self.lock_path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(holder, f)
            return
        raise ValueError(f"could not lock {self.folder}: {self.lock_path} keeps reappearing")

    def _holder(self) -> dict | None:
        try:
            holder = json.loads(self.lock_path.read_text())
        except (OSError, ValueError):
            return None  # half written by a process that died while writing it
        return holder if isinstance(holder, dict) else None

    # ------------------------------------------------------------------ rows
    def rows(self) -> list[dict]:
        """The rows, each key once (the first written); lines that are not rows are skipped (logged)."""
        rows, _, _ = self._read()
        return rows

    def append(self, rows: Iterable[dict]) -> int:
        """Write the rows whose keys are not there yet, flushed to disk; returns how many were written."""
        new = []
        for row in rows:
            if row["key"] not in self.done:
                self.done.add(row["key"])
                new.append(row)
        if new:
            with self.path.open("a") as f:
                f.write("".join(json.dumps(row) + "\n" for row in new))
                f.flush()
                os.fsync(f.fileno())
        return len(new)

    def _read(self) -> tuple[list[dict], list[tuple[int, str, str]], int]:
        """Unique rows, the bad lines as ``(line number, text, why)``, and how many lines are not blank."""
        if not self.path.exists():
            return [], [], 0
        rows, bad, seen, lines = [], [], set(), 0
        with self.path.open() as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                lines += 1
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    bad.append((number, line, f"not JSON ({err.msg})"))
                    continue
                if not isinstance(row, dict) or not isinstance(row.get("key"), str):
                    bad.append((number, line, "not a row (a JSON object with a key)"))
                    continue
                if row["key"] not in seen:
                    seen.add(row["key"])
                    rows.append(row)
        for number, _, why in bad:
            log.warning("%s line %d skipped: %s", self.path, number, why)
        return rows, bad, lines

    def _clean(self) -> list[dict]:
        """Rewrite the rows file without bad lines (kept in ``<rows>.bad``) or repeated keys; its rows."""
        rows, bad, lines = self._read()
        if bad or lines != len(rows):
            with self.path.with_name(self.path.name + ".bad").open("a") as f:
                f.writelines(text if text.endswith("\n") else text + "\n" for _, text, _ in bad)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
            os.replace(tmp, self.path)
            log.warning(
                "%s: %d bad line(s) set aside in %s.bad, %d repeated row(s) dropped",
                self.path,
                len(bad),
                self.path.name,
                lines - len(rows) - len(bad),
            )
        return rows


def _gone(holder: dict) -> bool:
    """Whether the process that wrote a lock no longer runs (only known on this host)."""
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (KeyError, TypeError, ValueError):
        return True
    except PermissionError:
        return False
    return False
