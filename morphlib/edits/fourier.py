"""``fourier-phase``: a phase increment per coefficient of the orthonormal ``rfft2`` (global structure)."""

from __future__ import annotations

import torch
from torch import Tensor

from morphlib.transforms import Fourier, SteerablePyramid

from .base import Family, edit_change, register


@register
class FourierPhaseEdit(Family):
    """DC and Nyquist phases are tied (:meth:`FourierCoeffs.tie_phase`), so the image stays real."""

    name = "fourier-phase"
    kinds = ("delta",)

    def __init__(self, edited: Tensor, pyramid: SteerablePyramid) -> None:
        super().__init__(edited, pyramid)
        self.fourier = Fourier()
        self.coeffs = self.fourier.analyze(edited)

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(self.coeffs.spectrum.shape[1:])]

    @property
    def bands(self) -> list[Tensor]:
        return [self.coeffs.spectrum]

    def coefficient_changes(self, groups: dict[str, list[Tensor]]) -> list[Tensor]:
        return [edit_change(self.coeffs.spectrum, None, self.coeffs.tie_phase(groups["delta"][0]))]

    def change(self, groups: dict[str, list[Tensor]]) -> Tensor:
        (spectrum_change,) = self.coefficient_changes(groups)
        return torch.fft.irfft2(spectrum_change, s=self.coeffs.image_size, norm="ortho")
