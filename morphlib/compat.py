"""Old module paths that still work: each name is looked up where it lives now, with a warning."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def forwarder(old: str, moved: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for module ``old`` whose names ``moved`` maps to ``"module:name"``."""

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        module, _, attr = moved[name].partition(":")
        warnings.warn(
            f"{old}.{name} is deprecated; use {module}.{attr or name}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(module), attr or name)

    return __getattr__
