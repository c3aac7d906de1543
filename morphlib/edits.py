"""Edit families: how a small set of parameters changes an image.

Every family keeps the source decomposition and changes it as docs/method.md §3 says:

=================  ====================================  ==========================
family             parameters                            image
=================  ====================================  ==========================
``pixel``          ``Δ`` per pixel                       ``x0 + Δ``
``fourier-phase``  ``δ`` per ``rfft2`` coefficient       ``F⁻¹(s0 · exp(iδ))``
``csp-phase``      ``δ`` per CSP band coefficient        ``S(c0 · exp(iδ))``
``csp-joint``      ``δ`` and ``η`` per band coefficient  ``S(c0 · exp(η + iδ))``
``csp-amplitude``  ``η`` per band coefficient            ``S(c0 · exp(η))``
=================  ====================================  ==========================

Residuals (CSP high-pass and low-pass, the DC/Nyquist Fourier phases) are never
edited.  Because the transforms are linear, the edited image is computed as
``x0 + T⁻¹(c0 · exp(η + iδ) − c0)``: zero parameters give back ``x0`` bit for bit,
and the reconstruction error of the transform never enters the edit.

Parameters are a tuple of real tensors (one per CSP level, per kind), each with a
leading *frame* axis: a batch of ``F`` parameter sets synthesises ``F`` images at once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .imaging import YIQ_TO_RGB, rgb_to_yiq
from .transforms import Fourier, SteerablePyramid

FAMILIES: tuple[str, ...] = ("pixel", "fourier-phase", "csp-phase", "csp-joint", "csp-amplitude")

Params = tuple[Tensor, ...]


def check_family(family: str) -> str:
    """Return ``family`` if it names an edit family; raise ValueError otherwise."""
    if family not in FAMILIES:
        raise ValueError(f"unknown edit family {family!r}; choose one of {', '.join(FAMILIES)}")
    return family


def _edit_change(c0: Tensor, eta: Tensor | None, delta: Tensor | None) -> Tensor:
    """``c0 · (exp(η + iδ) − 1)`` (either of ``η``, ``δ`` may be None); exactly 0 where both are 0.

    Phase edits use ``c0·polar(exp(η), δ) − c0`` (one transcendental pass, the fastest form on
    CPU); its rounding error is ~1e-7·|c0|, far below anything visible.
    """
    if delta is None:
        return c0 * torch.expm1(eta)
    gain = torch.ones_like(delta) if eta is None else torch.exp(eta)
    return c0 * torch.polar(gain, delta) - c0


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
        self.family = check_family(family)
        if image.ndim != 4 or image.shape[0] < 1:
            raise ValueError(f"EditSpace needs images (B, C, H, W), got shape {tuple(image.shape)}")
        self.image = image
        grey = (image == image[:, :1]).flatten(1).all(1) if image.shape[1] == 3 else torch.tensor([False])
        if grey.any() and not grey.all():
            raise ValueError("a batch mixes grey and colour images; edit them in separate batches")
        self.grey = bool(grey.all())
        self.luma_only = bool(luma_only) and image.shape[1] == 3 and not self.grey
        self.pyramid = pyramid if pyramid is not None else SteerablePyramid()
        self.fourier = Fourier()
        if self.grey:
            edited = image[:, :1]
        else:
            edited = rgb_to_yiq(image)[:, :1] if self.luma_only else image
        self.has_delta = family != "csp-amplitude" and family != "pixel"
        self.has_eta = family in ("csp-joint", "csp-amplitude")
        if family == "pixel":
            self._shapes = [tuple(edited.shape[1:])]
        elif family == "fourier-phase":
            coeffs = self.fourier.analyze(edited)
            self._fourier = coeffs
            self._spectrum = coeffs.spectrum
            self._image_size = coeffs.image_size
            self._shapes = [tuple(coeffs.spectrum.shape[1:])]
        else:
            coeffs = self.pyramid.analyze(edited)
            self._coeffs = coeffs
            self._bands = coeffs.bands
            self._shapes = [tuple(b.shape[1:]) for b in coeffs.bands]

    # ------------------------------------------------------------------ parameters
    @property
    def kinds(self) -> tuple[str, ...]:
        """The name of each parameter kind, in order: ``"delta"``, ``"eta"`` or ``"pixel"``."""
        if self.family == "pixel":
            return ("pixel",)
        return (("delta",) if self.has_delta else ()) + (("eta",) if self.has_eta else ())

    @property
    def bands(self) -> list[Tensor]:
        """The source's complex coefficients, one ``(1, C, ...)`` tensor per level."""
        if self.family == "pixel":
            return []
        if self.family == "fourier-phase":
            return [self._spectrum]
        return list(self._bands)

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
        groups = self.split(params)
        if self.family == "pixel":
            raise ValueError("the pixel family has no transform coefficients")
        if self.family == "fourier-phase":
            return [_edit_change(self._spectrum, None, self._fourier.tie_phase(groups["delta"][0]))]
        deltas = groups.get("delta", [None] * len(self._bands))
        etas = groups.get("eta", [None] * len(self._bands))
        return [_edit_change(c0, e, d) for c0, d, e in zip(self._bands, deltas, etas, strict=True)]

    def coefficients(self, params: Params) -> list[Tensor]:
        """The edited complex coefficients ``c = c0 · exp(η + iδ)`` per level."""
        return [c0 + dc for c0, dc in zip(self.bands, self.coefficient_changes(params), strict=True)]

    def change(self, params: Params) -> Tensor:
        """The image change ``x − x0`` ``(F, C, H, W)`` that ``params`` make (unclipped)."""
        if self.family == "pixel":
            edited_change = params[0]
        elif self.family == "fourier-phase":
            (spectrum_change,) = self.coefficient_changes(params)
            edited_change = torch.fft.irfft2(spectrum_change, s=self._image_size, norm="ortho")
        else:
            c = self._coeffs  # phase and amplitude edits leave the residuals as they are
            edit = type(c)(c.highpass, self.coefficient_changes(params), c.lowpass, c.image_size)
            edited_change = self.pyramid.synthesize(edit, residuals=False)
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
        if not sigma or not self.has_delta or not self.family.startswith("csp"):
            return params
        out = list(params)
        for i, band in enumerate(self._bands):
            amplitude = band.abs()
            weight = gaussian_blur(amplitude, sigma).clamp_min(torch.finfo(amplitude.dtype).tiny)
            out[i] = gaussian_blur(amplitude * params[i], sigma) / weight
        return tuple(out)


def scale_params(params: Sequence[Tensor], factors: Tensor) -> Params:
    """Multiply parameters ``(1, ...)`` by ``factors`` ``(F,)`` to give ``F`` frames."""
    return tuple(p * factors.to(p).view(-1, *([1] * (p.ndim - 1))) for p in params)


def params_abs_max(params: Sequence[Tensor]) -> Tensor:
    """The largest absolute value over all parameters, per frame ``(F,)``."""
    return torch.stack([p.abs().flatten(1).amax(dim=1) for p in params]).amax(dim=0)
