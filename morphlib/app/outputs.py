"""Where the app's output files live: per-request folders under one temporary root."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
from pathlib import Path


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
