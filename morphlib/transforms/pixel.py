"""The identity transform: edits are additive pixel changes."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .base import check_images


@dataclass
class PixelCoeffs:
    """Pixels as coefficients, ``(B, C, H, W)``."""

    pixels: Tensor


class Pixel:
    """Identity transform with the same interface as the others.

    >>> import torch
    >>> x = torch.rand(1, 3, 8, 8)
    >>> bool((Pixel().synthesize(Pixel().analyze(x)) == x).all())
    True
    """

    def analyze(self, x: Tensor) -> PixelCoeffs:
        return PixelCoeffs(check_images(x))

    def synthesize(self, coeffs: PixelCoeffs) -> Tensor:
        return coeffs.pixels

    def __repr__(self) -> str:
        return "Pixel()"
