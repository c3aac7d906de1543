"""Invertible, differentiable, batched image transforms with one interface.

Each has ``analyze(x) -> coeffs`` and ``synthesize(coeffs) -> x`` for ``x`` of shape ``(B, C, H, W)``.
"""

from .base import Transform, check_images
from .fourier import Fourier, FourierCoeffs
from .pixel import Pixel, PixelCoeffs
from .steerable import BANDWIDTHS, PyramidCoeffs, SteerablePyramid

__all__ = [
    "BANDWIDTHS",
    "Fourier",
    "FourierCoeffs",
    "Pixel",
    "PixelCoeffs",
    "PyramidCoeffs",
    "SteerablePyramid",
    "Transform",
    "check_images",
]
