"""The morph engine's contracts: gradients, edit families, controls, budgets, errors, renders."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from morphlib import Gradient, MorphConfig, MorphResult, Strength, gradient, morph
from morphlib.edits import FAMILIES, EditSpace, gaussian_blur
from morphlib.imaging import rgb_to_yiq
from morphlib.objectives import class_loss
from morphlib.transforms import Fourier, SteerablePyramid


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The CPU is shared: one thread avoids oversubscription on these small tensors."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class SmallNet(nn.Module):
    """A fixed random smooth classifier of [0, 1] RGB images (5 classes, labelled)."""

    def __init__(self, dtype=torch.float32):
        super().__init__()
        torch.manual_seed(1)
        self.labels = ["cat", "dog", "cow", "owl", "ant"]
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=2, padding=2),
            nn.Softplus(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.Tanh(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(128, 5),
        ).to(dtype)

    def forward(self, x):
        return 5.0 * self.net(x - 0.5)


@pytest.fixture(scope="module")
def net():
    return SmallNet()


@pytest.fixture(scope="module")
def net64():
    return SmallNet(torch.float64)


@pytest.fixture(scope="module")
def image():
    gen = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    grating = 0.5 + 0.3 * torch.sin(0.6 * x + 0.3 * y)
    return (grating + 0.1 * torch.rand(3, 32, 32, generator=gen)).clamp(0, 1)


# ---------------------------------------------------------------------- gradients
@pytest.mark.parametrize("family", ["csp-phase", "csp-joint", "csp-amplitude"])
def test_autograd_parameter_gradient_equals_analytic(net64, image, family):
    """g_δ = Im(conj(c0)·G), g_η = Re(conj(c0)·G), G the gradient wrt the complex coefficients."""
    x0 = image.double()[None]
    target = 3
    g = gradient(net64, x0, target, config=MorphConfig(family=family))
    raw = [d * g.scale for d in g.direction]
    groups = g.space.split(tuple(raw))

    pyr = g.space.pyramid
    c = pyr.analyze(x0)
    bands = [b.clone().requires_grad_(True) for b in c.bands]
    x = pyr.synthesize(type(c)(c.highpass, bands, c.lowpass, c.image_size))
    class_loss(net64(x), target).sum().backward()
    for level, (c0, band) in enumerate(zip(c.bands, bands, strict=True)):
        G = band.grad
        if "delta" in groups:
            expected = (c0.conj() * G).imag
            torch.testing.assert_close(groups["delta"][level], expected, rtol=1e-6, atol=1e-9 * G.abs().max())
        if "eta" in groups:
            expected = (c0.conj() * G).real
            torch.testing.assert_close(groups["eta"][level], expected, rtol=1e-6, atol=1e-9 * G.abs().max())


def test_gradient_is_normalised_to_unit_max(net, image):
    for family in FAMILIES:
        g = gradient(net, image, "owl", config=MorphConfig(family=family))
        largest = max(float(d.abs().max()) for d in g.direction)
        assert largest == pytest.approx(1.0, abs=1e-6)
        assert g.scale > 0


def test_additive_steps_in_tight_csp_reproduce_the_pixel_family(net64, image):
    """METHOD §3: an additive complex step in a tight CSP is the same step in pixel space."""
    x0 = image.double()[None]
    target, alpha = 2, 0.05
    pyr = SteerablePyramid(tight=True)
    c = pyr.analyze(x0)
    leaves = [c.highpass.clone().requires_grad_(True)]
    leaves += [b.clone().requires_grad_(True) for b in c.bands]
    leaves.append(c.lowpass.clone().requires_grad_(True))
    x = pyr.synthesize(type(c)(leaves[0], leaves[1:-1], leaves[-1], c.image_size))
    grads = torch.autograd.grad(class_loss(net64(x), target).sum(), leaves)

    pixel = gradient(net64, x0, target, config=MorphConfig(family="pixel"))
    step = alpha / pixel.scale  # the raw step the pixel family takes at this alpha
    stepped = [leaf.detach() - step * g for leaf, g in zip(leaves, grads, strict=True)]
    x_csp = pyr.synthesize(type(c)(stepped[0], stepped[1:-1], stepped[-1], c.image_size))
    x_pixel = pixel.render([alpha], clip=False)
    change = (x_pixel - x0).norm()
    assert change > 0.01
    assert (x_csp - x_pixel).norm() / change < 1e-9


# ---------------------------------------------------------------------- families
def test_phase_edits_keep_amplitudes_and_amplitude_edits_keep_phases(net, image):
    alphas = torch.tensor([0.5, 2.0, 7.0])
    phase = gradient(net, image, "cow", config=MorphConfig(family="csp-phase"))
    for c0, c in zip(phase.space.bands, phase.space.coefficients(phase.params(alphas)), strict=True):
        torch.testing.assert_close(c.abs(), c0.abs().expand_as(c), rtol=1e-5, atol=1e-6)
        assert (c.angle() - c0.angle()).abs().max() > 1e-3  # the phases did move

    amplitude = gradient(net, image, "cow", config=MorphConfig(family="csp-amplitude"))
    for c0, c in zip(
        amplitude.space.bands, amplitude.space.coefficients(amplitude.params(alphas)), strict=True
    ):
        big = c0.abs().expand_as(c) > 1e-4  # the phase of a zero coefficient is undefined
        torch.testing.assert_close(c.angle()[big], c0.angle().expand_as(c)[big], rtol=0, atol=1e-4)
        assert (c.abs() / c0.abs().clamp_min(1e-12)).log().abs()[big].max() > 1e-3


@pytest.mark.parametrize("regime", ["frozen", "persistent", "step-local"])
@pytest.mark.parametrize("family", FAMILIES)
def test_alpha_zero_returns_the_input_bit_for_bit(net, image, family, regime):
    r = morph(
        net,
        image,
        "dog",
        frames=3,
        progress=False,
        config=MorphConfig(family=family, regime=regime),
        strength=Strength.amplification(0.0),
    )
    assert r.frames.shape == (3, 3, 32, 32)
    assert torch.equal(r.frames, image.expand(3, -1, -1, -1))
    assert r.l2.abs().max() == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_first_frame_is_the_input_and_probabilities_are_consistent(net, image, family):
    r = morph(net, image, "dog", frames=4, config=MorphConfig(family=family), strength=Strength.budget(1.0))
    assert torch.equal(r.frames[0], image)
    assert r.frames.min() >= 0 and r.frames.max() <= 1
    with torch.no_grad():
        expected = torch.softmax(net(r.frames), dim=-1)
    torch.testing.assert_close(r.probs, expected, rtol=1e-4, atol=1e-6)
    assert r.labels[r.target] == "dog"
    assert len(r.topk) == 4 and len(r.topk[0]) == 5
    assert r.topk[0][0][0] == r.top1[0]


def test_fourier_phase_keeps_dc_and_nyquist(net, image):
    g = gradient(net, image, "ant", config=MorphConfig(family="fourier-phase"))
    (spectrum,) = g.space.coefficients(g.params(torch.tensor([3.0])))
    (s0,) = g.space.bands
    fixed = Fourier().analyze(image[None]).fixed_phase_mask()
    torch.testing.assert_close(spectrum[..., fixed], s0.expand_as(spectrum)[..., fixed])
    torch.testing.assert_close(spectrum.abs(), s0.abs().expand_as(spectrum), rtol=1e-5, atol=1e-6)


def test_fourier_phase_edits_stripes_that_vary_only_vertically(net):
    """All their energy sits in column 0 of the half spectrum, whose phases move in conjugate pairs."""
    rows = 0.5 + 0.3 * torch.cos(2 * math.pi * torch.arange(32) / 8.0)
    stripes = rows.view(1, 32, 1).expand(3, 32, 32).contiguous()
    r = morph(
        net,
        stripes,
        "ant",
        frames=3,
        config=MorphConfig(family="fourier-phase"),
        strength=Strength.budget(1.0),
    )
    assert r.l2[-1] == pytest.approx(1.0, rel=0.01)
    assert (r.frames[-1] - r.frames[-1][:, :, :1]).abs().max() < 1e-5  # still constant along rows


def test_luma_only_keeps_the_chroma(net, image):
    g = gradient(net, image, "owl", config=MorphConfig(family="csp-phase", luma_only=True))
    frames = g.render([1.0, 4.0], clip=False)
    yiq, yiq0 = rgb_to_yiq(frames), rgb_to_yiq(image[None])
    torch.testing.assert_close(yiq[:, 1:], yiq0[:, 1:].expand(2, -1, -1, -1), rtol=0, atol=1e-5)
    assert (yiq[:, 0] - yiq0[:, 0]).abs().max() > 1e-3


def test_phase_cap_bounds_every_phase_increment(net, image):
    g = gradient(net, image, "owl", config=MorphConfig(family="csp-joint", phase_cap=0.3))
    groups = g.space.split(g.params(torch.tensor([1.0, 10.0])))
    assert max(float(d.abs().max()) for d in groups["delta"]) == pytest.approx(0.3)
    raw = g.space.split(g.direction)
    for eta, direction in zip(groups["eta"], raw["eta"], strict=True):  # η is not capped
        torch.testing.assert_close(eta[1], -10.0 * direction[0])


@pytest.mark.parametrize("shape", [(2, 3, 17, 24), (1, 5, 5), (3, 2, 1, 9)])
@pytest.mark.parametrize("sigma", [1.0, 2.5])
def test_gaussian_blur_is_a_reflect_padded_convolution(shape, sigma):
    """Against a direct sum over mirrored taps; a constant stays constant even where the
    kernel is longer than the signal (the taps mirror back more than once)."""
    torch.manual_seed(0)
    x = torch.rand(*shape, dtype=torch.float64)
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float64) / sigma) ** 2)
    taps = taps / taps.sum()

    def mirror(i: int, n: int) -> int:
        while not 0 <= i < n:
            i = -i if i < 0 else 2 * (n - 1) - i
        return i

    def blur_1d(v: torch.Tensor, dim: int) -> torch.Tensor:
        n = v.shape[dim]
        out = torch.zeros_like(v)
        for i in range(n):
            for t, w in zip(range(-radius, radius + 1), taps, strict=True):
                j = mirror(i + t, n) if n > 1 else 0
                out.select(dim, i).add_(w * v.select(dim, j))
        return out

    torch.testing.assert_close(gaussian_blur(x, sigma), blur_1d(blur_1d(x, -2), -1), rtol=0, atol=1e-12)
    ones = torch.ones(*shape, dtype=torch.float64)
    torch.testing.assert_close(gaussian_blur(ones, sigma), ones, rtol=0, atol=1e-12)


def test_amplitude_weighted_smoothing(net, image):
    space = EditSpace("csp-phase", image[None])
    constant = tuple(torch.full_like(b.real, 0.7) for b in space.bands)
    for d in space.smooth_phase(constant, sigma=2.0):
        torch.testing.assert_close(d, torch.full_like(d, 0.7))  # a weighted average of a constant
    rough = gradient(net, image, "owl").direction[0]
    smooth = gradient(net, image, "owl", config=MorphConfig(smooth_sigma=2.0)).direction[0]

    def roughness(d):
        return float((d - gaussian_blur(d, 1.0)).norm() / d.norm())

    assert roughness(smooth) < 0.5 * roughness(rough)


# ---------------------------------------------------------------------- budgets and regimes
@pytest.mark.parametrize("regime", ["frozen", "persistent", "step-local"])
@pytest.mark.parametrize("family", ["pixel", "csp-phase", "csp-joint"])
def test_budget_is_met_within_one_percent(net, image, family, regime):
    budget = 1.5
    r = morph(
        net,
        image,
        "owl",
        frames=4,
        progress=False,
        config=MorphConfig(family=family, regime=regime),
        strength=Strength.budget(budget),
    )
    assert abs(float(r.l2[-1]) - budget) <= 0.01 * budget
    assert (r.l2.diff() > 0).all()  # frames move away from the input
    assert r.params["budget"] == budget and r.params["regime"] == regime


def test_default_strength_is_an_rms_budget(net, image):
    r = morph(net, image, "owl", frames=3)
    assert float(r.l2[-1]) == pytest.approx(0.05 * (3 * 32 * 32) ** 0.5, rel=0.01)


def test_gradient_object_rerenders_without_the_model(net, image):
    g = gradient(net, image, "owl", config=MorphConfig(family="csp-phase"))
    calls = []
    handle = net.register_forward_hook(lambda *a: calls.append(1))
    try:
        frames = g.frames(3.0, 5)
        alpha = g.alpha_for_budget(2.0)
    finally:
        handle.remove()
    assert calls == []
    assert frames.shape == (5, 3, 32, 32)
    assert float((g.render([alpha]) - image).norm()) == pytest.approx(2.0, rel=0.01)
    r = morph(
        net,
        image,
        "owl",
        frames=5,
        grad=g,
        config=MorphConfig(family="csp-phase"),
        strength=Strength.amplification(3.0),
    )
    assert torch.equal(r.frames, frames)
    torch.testing.assert_close(r.alphas, torch.linspace(0, 3.0, 5, dtype=torch.float64))


def test_iterative_regimes_report_progress(net, image):
    seen = []
    morph(
        net,
        image,
        "owl",
        frames=4,
        progress=lambda d, t: seen.append((d, t)),
        config=MorphConfig(regime="persistent"),
        strength=Strength.budget(1.0),
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("loss", ["nll", "margin", "contrast"])
def test_every_loss_raises_the_target(net, image, loss):
    r = morph(net, image, "owl", frames=3, config=MorphConfig(loss=loss), strength=Strength.budget(1.0))
    assert r.target_probs[-1] > r.target_probs[0]
    assert r.params["loss"] == loss


def test_losses():
    z = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 2.0]])
    torch.testing.assert_close(class_loss(z, 0, "nll"), -torch.log_softmax(z, -1)[:, 0])
    torch.testing.assert_close(class_loss(z, 0, "margin"), torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(class_loss(z, 2, "contrast", source=1), torch.tensor([3.0, -2.0]))


def test_source_defaults_to_the_top1_and_can_be_named(net, image):
    g = gradient(net, image, "owl")
    with torch.no_grad():
        order = net(image[None])[0].argsort(descending=True).tolist()
    assert g.source == (order[0] if order[0] != 3 else order[1])
    assert gradient(net, image, "owl", source="ANT", config=MorphConfig(loss="contrast")).source == 4


# ---------------------------------------------------------------------- inputs and errors
def test_image_formats(net, image):
    arr = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    from PIL import Image

    for given in (image, image[None], arr, Image.fromarray(arr)):
        r = morph(net, given, 3, frames=2, strength=Strength.budget(0.5))
        torch.testing.assert_close(r.frames[0], image, atol=0.5 / 255, rtol=0)


def test_pil_images_decode_as_files_do(net, image):
    """A 16-bit PIL image is read on its full 16-bit scale, as an uploaded or CLI file is (one decoder)."""
    from PIL import Image

    grey = (image.mean(0).numpy() * 65535).round().astype(np.uint16)
    r = morph(net, Image.fromarray(grey), 3, frames=2, strength=Strength.budget(0.5))
    expected = torch.from_numpy(grey.astype(np.float32) / 65535).expand(3, -1, -1)
    torch.testing.assert_close(r.frames[0], expected, atol=1e-6, rtol=0)


class Unlabelled(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3)) * torch.tensor([1.0, -1.0, 2.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(target="owel"), "close names: owl"),
        (dict(target=7), "out of range; the model has 5 classes"),
        (dict(frames=1), "frames must be an integer >= 2"),
        (dict(image=torch.rand(2, 3, 32, 32)), "morph one image at a time"),
        (dict(image=torch.rand(32, 32)), "morph one image at a time"),
        (dict(image=torch.rand(3, 8, 8)), "at least 16 a side"),
        (dict(image=torch.rand(3, 32, 32) * 255), "divide 8-bit images by 255"),
        (dict(strength=Strength.budget(1e4)), "cannot be reached"),
    ],
)
def test_bad_arguments_give_clear_errors(net, image, kwargs, message):
    args = dict(image=image, target="owl", frames=2) | kwargs
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        morph(net, **args)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: MorphConfig(family="csp-phaze"),
            ValueError,
            "unknown edit family 'csp-phaze'; choose one of",
        ),
        (lambda: MorphConfig(regime="warp"), ValueError, "unknown regime"),
        (lambda: MorphConfig(loss="hinge"), ValueError, "unknown loss"),
        (lambda: MorphConfig(phase_cap=-1.0), ValueError, "phase_cap must be a finite number > 0"),
        (lambda: MorphConfig(smooth_sigma=float("nan")), ValueError, "smooth_sigma must be a finite number"),
        (lambda: MorphConfig(pyramid=dict(levels=3)), ValueError, "unknown pyramid settings"),
        (lambda: MorphConfig(family=3), TypeError, "family must be a string"),
        (lambda: MorphConfig(luma_only="yes"), TypeError, "luma_only must be True or False"),
        (lambda: MorphConfig(phase_cap="1"), TypeError, "phase_cap must be a number"),
        (lambda: Strength.budget(0.0), ValueError, "budget must be a finite number > 0"),
        (lambda: Strength.budget(-1.0), ValueError, "budget must be a finite number > 0"),
        (lambda: Strength.budget(float("inf")), ValueError, "budget must be a finite number > 0"),
        (lambda: Strength.amplification(1e308 * 10), ValueError, "amplification must be a finite number"),
        (lambda: Strength.auto(goal=1.0), ValueError, r"must lie in \(0, 1\), got 1"),
        (lambda: Strength.auto(cap_rms=0), ValueError, "cap_rms must be a finite number > 0"),
        (lambda: Strength("fast"), ValueError, "unknown strength kind"),
    ],
)
def test_bad_settings_give_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_wrong_types_are_type_errors(net, image):
    with pytest.raises(TypeError, match="config must be a MorphConfig"):
        morph(net, image, "owl", {"family": "pixel"})
    with pytest.raises(TypeError, match="strength must be a Strength"):
        morph(net, image, "owl", strength=2.0)
    with pytest.raises(TypeError, match="a class must be an index or a label name"):
        morph(net, image, 2.5)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        morph("resnet", image, "owl")
    with pytest.raises(TypeError, match="frames must be an integer"):
        morph(net, image, "owl", frames=2.0)


def test_unlabelled_model_uses_indices():
    r = morph(
        Unlabelled(),
        torch.rand(3, 16, 16),
        "2",
        frames=2,
        config=MorphConfig(family="pixel"),
        strength=Strength.budget(0.5),
    )
    assert r.labels == ["0", "1", "2"] and r.target == 2
    with pytest.raises(ValueError, match="an index 0..2"):
        morph(Unlabelled(), torch.rand(3, 16, 16), "cat")


# ---------------------------------------------------------------------- renders
def test_save_writes_every_rendering(net, image, tmp_path):
    r = morph(net, image, "owl", frames=4, strength=Strength.budget(1.0))
    assert isinstance(r, MorphResult)
    paths = r.save(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "frames").iterdir()) == [
        f"frame_{k:03d}.png" for k in range(4)
    ]
    from PIL import Image

    gif = Image.open(paths["gif"])
    assert gif.n_frames == 6  # ping-pong loop: 4 forward, 2 back
    assert min(gif.size) >= 256  # 32 px upscaled with nearest neighbour
    mp4 = paths["mp4"].read_bytes()
    assert mp4[4:8] == b"ftyp" and b"avc1" in mp4
    assert Image.open(paths["sheet"]).size[0] > 4 * 96
    assert Image.open(paths["plot"]).size[0] > 300
    summary = json.loads(paths["summary"].read_text())
    assert summary["target"] == {"index": 3, "label": "owl"}
    assert len(summary["frames"]) == 4
    assert summary["frames"][-1]["l2"] == pytest.approx(1.0, rel=0.01)
    assert summary["params"]["family"] == "csp-phase"


def test_gradient_object_is_exported():
    assert Gradient.__module__ == "morphlib.engine.gradient"
