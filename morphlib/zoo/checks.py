"""Sanity checks shared by every way a model enters the zoo (manifest, Hub config, local folder,
:func:`~morphlib.zoo.wrap`): sane input sizes, finite normalisation, finite weights, paths kept
inside their folder.  Each returns the checked value or raises ``ValueError`` saying what is wrong.

Examples
--------
>>> check_input_size([224, 224], "model 'x'")
(224, 224)
>>> check_normalisation([0.5], [float("nan")], "model 'x'")
Traceback (most recent call last):
...
ValueError: model 'x': std must be finite and positive, got (nan,)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

#: Largest side, in pixels, of a network's input (the largest timm ImageNet models take 800).
MAX_INPUT_SIDE = 2048
#: Channel counts morphlib can feed: grey or RGB.
CHANNELS = (1, 3)


def check_input_size(size: Sequence, where: str) -> tuple[int, int]:
    """``(H, W)`` as ints, each between 1 and :data:`MAX_INPUT_SIDE`."""
    ok = isinstance(size, Sequence) and len(size) == 2
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
    if not ok:
        raise ValueError(f"{where}: input size must be two whole numbers (H, W), got {size!r}")
    if not all(1 <= v <= MAX_INPUT_SIDE for v in size):
        raise ValueError(
            f"{where}: input size {tuple(size)} is out of range: each side must be 1 to {MAX_INPUT_SIDE}"
        )
    return int(size[0]), int(size[1])


def check_normalisation(
    mean: Sequence, std: Sequence, where: str
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` as float tuples: one value per channel (1 or 3), finite, ``std`` positive."""
    try:
        mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: mean and std must be lists of numbers, got {mean!r} and {std!r}") from err
    if len(mean) not in CHANNELS or len(std) != len(mean):
        raise ValueError(
            f"{where}: mean and std need one value per channel (1 for grey, 3 for RGB), got {mean} and {std}"
        )
    if not all(math.isfinite(v) for v in mean):
        raise ValueError(f"{where}: mean must be finite, got {mean}")
    if not all(math.isfinite(v) and v > 0 for v in std):
        raise ValueError(f"{where}: std must be finite and positive, got {std}")
    return mean, std


def check_finite_weights(net: nn.Module, where: str) -> None:
    """Refuse a network with NaN or infinite parameters or buffers (it would answer NaN)."""
    bad = [
        name
        for name, t in (*net.named_parameters(), *net.named_buffers())
        if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise ValueError(f"{where}: the weights hold NaN or infinite values ({shown}); they are corrupt")


def inside(base: Path, relative: str, where: str) -> Path:
    """``base / relative``, resolved; refused unless it stays inside ``base`` (no ``..``, not absolute)."""
    parts = Path(relative).parts
    if not relative or Path(relative).is_absolute() or ".." in parts:
        raise ValueError(f"{where}: {relative!r} must be a path inside {base} (no '..', not absolute)")
    path = (base / relative).resolve()
    if not path.is_relative_to(base.resolve()):
        raise ValueError(f"{where}: {relative!r} leads outside {base} (through a link?)")
    return path
