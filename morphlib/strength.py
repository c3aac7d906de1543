"""Deprecated module path: automatic strength is ``Strength.auto(goal, cap_rms)`` (:mod:`morphlib.config`)
given to :func:`morphlib.morph`; the frozen search is :func:`morphlib.engine.auto_strength`."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from .compat import forwarder
from .config import AUTO_MAX_RMS, MorphConfig, Strength
from .engine import Gradient, MorphResult, morph
from .engine.auto import AutoStrength
from .engine.auto import auto_strength as _search

__getattr__ = forwarder(
    "morphlib.strength", {"AutoStrength": "morphlib.engine", "AUTO_MAX_RMS": "morphlib.config"}
)
_CONFIG = ("family", "loss", "luma_only", "phase_cap", "smooth_sigma", "pyramid")


def _strength(image: torch.Tensor, min_prob: float | None, max_budget: float | None) -> Strength:
    """The Strength of the old ``min_prob`` and ``max_budget`` (an L2 cap) for ``image`` ``(1, C, H, W)``."""
    cap = AUTO_MAX_RMS if max_budget is None else float(max_budget) / math.sqrt(image[0].numel())
    return Strength.auto(goal=min_prob, cap_rms=cap)


def default_max_budget(image: torch.Tensor) -> float:
    """Deprecated: ``Strength.auto().cap_l2(C*H*W)``."""
    warnings.warn(
        "default_max_budget is deprecated; use Strength.auto().cap_l2(C*H*W)", DeprecationWarning, 2
    )
    return AUTO_MAX_RMS * math.sqrt(image[0].numel())


def auto_strength(
    grad: Gradient, min_prob: float | None = None, max_budget: float | None = None, **kw: Any
) -> AutoStrength:
    """Deprecated: ``morphlib.engine.auto_strength(grad, Strength.auto(goal, cap_rms))``."""
    warnings.warn(
        "morphlib.strength.auto_strength(grad, min_prob, max_budget) is deprecated; use "
        "morphlib.engine.auto_strength(grad, Strength.auto(goal=..., cap_rms=...))",
        DeprecationWarning,
        stacklevel=2,
    )
    return _search(grad, _strength(grad.image, min_prob, max_budget), **kw)


def auto_morph(
    model: torch.nn.Module,
    image: Any,
    target: int | str,
    *,
    regime: str = "frozen",
    frames: int = 16,
    min_prob: float | None = None,
    max_budget: float | None = None,
    grad: Gradient | None = None,
    progress: Any = None,
    source: int | str | None = None,
    **settings: Any,
) -> tuple[MorphResult, AutoStrength]:
    """Deprecated: ``morph(model, image, target, MorphConfig(...), Strength.auto(goal, cap_rms))``;
    the result's ``auto`` is the second value returned here."""
    warnings.warn(
        "auto_morph is deprecated; use morph(model, image, target, MorphConfig(...), Strength.auto(goal=..., "
        "cap_rms=...)) and result.auto",
        DeprecationWarning,
        stacklevel=2,
    )
    unknown = sorted(set(settings) - set(_CONFIG))
    if unknown:
        raise TypeError(f"auto_morph() got unexpected keyword arguments {unknown}")
    if grad is not None:
        config = grad.config.replace(regime=regime)
        x = grad.image
    else:
        config = MorphConfig(regime=regime, **settings)
        from .engine import prepare_image

        x = prepare_image(image)
    strength = _strength(x, min_prob, max_budget)
    result = morph(
        model, image, target, config, strength, frames=frames, source=source, progress=progress, grad=grad
    )
    assert result.auto is not None
    return result, result.auto
