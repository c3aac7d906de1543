"""Orthonormal 2-D DFT of real images, parametrised by the half spectrum."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .base import check_images


@dataclass
class FourierCoeffs:
    """Half spectrum ``(B, C, H, W // 2 + 1)`` of an ``H x W`` image (``rfft2``, orthonormal)."""

    spectrum: Tensor
    image_size: tuple[int, int]

    @property
    def amplitude(self) -> Tensor:
        return self.spectrum.abs()

    @property
    def phase(self) -> Tensor:
        return self.spectrum.angle()

    @classmethod
    def from_polar(cls, amplitude: Tensor, phase: Tensor, image_size: tuple[int, int]):
        return cls(torch.polar(amplitude, phase), image_size)

    def fixed_phase_mask(self) -> Tensor:
        """True for coefficients whose phase an edit must keep: DC, the Nyquist row and columns.

        Column 0 (and column ``W/2`` for even ``W``) of the half spectrum holds conjugate
        pairs twice, and DC/Nyquist coefficients are real for a real image, so editing
        their phase has no consistent meaning; the image stays real only if they are kept.
        """
        h, w = self.image_size
        mask = torch.zeros(self.spectrum.shape[-2:], dtype=torch.bool, device=self.spectrum.device)
        mask[:, 0] = True
        if w % 2 == 0:
            mask[:, w // 2] = True
        if h % 2 == 0:
            mask[h // 2, :] = True
        return mask


class Fourier:
    """2-D DFT per channel (``rfft2``/``irfft2``, ``norm="ortho"``).

    >>> import torch
    >>> x = torch.rand(2, 3, 16, 20, dtype=torch.float64)
    >>> f = Fourier()
    >>> bool(torch.allclose(f.synthesize(f.analyze(x)), x))
    True
    """

    def analyze(self, x: Tensor) -> FourierCoeffs:
        x = check_images(x)
        return FourierCoeffs(torch.fft.rfft2(x, norm="ortho"), tuple(x.shape[-2:]))

    def synthesize(self, coeffs: FourierCoeffs) -> Tensor:
        return torch.fft.irfft2(coeffs.spectrum, s=coeffs.image_size, norm="ortho")

    def __repr__(self) -> str:
        return "Fourier()"
