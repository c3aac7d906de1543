"""Gaussian blur of band-sized grids, for the amplitude-weighted smoothing of phase edits."""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

__all__ = ["gaussian_blur"]


@functools.lru_cache(maxsize=64)
def _blur_matrix(n: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(n, n)`` matrix of a 1-D Gaussian blur (3σ support) with reflect padding folded in.

    Taps that fall outside ``[0, n)`` are mirrored back, repeatedly if the kernel is longer
    than the signal, so every row sums to 1 at any size.
    """
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    rows = torch.arange(n).view(-1, 1)
    cols = rows + t.long().view(1, -1)
    if n > 1:  # reflect about 0 and n − 1 (period 2(n − 1))
        cols = cols.remainder(2 * (n - 1))
        cols = torch.where(cols < n, cols, 2 * (n - 1) - cols)
    else:
        cols = torch.zeros_like(cols)
    matrix = torch.zeros(n, n, dtype=torch.float64)
    matrix.index_put_((rows.expand_as(cols), cols), kernel.expand_as(cols), accumulate=True)
    return matrix.to(dtype=dtype, device=device)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur over the last two axes (reflect padding, 3σ support).

    Two small matrix products: on CPU several times faster than two 1-D convolutions at
    band sizes (16–64 px) and still faster at 512 px, and differentiable.
    """
    rows = _blur_matrix(x.shape[-2], float(sigma), x.dtype, x.device)
    cols = _blur_matrix(x.shape[-1], float(sigma), x.dtype, x.device)
    return rows @ x @ cols.T
