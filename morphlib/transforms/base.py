"""What every transform shares: input checks and the chunk size."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

#: Working sets are kept to about this many values (pixels x images, or x frames): a batch
#: of eight 224x224 RGB images spills the CPU caches, and transforming it whole runs ~2x
#: slower than image by image; small images still gain from batching.
CHUNK_VALUES = 2**18
#: A batch of at most this many values is transformed whole: concatenating a few chunks'
#: outputs costs more than their smaller working sets save (1x3x512², 2 threads: analysis
#: 19.9 ms in three chunks, 15.2 ms whole; 8x3x224² still gains from chunks).
WHOLE_VALUES = 2**20


class Transform(Protocol):
    """An invertible, differentiable linear transform of image batches."""

    def analyze(self, x: Tensor): ...

    def synthesize(self, coeffs) -> Tensor: ...


def check_images(x: object, min_size: int = 1) -> Tensor:
    """Return ``x`` if it is a finite float batch ``(B, C, H, W)``; raise ValueError if not."""
    if not isinstance(x, Tensor):
        raise ValueError(f"expected a torch.Tensor of shape (B, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(
            f"expected a 4-d image batch (B, C, H, W), got shape {tuple(x.shape)}; "
            "add batch/channel axes with x[None] or x[None, None]"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"expected a floating-point image (float32 or float64), got {x.dtype}; "
            "convert with x.float() / 255 for 8-bit images"
        )
    if x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"only float32 and float64 are supported, got {x.dtype}")
    h, w = x.shape[-2:]
    if min(h, w) < min_size:
        raise ValueError(f"image is {h}x{w} pixels; this transform needs at least {min_size} a side")
    # One reduction catches any NaN/inf; the exact element-wise test only runs if it fires.
    if not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
        raise ValueError("image contains NaN or infinite values")
    return x
