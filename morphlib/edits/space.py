"""One source (or a batch of sources) and one edit family: parameters in, edited images out.

:class:`EditSpace` handles what every family shares: colour (grey images edited as one channel,
or only the YIQ luma of a colour image), the phase cap and the amplitude-weighted smoothing of
phase increments; the family itself (:mod:`morphlib.edits.base`) turns parameters into a change
of the edited channels.  The edited image is ``x0 + change``: zero parameters give ``x0`` bit for
bit, and the transform's reconstruction error never enters the edit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from morphlib.imaging import YIQ_TO_RGB, grey_rows, rgb_to_yiq
from morphlib.transforms import SteerablePyramid

from .base import REGISTRY, Family, Params
from .smoothing import gaussian_blur

__all__ = ["EditSpace"]


class EditSpace:
    """One source image and one edit family: parameters in, edited images out.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    image : Tensor
        The source ``(1, C, H, W)`` in ``[0, 1]``; or ``B`` sources ``(B, C, H, W)``, whose
        parameters then have ``B`` rows, row ``b`` editing source ``b`` (a batched morph).
    luma_only : bool
        Edit only the luma Y of the YIQ image and keep the chroma (needs ``C == 3``;
        a one-channel image is its own luma).  An RGB image whose three channels are
        equal is edited as grey whatever ``luma_only`` says: one channel is edited
        and its change given to all three, so no colour can appear.  The sources of a
        batch are all grey or none.
    pyramid : SteerablePyramid, optional
        The CSP for the ``csp-*`` families (default: octave, 4 orientations).

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 3, 32, 32)
    >>> space = EditSpace("csp-phase", x)
    >>> params = space.zeros(frames=2)
    >>> bool((space.images(params) == x).all())
    True
    """

    def __init__(
        self,
        family: str,
        image: Tensor,
        luma_only: bool = False,
        pyramid: SteerablePyramid | None = None,
    ):
        if family not in REGISTRY:
            raise ValueError(f"unknown edit family {family!r}; choose one of {', '.join(REGISTRY)}")
        self.family = family
        if image.ndim != 4 or image.shape[0] < 1:
            raise ValueError(f"EditSpace needs images (B, C, H, W), got shape {tuple(image.shape)}")
        self.image = image
        grey = grey_rows(image)
        if grey.any() and not grey.all():
            raise ValueError("a batch mixes grey and colour images; edit them in separate batches")
        self.grey = bool(grey.all())
        self.luma_only = bool(luma_only) and image.shape[1] == 3 and not self.grey
        self.pyramid = pyramid if pyramid is not None else SteerablePyramid()
        if self.grey:
            edited = image[:, :1]
        else:
            edited = rgb_to_yiq(image)[:, :1] if self.luma_only else image
        self.edit: Family = REGISTRY[family](edited, self.pyramid)
        self.has_delta = "delta" in self.edit.kinds
        self._shapes = self.edit.shapes

    # ------------------------------------------------------------------ parameters
    @property
    def kinds(self) -> tuple[str, ...]:
        """The name of each parameter kind, in order: ``"delta"``, ``"eta"`` or ``"pixel"``."""
        return self.edit.kinds

    @property
    def bands(self) -> list[Tensor]:
        """The source's complex coefficients, one ``(B, C, ...)`` tensor per level (none for pixels)."""
        return self.edit.bands

    def zeros(self, frames: int = 1, requires_grad: bool = False) -> Params:
        """Parameters of the unedited image, ``frames`` copies."""
        dtype, device = self.image.dtype, self.image.device
        n_kinds = len(self.kinds)
        return tuple(
            torch.zeros((frames, *shape), dtype=dtype, device=device, requires_grad=requires_grad)
            for _ in range(n_kinds)
            for shape in self._shapes
        )

    def split(self, params: Params) -> dict[str, list[Tensor]]:
        """Group a parameter tuple by kind: ``{"delta": [...], "eta": [...]}``."""
        n = len(self._shapes)
        return {kind: list(params[i * n : (i + 1) * n]) for i, kind in enumerate(self.kinds)}

    # ------------------------------------------------------------------ synthesis
    def coefficient_changes(self, params: Params) -> list[Tensor]:
        """``c − c0 = c0 · (exp(η + iδ) − 1)`` per level (the spectrum for ``fourier-phase``)."""
        return self.edit.coefficient_changes(self.split(params))

    def coefficients(self, params: Params) -> list[Tensor]:
        """The edited complex coefficients ``c = c0 · exp(η + iδ)`` per level."""
        return [c0 + dc for c0, dc in zip(self.bands, self.coefficient_changes(params), strict=True)]

    def change(self, params: Params) -> Tensor:
        """The image change ``x − x0`` ``(F, C, H, W)`` that ``params`` make (unclipped)."""
        edited_change = self.edit.change(self.split(params))
        if self.grey:
            return edited_change.expand(-1, 3, -1, -1)
        if not self.luma_only:
            return edited_change
        # Only Y changes; RGB change = (YIQ->RGB matrix, first column) * ΔY.
        column = YIQ_TO_RGB[:, 0].to(dtype=edited_change.dtype, device=edited_change.device)
        return edited_change * column.view(1, 3, 1, 1)

    def images(self, params: Params) -> Tensor:
        """Edited images ``(F, C, H, W)``, unclipped; zero parameters give exactly ``x0``."""
        return self.image + self.change(params)

    def clip(self, images: Tensor) -> Tensor:
        """``images`` (from :meth:`images`) brought into ``[0, 1]``.

        A luma-only edit adds the same ``ΔY`` to R, G and B; clamping each channel alone would
        change the colour of a saturated pixel, so ``ΔY`` itself is clamped to what the pixel's
        own colour allows (its chroma is kept exactly: no new colour).  Other edits: per channel.
        """
        if not self.luma_only:
            return images.clamp(0.0, 1.0)
        x0 = self.image
        luma = (images - x0).mean(dim=1, keepdim=True)
        low, high = -x0.amin(dim=1, keepdim=True), 1.0 - x0.amax(dim=1, keepdim=True)
        return x0 + torch.clamp(luma, low, high)

    # ------------------------------------------------------------------ controls
    def cap_phase(self, params: Params, cap: float | None) -> Params:
        """Clamp every phase increment to ``[-cap, cap]`` radians (other kinds unchanged)."""
        if cap is None or not self.has_delta:
            return params
        n = len(self._shapes)
        return tuple(p.clamp(-cap, cap) if i < n else p for i, p in enumerate(params))

    def smooth_phase(self, params: Params, sigma: float | None) -> Params:
        """Amplitude-weighted smoothing of phase increments: ``δ ← Gσ*(A·δ) / Gσ*(A)`` per band.

        ``sigma`` is in pixels of each band's own grid.  Only CSP phase parameters are
        smoothed (a Fourier coefficient has no spatial neighbourhood).
        """
        if not sigma or not self.has_delta or not self.edit.spatial_phase:
            return params
        out = list(params)
        for i, band in enumerate(self.edit.bands):
            amplitude = band.abs()
            weight = gaussian_blur(amplitude, sigma).clamp_min(torch.finfo(amplitude.dtype).tiny)
            out[i] = gaussian_blur(amplitude * params[i], sigma) / weight
        return tuple(out)
