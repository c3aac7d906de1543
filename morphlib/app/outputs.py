"""What the app keeps between requests: output files in per-request folders under one temporary
root, and each session's last result in one bounded store."""

from __future__ import annotations

import atexit
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any


class OutputDirs:
    """Per-request output folders under one temporary root.

    Each :meth:`new` folder lives until ``keep`` newer ones exist or it is ``max_age_s``
    old; the root is removed at interpreter exit (and by :meth:`cleanup`).
    """

    def __init__(self, root: str | Path | None = None, keep: int = 32, max_age_s: float = 3600.0) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="morphlib-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        atexit.register(self.cleanup)

    def new(self, prefix: str = "run") -> Path:
        """A fresh empty folder; older folders beyond the limits are deleted first."""
        with self._lock:
            self.prune()
            return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.root))

    def prune(self) -> None:
        if not self.root.is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
        folders = sorted((p for p in self.root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        now = time.time()
        excess = len(folders) - (self.keep - 1)
        for i, folder in enumerate(folders):
            if i < excess or now - folder.stat().st_mtime > self.max_age_s:
                shutil.rmtree(folder, ignore_errors=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class ResultStore:
    """What sessions need of their last result, kept here, bounded, instead of in each session.

    A session's state holds only the key :meth:`put` returns; values are dropped, oldest first,
    once there are more than ``max_items`` of them or they add up to more than ``max_bytes``
    (``nbytes(value)``), and when they are ``ttl_s`` seconds old. So thousands of sessions cost
    a few bytes each, and the results of all of them together at most ``max_bytes``.

    Examples
    --------
    >>> store = ResultStore(max_items=2, max_bytes=100, nbytes=len)
    >>> a, b, c = store.put("x" * 10), store.put("y" * 10), store.put("z" * 10)
    >>> store.get(a), store.get(c)
    (None, 'zzzzzzzzzz')
    >>> store.get(store.put("w" * 101))  # larger than the whole store: not kept
    """

    def __init__(
        self,
        max_items: int = 64,
        max_bytes: int = 256 * 2**20,
        ttl_s: float = 3600.0,
        nbytes: Callable[[Any], int] = lambda value: 0,
    ) -> None:
        self.max_items, self.max_bytes, self.ttl_s, self.nbytes = max_items, max_bytes, ttl_s, nbytes
        self._items: OrderedDict[str, tuple[float, int, Any]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, value: Any) -> str:
        """Keep ``value``; returns its key (unguessable: a session cannot read another's)."""
        key = secrets.token_urlsafe(16)
        size = int(self.nbytes(value))
        with self._lock:
            self._items[key] = (time.monotonic(), size, value)
            self._bytes += size
            self._evict()
        return key

    def get(self, key: Any) -> Any:
        """The value kept under ``key``, or ``None`` (unknown, dropped or expired)."""
        if not isinstance(key, str):
            return None
        with self._lock:
            self._evict()
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[2]

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def _evict(self) -> None:
        now = time.monotonic()
        for key in [k for k, (made, _, _) in self._items.items() if now - made > self.ttl_s]:
            self._bytes -= self._items.pop(key)[1]
        while self._items and (len(self._items) > self.max_items or self._bytes > self.max_bytes):
            _, (_, size, _) = self._items.popitem(last=False)
            self._bytes -= size
