"""Grey stays grey: no family adds colour to a grey image, and grey networks morph grey images."""

import pytest

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
