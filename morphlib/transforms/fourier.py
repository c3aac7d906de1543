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
        """True for coefficients whose phase an edit must keep: DC, the Nyquist row and column.

        DC and the Nyquist frequencies are real for a real image, so their phase can only
        be 0 or pi; docs/method.md keeps them.  Every other coefficient's phase may change (in
        column 0 only as conjugate pairs, see :meth:`tie_phase`).
        """
        h, w = self.image_size
        mask = torch.zeros(self.spectrum.shape[-2:], dtype=torch.bool, device=self.spectrum.device)
        mask[0, 0] = True
        if w % 2 == 0:
            mask[:, w // 2] = True
        if h % 2 == 0:
            mask[h // 2, :] = True
        return mask

    def tie_phase(self, delta: Tensor) -> Tensor:
        """Phase increments ``(..., H, W // 2 + 1)`` made consistent with a real image.

        Fixed coefficients (:meth:`fixed_phase_mask`) get 0.  Column 0 of the half spectrum
        holds both members of each conjugate pair ``(k, 0)`` and ``(-k, 0)``; their phases
        must move oppositely, so that column is replaced by its odd part
        ``(delta[k] - delta[-k]) / 2``.  The map is a symmetric projection, so gradients
        through it are projected the same way.
        """
        h = self.image_size[0]
        delta = delta * (~self.fixed_phase_mask()).to(delta.dtype)
        column = delta[..., :, 0]
        mirrored = column[..., (-torch.arange(h, device=delta.device)) % h]
        return torch.cat([(0.5 * (column - mirrored)).unsqueeze(-1), delta[..., 1:]], dim=-1)


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
        return FourierCoeffs(torch.fft.rfft2(x, norm="ortho"), (int(x.shape[-2]), int(x.shape[-1])))

    def synthesize(self, coeffs: FourierCoeffs) -> Tensor:
        return torch.fft.irfft2(coeffs.spectrum, s=coeffs.image_size, norm="ortho")

    def __repr__(self) -> str:
        return "Fourier()"
