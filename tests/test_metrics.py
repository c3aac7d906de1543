"""Validation of the warp-explained energy E and the success measures (docs/method.md §8)."""

import math

import pytest
import torch
import torch.nn.functional as F

from morphlib import lbfgs
from morphlib.metrics import (
    angular_gap,
    apply_warp,
    driver_success,
    fit_warp,
    local_coherence,
    structure_orientation,
    transfer,
    turn_toward,
    warp_explained_energy,
)


@pytest.fixture(scope="module")
def image():
    """Smooth random colour images with structure at several scales."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 8, generator=gen, dtype=torch.float64)
    x = F.interpolate(x, size=(32, 32), mode="bicubic", align_corners=False)
    x = x + 0.3 * F.avg_pool2d(torch.rand(2, 3, 34, 34, generator=gen, dtype=torch.float64), 3, 1)
    return (x - x.amin()) / (x.amax() - x.amin())


def rotation_flow(b, h, w, degrees):
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64) - (h - 1) / 2,
        torch.arange(w, dtype=torch.float64) - (w - 1) / 2,
        indexing="ij",
    )
    a = math.radians(degrees)
    flow = torch.stack([xs * math.cos(a) - ys * math.sin(a) - xs, xs * math.sin(a) + ys * math.cos(a) - ys])
    return flow[None].expand(b, 2, h, w)


def known_warps(x):
    b, _, h, w = x.shape
    shift = torch.zeros(b, 2, h, w, dtype=torch.float64)
    shift[:, 0], shift[:, 1] = 1.5, -0.7
    gen = torch.Generator().manual_seed(1)
    control = torch.randn(b, 2, 4, 4, generator=gen, dtype=torch.float64)
    smooth = F.interpolate(control, size=(h, w), mode="bicubic", align_corners=True)
    return {"translation": shift, "rotation": rotation_flow(b, h, w, 6.0), "deformation": smooth}


@pytest.mark.parametrize("kind", ["translation", "rotation", "deformation"])
def test_small_known_warps_are_explained(image, kind):
    edited = apply_warp(image, known_warps(image)[kind])
    assert (warp_explained_energy(image, edited) >= 0.9).all()


def test_white_noise_is_not_explained(image):
    noise = 0.05 * torch.randn(image.shape, generator=torch.Generator().manual_seed(2), dtype=image.dtype)
    assert (warp_explained_energy(image, image + noise) <= 0.1).all()
    assert (warp_explained_energy(image, image + noise, gain=True) <= 0.1).all()


def test_brightness_needs_the_gain_field(image):
    brighter = image * 1.2
    warp = fit_warp(image, brighter)
    warp_only = warp.energy
    with_gain = fit_warp(image, brighter, gain=True, start=warp)
    assert (warp_only <= 0.4).all()
    assert (with_gain.energy >= 0.9).all()
    # Where the warp-only fit explains more (noise here), it stands in for warp + gain.
    noisy = image + 0.05 * torch.randn(
        image.shape, generator=torch.Generator().manual_seed(3), dtype=image.dtype
    )
    warp = fit_warp(image, noisy)
    assert (fit_warp(image, noisy, gain=True, start=warp).energy >= warp.energy).all()
    assert torch.allclose(
        with_gain.log_gain.mean(dim=(1, 2, 3)),
        torch.full((2,), math.log(1.2), dtype=torch.float64),
        atol=0.02,
    )


def test_a_batch_fits_each_image_as_alone(image):
    """Each image is its own problem: batched with others, its fit is the one it gets alone."""
    flows = known_warps(image)
    edited = torch.cat([apply_warp(image, flows["rotation"]), image + 0.03 * torch.sin(7 * image)])
    sources = torch.cat([image, image])
    for gain in (False, True):
        together = fit_warp(sources, edited, gain=gain)
        for i in range(len(sources)):
            alone = fit_warp(sources[i : i + 1], edited[i : i + 1], gain=gain)
            assert torch.allclose(together.energy[i], alone.energy[0], rtol=0, atol=1e-12)
            assert torch.allclose(together.flow[i], alone.flow[0], rtol=0, atol=1e-9)


def test_batched_lbfgs_solves_each_problem_on_its_own():
    """Rosenbrock valleys of different shapes, one per row: every row reaches its own minimum."""
    a = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)

    def rosenbrock(x):
        return (a - x[:, 0]) ** 2 + 10 * (x[:, 1] - x[:, 0] ** 2) ** 2

    x = lbfgs.minimize(rosenbrock, torch.zeros(3, 2, dtype=torch.float64), iterations=200)
    assert torch.allclose(x, torch.stack([a, a**2], 1), atol=1e-4)
    alone = lbfgs.minimize(rosenbrock, torch.zeros(3, 2, dtype=torch.float64), iterations=5)
    first = lbfgs.minimize(
        lambda x: (a[:1] - x[:, 0]) ** 2 + 10 * (x[:, 1] - x[:, 0] ** 2) ** 2,
        torch.zeros(1, 2, dtype=torch.float64),
        iterations=5,
    )
    assert torch.equal(alone[:1], first)  # five steps in a batch are the five steps alone


def test_identical_images_and_bad_shapes(image):
    assert torch.equal(warp_explained_energy(image, image), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="one shape"):
        warp_explained_energy(image, image[:, :, :16])


def test_driver_success_and_transfer():
    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = torch.tensor(logits)

        def forward(self, x):
            return self.logits.expand(x.shape[0], -1)

    x = torch.zeros(3, 3, 8, 8)
    p = driver_success(Fixed([0.0, math.log(3.0)]), x, 1)
    assert torch.allclose(p, torch.full((3,), 0.75))
    verdict = transfer([Fixed([0.0, 1.0]), Fixed([1.0, 0.0])], x, 1)
    assert verdict.shape == (2, 3) and verdict[0].all() and not verdict[1].any()


def grating(degrees: float, size: int = 64, period: float = 8.0) -> torch.Tensor:
    """Stripes along ``degrees``, drawn as the ``orientation`` data draws them (3 channels)."""
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    angle = math.radians(degrees)
    across = -xx * math.sin(angle) + yy * math.cos(angle)
    return (0.5 + 0.3 * torch.cos(2 * math.pi * across / period)).expand(3, -1, -1)


@pytest.mark.parametrize("degrees", [0.0, 30.0, 45.0, 90.0, 135.0, 170.0])
def test_structure_orientation_reads_the_stripe_direction(degrees):
    found, coherence = structure_orientation(grating(degrees))
    # central differences bias oblique stripes of period 8 by up to ~1.5 degrees
    assert angular_gap(found, degrees) < 2.0 and coherence > 0.95


def test_local_coherence_is_high_for_stripes_and_lower_for_a_plaid():
    stripes = grating(0.0)
    plaid = 0.5 * (grating(0.0) + grating(90.0))
    assert local_coherence(stripes) > 0.95
    assert local_coherence(plaid) < 0.5


def test_turn_toward_is_signed_and_bounded():
    assert angular_gap(10.0, 170.0) == pytest.approx(20.0)
    assert turn_toward(grating(0.0), grating(20.0), 45.0) == pytest.approx(20.0, abs=2.0)
    assert turn_toward(grating(0.0), grating(160.0), 45.0) == pytest.approx(-20.0, abs=2.0)
    assert turn_toward(grating(0.0), grating(0.0), 45.0) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("kind", ["FourierOrientation", "StructureTensorOrientation"])
def test_the_model_free_orientation_judges_read_clean_gratings(kind):
    from morphlib import metrics
    from morphlib.data import LABEL_NAMES, ORIENTATIONS
    from morphlib.data import load as load_data

    images, labels, _ = load_data("orientation", "test", n=400, seed=0)
    judge = getattr(metrics, kind)(ORIENTATIONS, LABEL_NAMES["orientation"])
    read = judge(images).argmax(1)
    assert (read == labels).float().mean() >= 0.95
    # it reads the stripes, not the colour: the same grating in grey reads the same
    assert torch.equal(judge(images.mean(1, keepdim=True).expand_as(images)).argmax(1), read)


def test_the_outline_judge_reads_clean_shapes_by_their_outline():
    from morphlib.data import load as load_data
    from morphlib.metrics import ShapeOutline, figure_mask, outline_features

    train, train_labels, names = load_data("shapes", "train", n=1000, seed=0)
    judge = ShapeOutline.fit(train, train_labels, names)
    images, labels, _ = load_data("shapes", "test", n=400, seed=0)
    assert (judge(images).argmax(1) == labels).float().mean() >= 0.97
    # a disc on a flat background: the figure is the disc, with almost no 3-, 4- or 5-fold
    # harmonic (a square has 0.5 of the 4-fold)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    disc = ((yy - 30) ** 2 + (xx - 34) ** 2 < 15**2).float()
    image = (0.3 + 0.5 * disc)[None].expand(3, 64, 64)[None]
    assert torch.equal(figure_mask(image)[0], disc.bool())
    harmonics, compactness = outline_features(image)[0, :3], outline_features(image)[0, 3]
    assert harmonics.max() < 0.05 and compactness == pytest.approx(1.0, abs=0.03)


def test_chroma_share_is_the_colour_part_of_a_change():
    from morphlib.imaging import rgb_to_yiq, yiq_to_rgb
    from morphlib.metrics import chroma_share

    x = torch.rand(2, 3, 16, 16) * 0.5 + 0.25
    yiq = rgb_to_yiq(x)
    luma, chroma = yiq.clone(), yiq.clone()
    luma[:, 0] += 0.1
    chroma[:, 1] += 0.05
    assert chroma_share(x, yiq_to_rgb(luma)).tolist() == pytest.approx([0.0, 0.0], abs=1e-9)
    assert chroma_share(x, yiq_to_rgb(chroma)).tolist() == pytest.approx([1.0, 1.0], abs=1e-9)
    assert chroma_share(x[:, :1], x[:, :1] + 0.1).tolist() == [0.0, 0.0]  # grey has no chroma
