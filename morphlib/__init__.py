"""morphlib: how a classifier would change an image to make it another class.

Phase-based extrapolation of class gradients in a complex steerable pyramid.  Build a
:class:`MorphConfig` and a :class:`Strength` and call :func:`morph` (or :func:`morph_batch`);
``docs/method.md`` explains the method and ``docs/architecture.md`` the code.

The names below are imported on first use, so that ``import morphlib`` (and the command
line's ``--help``) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "PAPER": "morphlib.config",
    "RECOMMENDED": "morphlib.config",
    "RECOMMENDED_STRENGTH": "morphlib.config",
    "MorphConfig": "morphlib.config",
    "PyramidConfig": "morphlib.config",
    "Strength": "morphlib.config",
    "BudgetUnreachable": "morphlib.engine",
    "Gradient": "morphlib.engine",
    "MorphResult": "morphlib.engine",
    "gradient": "morphlib.engine",
    "morph": "morphlib.engine",
    "morph_batch": "morphlib.engine",
}

__all__ = [
    "PAPER",
    "RECOMMENDED",
    "RECOMMENDED_STRENGTH",
    "BudgetUnreachable",
    "Gradient",
    "MorphConfig",
    "MorphResult",
    "PyramidConfig",
    "Strength",
    "gradient",
    "morph",
    "morph_batch",
]

if TYPE_CHECKING:
    from .config import PAPER, RECOMMENDED, RECOMMENDED_STRENGTH, MorphConfig, PyramidConfig, Strength
    from .engine import BudgetUnreachable, Gradient, MorphResult, gradient, morph, morph_batch


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'morphlib' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
