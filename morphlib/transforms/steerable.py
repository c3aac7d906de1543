"""Complex steerable pyramid (CSP), computed in the frequency domain.

Layout and filters follow Portilla & Simoncelli (2000) as implemented by
plenoptic/pyrtools ``SteerablePyramidFreq(is_complex=True)``: a real high-pass
residual, ``levels`` x ``K`` complex (one-sided, analytic) oriented bands, a real
low-pass residual.  Sub-octave variants (2 or 4 radial filters per octave) follow
Wadhwa et al. (2013).

Differences from the reference implementations, all by design:

* Filters are evaluated in closed form instead of through lookup tables, so that
  ``hi^2 + lo^2 == 1`` holds to rounding (the references agree to ~1e-5).
* Every band is filtered from the (cropped) spectrum of the input directly rather
  than through the chain of low-pass masks; the products are identical because
  each earlier low-pass mask is 1 on the support of the later filters.
* Synthesis is the exact adjoint of analysis (the one-sided filters, conjugated).
  On coefficients that come from ``analyze`` this equals the references'
  reconstruction; on edited coefficients it discards the part of each band that
  leaks into the opposite half-plane, as phase-based motion magnification does.
* Any size, odd or even, is transformed as it is (no padding).  An odd DFT axis has no
  Nyquist bin, so every frequency has its mirror on the grid; down-sampled grids keep
  the lowest ``ceil(n / 2)`` frequencies, which hold the whole support of the coarser
  filters, and the one unpaired bin of an even grid (its Nyquist) always lies where
  those filters are zero.  So reconstruction, the tight frame's Parseval identity and
  the adjointness of synthesis hold at every size, to rounding.
* Coefficient scaling: ``tight=False`` reproduces plenoptic's default scaling
  (coarser bands grow by ~2 per octave); ``tight=True`` reproduces plenoptic's
  ``tight_frame=True`` (Parseval: coefficient energy equals image energy, with
  complex bands counted as ``|c|^2``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .base import CHUNK_VALUES, WHOLE_VALUES, check_images

BANDWIDTHS = {"octave": 1, "half-octave": 2, "quarter-octave": 4}
MIN_SIZE = 16


@dataclass
class PyramidCoeffs:
    """Coefficients of a :class:`SteerablePyramid`.

    Attributes
    ----------
    highpass : Tensor
        ``(B, C, H, W)`` real high-pass residual, at the image's size.
    bands : list of Tensor
        One complex tensor ``(B, C, K, h, w)`` per level, finest first.
    lowpass : Tensor
        ``(B, C, h, w)`` real low-pass residual.
    image_size : tuple of int
        The size of the analysed image (that of ``highpass`` and of ``synthesize``'s output).
    """

    highpass: Tensor
    bands: list[Tensor]
    lowpass: Tensor
    image_size: tuple[int, int]

    def map_bands(self, fn: Callable[[int, Tensor], Tensor]) -> PyramidCoeffs:
        """Return a copy whose level ``i`` band is ``fn(i, band)``; residuals are shared."""
        return replace(self, bands=[fn(i, b) for i, b in enumerate(self.bands)])


@dataclass
class _Level:
    octave: int  # index into _Filters.sizes
    analysis: Tensor  # (K, h, w) complex: rotation * scale * radial * angular
    synthesis: Tensor  # (K, h, w) complex: the adjoint (conj. rotation, / scale^2), halved: _hermitian_half


@dataclass
class _Filters:
    sizes: list[tuple[int, int]]  # grid size per octave, full size first
    highpass: Tensor  # (H, W // 2 + 1): applied to the rfft2 half spectrum
    levels: list[_Level]
    lowpass_analysis: Tensor  # (h, w) on the last octave's grid
    lowpass_synthesis: Tensor  # halved, as the bands' synthesis masks
    where: list[Tensor]  # per octave: flat positions of its grid's frequencies in the full spectrum
    mirror: Tensor  # flat positions of -f for the frequencies f of the rfft2 half


def _frequencies(size: int, full: int) -> Tensor:
    """Integer DFT frequencies of a grid of ``size`` cut from one of ``full``, in Nyquist units."""
    return torch.fft.fftfreq(size, d=1.0 / size, dtype=torch.float64) * (2.0 / full)


def _spectrum_index(size: tuple[int, int], full: tuple[int, int]) -> Tensor:
    """Flat positions, in an unshifted ``full`` spectrum, of the frequencies of a ``size`` grid.

    The grid keeps the lowest frequencies ``-(n // 2) .. (n + 1) // 2 - 1`` on each axis (the
    DFT of a downsampled image), in its own unshifted order.
    """
    rows = torch.fft.fftfreq(size[0], d=1.0 / size[0], dtype=torch.float64).long() % full[0]
    cols = torch.fft.fftfreq(size[1], d=1.0 / size[1], dtype=torch.float64).long() % full[1]
    return (rows[:, None] * full[1] + cols).flatten()


def _gather(spec: Tensor, index: Tensor, size: tuple[int, int]) -> Tensor:
    """``spec`` ``(N, H, W)`` at the flat positions ``index``, shaped ``(N, *size)``.

    One ``gather`` over the flattened grid: faster than slicing and concatenating blocks
    (crops) or advanced indexing (mirrors), and small grids pay one op's overhead.
    """
    flat = spec.flatten(-2)
    return flat.gather(-1, index.expand(flat.shape[0], -1)).unflatten(-1, size)


def _crop(spec: Tensor, index: Tensor, size: tuple[int, int]) -> Tensor:
    """Keep the lowest ``size`` frequencies of an unshifted spectrum (the DFT of a downsampled image)."""
    return spec if spec.shape[-2:] == size else _gather(spec, index, size)


def _add_padded(target: Tensor | None, small: Tensor, index: Tensor, shape: Sequence[int]) -> Tensor:
    """``target + zero-padded small`` (the adjoint of :func:`_crop`), in place when ``target`` exists."""
    if small.shape[-2:] == shape[-2:]:
        return small if target is None else target.add_(small)
    if target is None:
        target = small.new_zeros(*small.shape[:-2], *shape[-2:])
    flat = small.flatten(-2)
    into = target.view(*target.shape[:-2], -1)  # a view (flatten could copy, and lose the sum)
    into.scatter_add_(-1, index.expand(flat.shape[0], -1), flat)
    return target


def _full_spectrum(half: Tensor, width: int) -> Tensor:
    """The full DFT of a real image of this width from its ``rfft2`` half (Hermitian symmetry).

    The half holds columns ``0 .. width // 2``; the rest, ``width // 2 + 1 .. width - 1``,
    are the mirrors of columns ``width - width // 2 - 1 .. 1`` (up to the Nyquist column
    exclusive for even widths, up to the last kept column for odd ones).
    """
    q = width // 2
    m = width - q  # one past the last mirrored column
    full = half.new_empty(*half.shape[:-1], width)
    full[..., : q + 1] = half
    # Column -c holds conj of column c at row -r: row 0 maps to itself, rows 1.. reverse.
    full[..., :1, q + 1 :] = half[..., :1, 1:m].flip(-1).conj()
    full[..., 1:, q + 1 :] = half[..., 1:, 1:m].flip(-2, -1).conj()
    return full


def _hermitian_half(spec: Tensor, mirror: Tensor) -> Tensor:
    """Twice the ``rfft2`` half of the Hermitian part of ``spec``: ``irfft2`` of it is ``2 ifft2(spec).real``.

    ``mirror`` holds the flat positions of the frequencies ``(-r, -c)`` of the half's rows
    and columns (the synthesis masks carry the factor 1/2).
    """
    height, width = spec.shape[-2:]
    half = (height, mirror.numel() // height)
    return _gather(spec, mirror, half).conj_physical_().add_(spec[..., : half[1]])


def _rcos_high(u: Tensor, position: float, width: float) -> Tensor:
    """Raised-cosine step in log2-frequency ``u``: 0 below ``position - width``, 1 above ``position``."""
    t = ((u - position) / width).clamp(-1.0, 0.0)
    return torch.cos(0.5 * math.pi * t)


def _rcos_low(u: Tensor, position: float, width: float) -> Tensor:
    """The complement of :func:`_rcos_high`: ``high**2 + low**2 == 1`` exactly."""
    t = ((u - position) / width).clamp(-1.0, 0.0)
    return torch.sin(-0.5 * math.pi * t)


class SteerablePyramid:
    """Complex steerable pyramid: analysis and synthesis of ``(B, C, H, W)`` batches.

    Parameters
    ----------
    scales : int or "auto"
        Number of octaves; ``"auto"`` uses ``floor(log2(min(H, W))) - 2``, the most the
        image allows.  A sub-octave pyramid has ``filters_per_octave`` levels per octave.
    orientations : int, optional
        Orientations ``K >= 2`` per level (angular filters ``cos^(K-1)``); default 4 for
        octave bandwidth and 8 for sub-octave bandwidths.
    bandwidth : {"octave", "half-octave", "quarter-octave"}
        Radial bandwidth: 1, 2 or 4 filters per octave.
    downsample : bool
        Halve each octave's grid (the default) or keep every level at full size.
    tight : bool
        Scale coefficients so that the transform is a Parseval tight frame.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 3, 40, 56, dtype=torch.float64)
    >>> pyr = SteerablePyramid(orientations=4)
    >>> c = pyr.analyze(x)
    >>> [tuple(b.shape) for b in c.bands]
    [(2, 3, 4, 40, 56), (2, 3, 4, 20, 28), (2, 3, 4, 10, 14)]
    >>> bool(torch.allclose(pyr.synthesize(c), x, atol=1e-12))
    True
    """

    def __init__(
        self,
        scales: int | str = "auto",
        orientations: int | None = None,
        bandwidth: str = "octave",
        downsample: bool = True,
        tight: bool = False,
    ):
        if bandwidth not in BANDWIDTHS:
            raise ValueError(f"bandwidth must be one of {sorted(BANDWIDTHS)}, got {bandwidth!r}")
        if orientations is None:
            orientations = 4 if bandwidth == "octave" else 8
        if isinstance(orientations, bool) or not isinstance(orientations, int) or orientations < 2:
            raise ValueError(f"orientations must be an integer >= 2, got {orientations!r}")
        if orientations > 16:
            raise ValueError(f"orientations must be at most 16, got {orientations}")
        if scales != "auto" and (isinstance(scales, bool) or not isinstance(scales, int) or scales < 0):
            raise ValueError(f"scales must be a non-negative integer or 'auto', got {scales!r}")
        self.scales = scales
        self.orientations = orientations
        self.bandwidth = bandwidth
        self.filters_per_octave = BANDWIDTHS[bandwidth]
        self.downsample = bool(downsample)
        self.tight = bool(tight)
        self._cache: dict[tuple, _Filters] = {}

    def __repr__(self) -> str:
        return (
            f"SteerablePyramid(scales={self.scales!r}, orientations={self.orientations}, "
            f"bandwidth={self.bandwidth!r}, downsample={self.downsample}, tight={self.tight})"
        )

    # ------------------------------------------------------------------ geometry
    def num_octaves(self, height: int, width: int) -> int:
        """Octaves used for an image of this size (raises if ``scales`` is too many)."""
        most = int(math.floor(math.log2(min(height, width)))) - 2
        if not isinstance(self.scales, int):  # "auto"
            return most
        if self.scales > most:
            raise ValueError(
                f"a {height}x{width} image allows at most {most} scales, {self.scales} requested; "
                "use scales='auto' or a larger image"
            )
        return self.scales

    def filters(self, height: int, width: int, dtype: torch.dtype, device: torch.device) -> _Filters:
        """Frequency-domain filters for an image of this size, cached per shape, dtype and device."""
        key = (height, width, dtype, torch.device(device))
        cached = self._cache.get(key)
        if cached is None:
            cached = self._build_filters(height, width, dtype, torch.device(device))
            self._cache[key] = cached
        return cached

    def _build_filters(self, height: int, width: int, dtype, device) -> _Filters:
        octaves = self.num_octaves(height, width)
        n = self.filters_per_octave
        k = self.orientations
        order = k - 1
        width_log = 1.0 / n  # transition width in octaves; spacing == width tiles exactly
        area = height * width

        sizes = [(height, width)]
        for _ in range(octaves):
            h, w = sizes[-1]
            sizes.append(((h + 1) // 2, (w + 1) // 2) if self.downsample else (h, w))

        # Closed-form angular gain: sum_b c * cos^(2 order) = 1 over the K orientations.
        const = (2 ** (2 * order)) * math.factorial(order) ** 2 / (k * math.factorial(2 * order))
        offsets = torch.arange(k, dtype=torch.float64) * math.pi / k

        def grid(size):
            fy = _frequencies(size[0], height)[:, None]
            fx = _frequencies(size[1], width)[None, :]
            radius = torch.sqrt(fx**2 + fy**2)
            # DC takes its neighbour's radius, as in the references (log of 0 is undefined).
            radius[0, 0] = 2.0 / width
            return torch.log2(radius), torch.atan2(fy.expand_as(radius), fx.expand_as(radius))

        # Masks are complex: multiplying a complex spectrum by a complex mask runs as fast as
        # by a real one, and so carries the bands' rotation at no cost.
        def cast(t, factor: complex = 1.0):
            return (t * factor).to(dtype=dtype.to_complex(), device=device)

        # (-i)^order turns the cosine lobe into the analytic (quadrature) filter.
        rot = (-1j) ** order

        log_r0, _ = grid(sizes[0])
        highpass = _rcos_high(log_r0, 0.0, width_log)[:, : width // 2 + 1]

        levels = []
        for level in range(1, octaves * n + 1):
            octave = (level - 1) // n
            log_r, angle = grid(sizes[octave])
            radial = _rcos_high(log_r, -level / n, width_log) * _rcos_low(log_r, -(level - 1) / n, width_log)
            angular = (
                2.0 * math.sqrt(const) * torch.cos(angle[None] - offsets[:, None, None]).clamp(min=0) ** order
            )
            mask = radial[None] * angular / math.sqrt(2.0)  # the tight frame's band filter
            scale = self._band_scale(area, sizes[octave], octave)
            levels.append(_Level(octave, cast(mask, rot * scale), cast(mask, 0.5 * rot.conjugate() / scale)))

        log_r, _ = grid(sizes[octaves])
        low = _rcos_low(log_r, -float(octaves), width_log)
        low_scale = self._lowpass_scale(area, sizes[octaves], octaves)
        full = (height, width)
        where = [_spectrum_index(size, full).to(device) for size in sizes]
        # Row -r, column -c for the half's rows r and columns c = 0 .. width // 2.
        rows = (-torch.arange(height)) % height
        cols = (-torch.arange(width // 2 + 1)) % width
        mirror = (rows[:, None] * width + cols).flatten().to(device)
        lowpass = (cast(low * low_scale), cast(low, 0.5 / low_scale))
        return _Filters(sizes, cast(highpass), levels, *lowpass, where, mirror)

    def _band_scale(self, area: int, size: tuple[int, int], octave: int) -> float:
        if self.tight:
            return 1.0
        gain = math.sqrt(area / (size[0] * size[1])) if self.downsample else 2.0**octave
        return math.sqrt(2.0) * gain

    def _lowpass_scale(self, area: int, size: tuple[int, int], octaves: int) -> float:
        if self.tight:
            return 1.0
        return math.sqrt(area / (size[0] * size[1])) if self.downsample else 2.0**octaves

    # ------------------------------------------------------------------ transform
    def analyze(self, x: Tensor) -> PyramidCoeffs:
        """Decompose ``x`` ``(B, C, H, W)`` (float32/float64, at least 16 px a side)."""
        x = check_images(x, min_size=MIN_SIZE)
        image_size = (int(x.shape[-2]), int(x.shape[-1]))
        lead = x.shape[:2]
        parts = [self._analyze(chunk) for (chunk,) in _chunks(x.flatten(0, 1))]
        highpass = _cat([p[0] for p in parts]).unflatten(0, lead)
        lowpass = _cat([p[2] for p in parts]).unflatten(0, lead)
        bands = [_cat(list(level)).unflatten(0, lead) for level in zip(*(p[1] for p in parts), strict=True)]
        return PyramidCoeffs(highpass, bands, lowpass, image_size)

    def _analyze(self, x: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
        """Highpass, bands and lowpass of images ``(N, H, W)``."""
        f = self.filters(x.shape[-2], x.shape[-1], x.dtype, x.device)
        half = torch.fft.rfft2(x, norm="ortho")
        highpass = torch.fft.irfft2(half * f.highpass, s=x.shape[-2:], norm="ortho")
        spec = _full_spectrum(half, x.shape[-1])
        bands = []
        cropped = spec
        for i, lvl in enumerate(f.levels):
            if i == 0 or lvl.octave != f.levels[i - 1].octave:
                cropped = _crop(spec, f.where[lvl.octave], f.sizes[lvl.octave])
            bands.append(torch.fft.ifft2(cropped.unsqueeze(-3) * lvl.analysis, norm="ortho"))
        low_spec = _crop(spec, f.where[-1], f.sizes[-1]) * f.lowpass_analysis
        lowpass = torch.fft.ifft2(low_spec, norm="ortho").real
        return highpass, bands, lowpass

    def synthesize(self, coeffs: PyramidCoeffs, residuals: bool = True) -> Tensor:
        """Reconstruct images from coefficients; the exact inverse of :meth:`analyze`.

        ``residuals=False`` synthesises the bands alone, as if the high-pass and low-pass
        were zero (they then only give the image size, dtype and device; their batch size
        may differ from the bands'): the image change of a band edit, without
        transforming two residuals of zeros.
        """
        highpass = coeffs.highpass
        f = self.filters(highpass.shape[-2], highpass.shape[-1], highpass.dtype, highpass.device)
        if len(coeffs.bands) != len(f.levels):
            raise ValueError(
                f"expected {len(f.levels)} band levels for this pyramid, got {len(coeffs.bands)}"
            )
        lead = coeffs.bands[0].shape[:2]
        bands = _chunks(*(b.flatten(0, 1) for b in coeffs.bands), values=highpass.shape[-2:].numel())
        res: list[tuple[Tensor | None, ...]] = [(None, None)] * len(bands)
        if residuals:
            res = list(
                _chunks(
                    highpass.flatten(0, 1), coeffs.lowpass.flatten(0, 1), values=highpass.shape[-2:].numel()
                )
            )
        out = _cat([self._synthesize(f, b, hp, lp) for b, (hp, lp) in zip(bands, res, strict=True)])
        return out.unflatten(0, lead)

    def _synthesize(self, f: _Filters, bands, highpass: Tensor | None, lowpass: Tensor | None) -> Tensor:
        """Images ``(N, H, W)`` from one chunk's bands (and residuals, unless None)."""
        full = f.sizes[0]
        # Bands and the low-pass go into one full spectrum; only its Hermitian part survives
        # the final real inverse, so the real high-pass joins in the half spectrum.
        spec: Tensor | None = None
        pending: Tensor | None = None  # sum of one octave's levels, on that octave's grid
        for i, (lvl, band) in enumerate(zip(f.levels, bands, strict=True)):
            part = _masked_sum(torch.fft.fft2(band, norm="ortho"), lvl.synthesis)
            pending = part if pending is None else pending + part
            if i + 1 == len(f.levels) or f.levels[i + 1].octave != lvl.octave:
                spec = _add_padded(spec, pending, f.where[lvl.octave], full)
                pending = None
        assert spec is not None  # a pyramid has at least one band level
        if highpass is None or lowpass is None:
            half = _hermitian_half(spec, f.mirror)
        else:
            low = torch.fft.fft2(lowpass, norm="ortho") * f.lowpass_synthesis
            spec = _add_padded(spec, low, f.where[-1], full)
            half = _hermitian_half(spec, f.mirror).add_(torch.fft.rfft2(highpass, norm="ortho") * f.highpass)
        return torch.fft.irfft2(half, s=full, norm="ortho")


def _masked_sum(bands: Tensor, masks: Tensor) -> Tensor:
    """``sum_k bands[:, k] * masks[k]`` for ``(N, K, h, w)`` bands and ``(K, h, w)`` masks.

    One multiply-accumulate per orientation, with no ``(N, K, h, w)`` product in memory.
    """
    acc = bands[:, 0] * masks[0]
    for k in range(1, masks.shape[0]):
        acc = acc.addcmul_(bands[:, k], masks[k])
    return acc


def _cat(parts: list[Tensor]) -> Tensor:
    """Concatenate chunks along the first axis; one chunk is returned as it is (no copy)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _chunks(*tensors: Tensor, values: int | None = None) -> list[tuple[Tensor, ...]]:
    """Split tensors that share their first axis into matching chunks of about CHUNK_VALUES pixels
    (one chunk if the whole batch has at most WHOLE_VALUES).

    ``values`` is the pixel count of one image (default: the last two axes of the first tensor).
    """
    per_image = values if values is not None else tensors[0].shape[-2:].numel()
    count = tensors[0].shape[0]
    size = count if count * per_image <= WHOLE_VALUES else max(1, CHUNK_VALUES // per_image)
    return list(zip(*(t.split(size) for t in tensors), strict=True))
