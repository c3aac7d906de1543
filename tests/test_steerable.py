"""The complex steerable pyramid: reconstruction, Parseval, adjointness, gradients, input checks."""

import itertools

import pytest
import torch

from morphlib.transforms import SteerablePyramid
from tests.conftest import rel_err

OPTIONS = list(itertools.product(["octave", "half-octave", "quarter-octave"], [True, False], [False, True]))
SHAPES = [(16, 16), (40, 56), (33, 47), (64, 30)]  # square, non-square, odd, portrait


def energy(c):
    return c.highpass.pow(2).sum() + sum(b.abs().pow(2).sum() for b in c.bands) + c.lowpass.pow(2).sum()


def inner(a, b):
    """Real inner product of two coefficient sets (complex bands as R^2)."""
    total = (a.highpass * b.highpass).sum() + (a.lowpass * b.lowpass).sum()
    return total + sum((x.conj() * y).real.sum() for x, y in zip(a.bands, b.bands, strict=True))


@pytest.mark.parametrize("bandwidth,downsample,tight", OPTIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_perfect_reconstruction(bandwidth, downsample, tight, shape, device):
    pyr = SteerablePyramid(bandwidth=bandwidth, downsample=downsample, tight=tight)
    gen = torch.Generator().manual_seed(0)
    x64 = torch.rand(2, 3, *shape, generator=gen, dtype=torch.float64).to(device)
    assert rel_err(pyr.synthesize(pyr.analyze(x64)), x64) <= 1e-12
    x32 = x64.float()
    y32 = pyr.synthesize(pyr.analyze(x32))
    assert y32.dtype == torch.float32 and y32.shape == x32.shape
    assert rel_err(y32, x32) <= 1e-5


@pytest.mark.parametrize(
    "bandwidth,downsample", list(itertools.product(["octave", "half-octave"], [True, False]))
)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_tight_frame_is_parseval_and_synthesis_is_adjoint(bandwidth, downsample, dtype, tol, device):
    pyr = SteerablePyramid(bandwidth=bandwidth, downsample=downsample, tight=True)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 48, 40, generator=gen, dtype=dtype).to(device)
    c = pyr.analyze(x)
    assert abs(energy(c).item() / x.pow(2).sum().item() - 1) <= tol
    # <A x, c'> == <x, A* c'> for arbitrary coefficients c', not only those in the range of A.
    other = pyr.analyze(torch.randn(2, 3, 48, 40, generator=gen, dtype=dtype).to(device))
    other = other.map_bands(lambda i, b: b * torch.exp(1j * torch.randn(b.shape, generator=gen).to(b)))
    lhs = inner(c, other).item()
    rhs = (x * pyr.synthesize(other)).sum().item()
    assert abs(lhs - rhs) <= tol * abs(lhs) * 10


ODD_SHAPES = [(63, 65), (33, 47), (17, 16)]  # odd x odd, odd x odd, odd x even


@pytest.mark.parametrize(
    "bandwidth,downsample",
    list(itertools.product(["octave", "half-octave", "quarter-octave"], [True, False])),
)
@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_odd_sizes_reconstruct_are_parseval_and_adjoint(bandwidth, downsample, shape):
    """Odd sizes are transformed as they are: no padding, so the tight frame stays exact.

    (With the old reflect padding to even, the coefficient energy was 3-9 % off here.)
    The down-sampled grids of these sizes turn odd or even at every level (63 -> 32 -> 16,
    65 -> 33 -> 17 -> 9, 47 -> 24 -> 12), and every one must stay exact.
    """
    pyr = SteerablePyramid(bandwidth=bandwidth, downsample=downsample, tight=True)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, *shape, generator=gen, dtype=torch.float64)
    c = pyr.analyze(x)
    assert c.highpass.shape == x.shape
    assert rel_err(pyr.synthesize(c), x) <= 1e-12
    assert abs(energy(c).item() / x.pow(2).sum().item() - 1) <= 1e-12
    other = pyr.analyze(torch.randn(1, 2, *shape, generator=gen, dtype=torch.float64))
    other = other.map_bands(lambda i, b: b * torch.exp(1j * torch.randn(b.shape, generator=gen).to(b)))
    lhs = inner(c, other).item()
    assert abs(lhs - (x * pyr.synthesize(other)).sum().item()) <= 1e-12 * abs(lhs) * 10
    x32 = x.float()
    assert rel_err(pyr.synthesize(pyr.analyze(x32)), x32) <= 1e-5
    c32 = pyr.analyze(x32)
    assert abs(energy(c32).item() / x32.pow(2).sum().item() - 1) <= 1e-5


def test_default_scaling_is_not_tight():
    x = torch.rand(1, 1, 64, 64, dtype=torch.float64)
    assert energy(SteerablePyramid().analyze(x)) > 10 * x.pow(2).sum()


@pytest.mark.parametrize("bandwidth", ["octave", "half-octave", "quarter-octave"])
@pytest.mark.parametrize("downsample", [True, False])
def test_gradcheck_both_directions(bandwidth, downsample):
    pyr = SteerablePyramid(bandwidth=bandwidth, orientations=3, downsample=downsample)
    x = torch.rand(1, 2, 16, 18, dtype=torch.float64, requires_grad=True)

    def forward(x):
        c = pyr.analyze(x)
        return (c.highpass, c.lowpass, *[torch.view_as_real(b) for b in c.bands])

    # Full Jacobians cost one backward per output; the default pyramid gets the full check
    # (test_full_gradcheck_default_pyramid), every option a random projection of it.
    assert torch.autograd.gradcheck(forward, (x,), fast_mode=True)
    c = pyr.analyze(x.detach())
    leaves = [c.highpass.requires_grad_(), c.lowpass.requires_grad_()]
    leaves += [b.clone().requires_grad_() for b in c.bands]

    def backward(hp, lp, *bands):
        return pyr.synthesize(type(c)(hp, list(bands), lp, c.image_size))

    assert torch.autograd.gradcheck(backward, tuple(leaves), fast_mode=True)


def test_full_gradcheck_default_pyramid():
    pyr = SteerablePyramid(orientations=2, scales=1)
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64, requires_grad=True)

    def round_trip_parts(x):
        c = pyr.analyze(x)
        return (c.highpass, c.lowpass, torch.view_as_real(c.bands[0]), pyr.synthesize(c))

    assert torch.autograd.gradcheck(round_trip_parts, (x,))


@pytest.mark.parametrize("bandwidth,downsample,tight", OPTIONS[::3])
def test_synthesis_of_bands_alone_equals_zeroed_residuals(bandwidth, downsample, tight):
    pyr = SteerablePyramid(bandwidth=bandwidth, downsample=downsample, tight=tight)
    c = pyr.analyze(torch.rand(1, 3, 33, 40, dtype=torch.float64))
    bands = [torch.cat([b, 2 * b]) for b in c.bands]  # two frames, residuals of batch one
    zeroed = type(c)(
        c.highpass.new_zeros(2, 3, 33, 40), bands, c.lowpass.new_zeros(2, *c.lowpass.shape[1:]), c.image_size
    )
    alone = pyr.synthesize(type(c)(c.highpass, bands, c.lowpass, c.image_size), residuals=False)
    assert alone.shape == (2, 3, 33, 40)
    assert rel_err(alone, pyr.synthesize(zeroed)) < 1e-13


def test_chunked_transforms_match_whole_batches(monkeypatch):
    from morphlib.transforms import steerable

    pyr = SteerablePyramid(bandwidth="half-octave")
    x = torch.rand(3, 2, 33, 40, dtype=torch.float64)
    whole = pyr.analyze(x)  # 6 images of 33x40 pixels: one chunk
    monkeypatch.setattr(steerable, "CHUNK_VALUES", 2 * 33 * 40)  # two images per chunk
    monkeypatch.setattr(steerable, "WHOLE_VALUES", 0)  # however small the batch
    assert len(steerable._chunks(x.flatten(0, 1))) == 3
    chunked = pyr.analyze(x)
    assert rel_err(chunked.highpass, whole.highpass) < 1e-14
    assert rel_err(chunked.lowpass, whole.lowpass) < 1e-14
    assert all(rel_err(a, b) < 1e-14 for a, b in zip(chunked.bands, whole.bands, strict=True))
    assert rel_err(pyr.synthesize(chunked), x) < 1e-12
    monkeypatch.setattr(steerable, "WHOLE_VALUES", 6 * 33 * 40)  # the whole batch fits: one chunk
    assert len(steerable._chunks(x.flatten(0, 1))) == 1


def test_shapes_and_layout():
    pyr = SteerablePyramid(orientations=6)
    c = pyr.analyze(torch.rand(3, 2, 100, 60))
    assert c.highpass.shape == (3, 2, 100, 60) and not c.highpass.is_complex()
    assert [tuple(b.shape) for b in c.bands] == [(3, 2, 6, 100, 60), (3, 2, 6, 50, 30), (3, 2, 6, 25, 15)]
    assert all(b.dtype == torch.complex64 for b in c.bands)
    assert c.lowpass.shape == (3, 2, 13, 8) and not c.lowpass.is_complex()
    sub = SteerablePyramid(bandwidth="half-octave", scales=2, downsample=False).analyze(
        torch.rand(1, 1, 32, 32)
    )
    assert len(sub.bands) == 4 and all(b.shape == (1, 1, 8, 32, 32) for b in sub.bands)


def test_bands_are_analytic_and_oriented():
    """A horizontal grating lands in the band tuned to it, with a smoothly turning phase."""
    h = w = 64
    xs = torch.arange(w, dtype=torch.float64)
    grating = torch.cos(2 * torch.pi * 8 * xs / w).expand(h, w)[None, None]
    c = SteerablePyramid(orientations=4, scales=3).analyze(grating)
    power = c.bands[1].abs().pow(2).sum(dim=(0, 1, 3, 4))  # frequency 8/32 of Nyquist sits in level 1
    assert power.argmax() == 0 and power[0] > 100 * power[2]
    band = c.bands[1][0, 0, 0]
    assert torch.allclose(band.abs(), band.abs().mean().expand_as(band), rtol=1e-6)  # constant amplitude
    step = torch.angle(band[:, 1] / band[:, 0])  # level 1 is sampled at half the rate
    assert torch.allclose(step, torch.full_like(step, 2 * torch.pi * 8 / (w // 2)), atol=1e-9)


def test_filters_are_cached_per_shape_dtype_device():
    pyr = SteerablePyramid()
    pyr.analyze(torch.rand(1, 1, 32, 32))
    pyr.analyze(torch.rand(2, 3, 32, 32))
    assert len(pyr._cache) == 1
    pyr.analyze(torch.rand(1, 1, 32, 32, dtype=torch.float64))
    pyr.analyze(torch.rand(1, 1, 32, 48))
    assert len(pyr._cache) == 3


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.rand(32, 32), "4-d"),
        (torch.rand(1, 3, 32, 32).numpy(), "torch.Tensor"),
        ((torch.rand(1, 1, 32, 32) * 255).to(torch.uint8), "floating-point"),
        (torch.full((1, 1, 32, 32), float("nan")), "NaN"),
        (torch.rand(1, 1, 15, 40), "at least 16"),
    ],
)
def test_bad_input_is_rejected_clearly(bad, match):
    with pytest.raises(ValueError, match=match):
        SteerablePyramid().analyze(bad)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"bandwidth": "third-octave"}, "bandwidth"),
        ({"orientations": 1}, "orientations"),
        ({"scales": -1}, "scales"),
    ],
)
def test_bad_options_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SteerablePyramid(**kwargs)


def test_too_many_scales():
    with pytest.raises(ValueError, match="at most 3 scales"):
        SteerablePyramid(scales=4).analyze(torch.rand(1, 1, 32, 40))


def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.rand(2, 3, 64, 48)
    pyr = SteerablePyramid()
    cpu, gpu = pyr.analyze(x), pyr.analyze(x.cuda())
    for a, b in zip(cpu.bands, gpu.bands, strict=True):
        assert rel_err(b.cpu(), a) < 1e-5
    assert rel_err(pyr.synthesize(gpu).cpu(), x) < 1e-5
