"""Grey stays grey: no family adds colour to a grey image, and grey networks morph grey images."""

import pytest
import torch

from morphlib import MorphConfig, Strength, morph
from morphlib.data import load as load_data
from morphlib.edits import FAMILIES
from morphlib.zoo import load

REGIMES = ("frozen", "persistent")


@pytest.fixture(scope="module")
def digit():
    images, labels, _ = load_data("digits", "test", n=1, seed=0)
    return images[0], int(labels[0])  # RGB with three equal channels


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("family", FAMILIES)
def test_grey_rgb_image_stays_grey(digit, family, regime):
    image, label = digit
    result = morph(
        load("digits-cnn"),
        image,
        (label + 1) % 10,
        frames=4,
        config=MorphConfig(family=family, regime=regime),
        strength=Strength.budget(2.0),
    )
    frames = result.frames  # (F, 3, H, W)
    assert (frames[-1] - image).abs().max() > 1e-3  # it did change
    spread = (frames.max(1).values - frames.min(1).values).max().item()
    assert spread == 0.0, f"{family}/{regime}: channels differ by {spread}"


@pytest.mark.parametrize("family", FAMILIES)
def test_one_channel_model_and_image(family):
    images, labels, _ = load_data("mnist", "test", n=1, seed=0)
    result = morph(
        load("mnist-cnn-robust"),
        images[0],
        (int(labels[0]) + 1) % 10,
        frames=4,
        config=MorphConfig(family=family),
        strength=Strength.budget(1.0),
    )
    assert result.frames.shape[1:] == (1, 28, 28)
    assert result.target_probs[-1] > result.target_probs[0]


def _chroma(x):
    from morphlib.imaging import rgb_to_yiq

    return rgb_to_yiq(x)[:, 1:]


@pytest.mark.parametrize("family", ["csp-joint", "pixel"])
def test_a_colour_photo_sent_to_a_one_channel_model_gets_no_new_colour(family):
    """The model sees luma only, so only the luma is edited: the photo keeps its own colours (up to
    the clipping of saturated pixels), even when luma-only is switched off."""
    from morphlib.metrics import chroma_share

    images, _, _ = load_data("shapes", "test", n=1, seed=0)
    photo = torch.nn.functional.interpolate(images, size=(28, 28), mode="area")[0]
    config = MorphConfig(family=family, regime="step-local", luma_only=False)
    result = morph(
        load("mnist-cnn-robust"), photo, "3", config, Strength.budget(4.0), frames=3, progress=False
    )
    last = result.frames[-1:]
    assert float((last - photo).norm()) == pytest.approx(4.0, rel=0.02)
    assert float(chroma_share(photo[None], last)[0]) < 0.05
    assert result.params["luma_only"] is True


def test_the_default_keeps_the_chroma_of_colour_images():
    """On colour data the recommended settings edit luma only: the gratings' change is <= 10 % colour,
    where the same morph with luma-only off paints most of it in chroma."""
    from morphlib import RECOMMENDED
    from morphlib.metrics import chroma_share

    images, labels, _ = load_data("orientation", "test", n=2, seed=0)
    model, target = load("orientation-cnn-robust"), (int(labels[0]) + 1) % 4
    shares = {}
    for luma in (True, False):
        config = RECOMMENDED.replace(luma_only=luma)
        result = morph(model, images[0], target, config, Strength.budget(4.0), frames=3, progress=False)
        shares[luma] = float(chroma_share(images[:1], result.frames[-1:])[0])
    assert RECOMMENDED.luma_only and shares[True] <= 0.1 < shares[False]
