"""``csp-phase``, ``csp-joint``, ``csp-amplitude``: phase and/or log-amplitude per band coefficient of a
complex steerable pyramid, ``c = c0 · exp(η + iδ)``; residuals are never edited."""

from __future__ import annotations

from torch import Tensor

from morphlib.transforms import PyramidCoeffs, SteerablePyramid

from .base import Family, edit_change, register


class PyramidEdit(Family):
    spatial_phase = True

    def __init__(self, edited: Tensor, pyramid: SteerablePyramid) -> None:
        super().__init__(edited, pyramid)
        self.pyramid = pyramid
        self.coeffs: PyramidCoeffs = pyramid.analyze(edited)

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(b.shape[1:]) for b in self.coeffs.bands]

    @property
    def bands(self) -> list[Tensor]:
        return list(self.coeffs.bands)

    def coefficient_changes(self, groups: dict[str, list[Tensor]]) -> list[Tensor]:
        n = len(self.coeffs.bands)
        deltas: list[Tensor | None] = list(groups.get("delta", [None] * n))
        etas: list[Tensor | None] = list(groups.get("eta", [None] * n))
        return [edit_change(c0, e, d) for c0, d, e in zip(self.coeffs.bands, deltas, etas, strict=True)]

    def change(self, groups: dict[str, list[Tensor]]) -> Tensor:
        c = self.coeffs  # the residuals only give the size: synthesised without them
        edit = PyramidCoeffs(c.highpass, self.coefficient_changes(groups), c.lowpass, c.image_size)
        return self.pyramid.synthesize(edit, residuals=False)


@register
class PhaseEdit(PyramidEdit):
    """The paper's family: phases only."""

    name = "csp-phase"
    kinds = ("delta",)


@register
class JointEdit(PyramidEdit):
    """Phases and log-amplitudes: can also strengthen or weaken structure, not only move it."""

    name = "csp-joint"
    kinds = ("delta", "eta")


@register
class AmplitudeEdit(PyramidEdit):
    """Log-amplitudes only (an ablation)."""

    name = "csp-amplitude"
    kinds = ("eta",)
