"""Deprecated: the recommended settings are :data:`morphlib.config.RECOMMENDED` and
:data:`morphlib.config.RECOMMENDED_STRENGTH`."""

from __future__ import annotations

import warnings
from typing import Any

from .config import RECOMMENDED, RECOMMENDED_STRENGTH

_VALUES = {
    "FAMILY": RECOMMENDED.family,
    "REGIME": RECOMMENDED.regime,
    "SMOOTH_SIGMA": RECOMMENDED.smooth_sigma,
    "GOAL_PROB": RECOMMENDED_STRENGTH.goal,
    "MAX_RMS": RECOMMENDED_STRENGTH.cap_rms,
}


def __getattr__(name: str) -> Any:
    if name not in _VALUES:
        raise AttributeError(f"module 'morphlib.recommended' has no attribute {name!r}")
    warnings.warn(
        f"morphlib.recommended.{name} is deprecated; use morphlib.config.RECOMMENDED / RECOMMENDED_STRENGTH",
        DeprecationWarning,
        stacklevel=2,
    )
    return _VALUES[name]
