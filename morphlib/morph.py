"""Deprecated module path: the engine lives in :mod:`morphlib.engine`, the settings in
:mod:`morphlib.config`, class names in :mod:`morphlib.labels`.  ``from morphlib import morph``
is unchanged."""

from __future__ import annotations

import math
import warnings

from torch import Tensor

from .compat import forwarder
from .config import DEFAULT_RMS_BUDGET

__getattr__ = forwarder(
    "morphlib.morph",
    {
        "morph": "morphlib.engine",
        "gradient": "morphlib.engine",
        "Gradient": "morphlib.engine",
        "MorphResult": "morphlib.engine",
        "BudgetUnreachable": "morphlib.engine",
        "prepare_image": "morphlib.engine",
        "stalled": "morphlib.engine.search",
        "REGIMES": "morphlib.config",
        "FAMILIES": "morphlib.edits",
        "class_names": "morphlib.labels",
        "resolve_class": "morphlib.labels",
    },
)


def default_budget(image: Tensor) -> float:
    """Deprecated: ``Strength.default_budget(image[0].numel()).value``."""
    warnings.warn(
        "morphlib.morph.default_budget is deprecated; use morphlib.Strength.default_budget(C*H*W)",
        DeprecationWarning,
        stacklevel=2,
    )
    return DEFAULT_RMS_BUDGET * math.sqrt(image[0].numel())
