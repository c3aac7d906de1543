"""The judges of a morph: independent of the driver by construction, bundled, and honest."""

import numpy as np
import pytest
import torch

from morphlib import MorphConfig, Strength, morph
from morphlib.app.registry import ModelRegistry
from morphlib.study import DEFAULT_MODELS
from morphlib.zoo import independent_judges, is_independent, is_sibling, load, read_manifest, relation
from morphlib.zoo.manifest import ManifestError, parse_manifest

NEW_JUDGES = ("mnist-judge-knn", "mnist-judge-mlp", "mnist-judge-noise")
MNIST_DRIVERS = ("mnist-cnn-robust", "mnist-cnn-robust-eps3")
# Floors a little under the measured clean accuracy on the 1,000 held-out digits (zoo.yaml).
MIN_ACCURACY = {"mnist-judge-knn": 0.92, "mnist-judge-mlp": 0.96, "mnist-judge-noise": 0.96}


@pytest.fixture(scope="module")
def mnist_test():
    from morphlib import data

    images, labels, _ = data.load("mnist", "test", seed=0)
    return images, labels


# -------------------------------------------------------------------- the independence rule


@pytest.mark.parametrize("driver", MNIST_DRIVERS)
def test_the_standard_twin_is_a_sibling_never_counted(driver):
    assert is_sibling(driver, "mnist-cnn") and relation(driver, "mnist-cnn") == "sibling"
    assert is_sibling("mnist-cnn-robust", "mnist-cnn-robust-eps3")
    assert not is_independent(driver, "mnist-cnn")
    judges = (*DEFAULT_MODELS["mnist"]["judges"], *DEFAULT_MODELS["mnist"]["shown"])
    counted = independent_judges(driver, judges)
    assert "mnist-cnn" in judges and "mnist-cnn" not in counted
    assert all(not is_sibling(driver, j) for j in counted)


@pytest.mark.parametrize("driver", MNIST_DRIVERS)
def test_the_three_new_judges_are_independent(driver):
    for judge in NEW_JUDGES:
        assert is_independent(driver, judge), judge
    # Another architecture seeing the digits as the driver does is shown, not counted.
    assert relation(driver, "mnist-judge") == relation(driver, "mnist-judge-vit") == "same view"
    study = DEFAULT_MODELS["mnist"]
    assert (
        independent_judges(driver, (*study["judges"], *study["shown"]))
        == list(NEW_JUDGES)
        == list(study["judges"])
    )


def test_the_rule_on_entries_of_a_manifest_of_ones_own():
    def entry(model_id, architecture, view=None):
        raw = {
            "id": model_id,
            "name": model_id,
            "source": "hf-hub",
            "format": "timm",
            "architecture": architecture,
            "weights": f"someone/{model_id}",
            "dataset": "mnist",
            "input_size": [28, 28],
            "normalisation": {"mean": [0.5], "std": [0.25]},
            "robust": False,
            "licence": "MIT",
            "description": "a test model",
        }
        return raw | ({"view": view} if view else {})

    entries = parse_manifest(
        {
            "models": [
                entry("driver", "resnet18"),
                entry("twin", "resnet18", view="pixels under noise"),  # other view, same architecture
                entry("other", "vit_tiny_patch16_224"),  # other architecture, same (standard) view
                entry("far", "vit_tiny_patch16_224", view="pixels under noise"),
            ]
        }
    )
    relations = [relation("driver", j, entries) for j in entries]
    assert relations == ["self", "sibling", "same view", "independent"]
    assert independent_judges(entries["driver"], entries.values()) == ["far"]
    with pytest.raises(ValueError, match="different label sets"):
        relation("mnist-cnn-robust", "shapes-judge")


def test_manifest_checks_the_new_fields():
    with pytest.raises(ManifestError, match="field 'differentiable': must be true or false"):
        parse_manifest({"models": [{**_bundled("mnist-judge-knn"), "differentiable": "no"}]})
    entries = read_manifest()
    assert not entries["mnist-judge-knn"].differentiable
    assert all(entries[j].differentiable for j in ("mnist-judge-mlp", "mnist-judge-noise", "mnist-cnn"))
    assert entries["mnist-cnn"].view == "standard" != entries["mnist-judge-noise"].view


def _bundled(model_id):
    import yaml

    from morphlib.zoo.manifest import DEFAULT_MANIFEST

    return next(m for m in yaml.safe_load(DEFAULT_MANIFEST.read_text())["models"] if m["id"] == model_id)


# ------------------------------------------------------------------------------ the judges


@pytest.mark.parametrize("judge", NEW_JUDGES)
def test_judges_clean_accuracy_on_the_held_out_digits(judge, mnist_test):
    images, labels = mnist_test
    model = load(judge)
    with torch.no_grad():
        acc = (model(images).argmax(1) == labels).float().mean().item()
    assert acc >= MIN_ACCURACY[judge], f"{judge}: {acc:.3f}"
    assert acc == pytest.approx(model.entry.metrics["clean_accuracy"], abs=0.01)


def test_knn_matches_brute_force_numpy(mnist_test):
    from morphlib import data

    model = load("mnist-judge-knn")
    train, train_labels, _ = data.load("mnist", "train", seed=0)  # what it stores: the train split only
    stored = model.net.train_images.numpy().astype(np.float64)
    assert np.array_equal(stored, np.round(train.flatten(1).numpy() * 255))
    assert np.array_equal(model.net.train_labels.numpy(), train_labels.numpy())
    images = mnist_test[0][:8]
    with torch.no_grad():
        shares = model(images).softmax(1).numpy()
    for image, share in zip(images.flatten(1).numpy() * 255, shares, strict=True):
        nearest = np.argsort(((stored - image) ** 2).sum(1), kind="stable")[:5]
        votes = np.bincount(train_labels.numpy()[nearest], minlength=10)
        assert np.allclose(share, (votes + 0.5) / (5 + 0.5 * 10), atol=1e-6)


def test_knn_cannot_drive_a_morph():
    model = load("mnist-judge-knn")
    assert not model.differentiable
    image = torch.rand(1, 28, 28)
    with pytest.raises(ValueError, match="mnist-judge-knn.*no useful input gradient.*judge"):
        morph(model, image, 3, MorphConfig(family="pixel"), Strength.budget(1.0), frames=2)
    assert load("mnist-judge-mlp").differentiable  # the MLP has a gradient: a judge by choice only
    # The app offers it nowhere as a driver.
    registry = ModelRegistry()
    assert "mnist-judge-knn" not in {c.id for c in registry.choices()}
    with pytest.raises(ValueError, match="judge without a gradient"):
        registry.choice("mnist-judge-knn")
