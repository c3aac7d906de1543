"""The bundled drivers' accuracies, recomputed on the test split and held to what zoo.yaml states.

Clean accuracy is measured on the split its metrics were (MNIST: the 1,000 held-out digits;
shapes, orientation: 500 test images of seed 0).  Robust accuracy is recomputed under 20-step
L2 PGD (morphlib.attacks, seeded) at the model's own radius on the first images of that split:
the figure ``robust_check`` that ``scripts/robust_eval.py --check-images`` stored for them,
which the same attack on the same images must reproduce.  That subset figure must in turn
agree with the whole split's (``robust_curve``) within what so few images can tell apart
(200 MNIST digits, 100 of the larger 64x64 images, to keep each test to a few seconds).
"""

import pytest
import torch

from morphlib import data
from morphlib.attacks import robust_accuracy
from morphlib.train import EVAL_SIZE
from morphlib.zoo import load, read_manifest

MANIFEST = read_manifest()
DRIVERS = [
    e.id
    for e in MANIFEST.values()
    if e.source == "bundled" and e.dataset in ("mnist", "orientation", "shapes") and "-cnn" in e.id
]
# The same images, attack and seed: only floating-point differences between machines remain.
SAME_ATTACK = 0.02
# A subset against the whole split: three standard errors of a proportion near 1/2.
SUBSET_ERRORS = 3


def _split(dataset: str):
    n = None if dataset == "mnist" else EVAL_SIZE
    return data.load(dataset, "test", n=n, seed=0)


def test_every_data_set_has_a_standard_a_robust_and_a_stronger_driver():
    for dataset in ("mnist", "orientation", "shapes"):
        robust = [MANIFEST[d] for d in DRIVERS if MANIFEST[d].dataset == dataset and MANIFEST[d].robust]
        assert f"{dataset}-cnn" in DRIVERS and len(robust) >= 2, dataset
        assert max(e.robust_eps or 0 for e in robust) >= 2 * min(e.robust_eps or 0 for e in robust)


@pytest.mark.parametrize("model_id", DRIVERS)
def test_clean_accuracy_is_the_stated_one(model_id):
    model = load(model_id)
    images, labels, _ = _split(model.entry.dataset)
    with torch.no_grad():
        acc = (model(images).argmax(1) == labels).float().mean().item()
    assert acc == pytest.approx(model.entry.metrics["clean_accuracy"], abs=0.01), model_id


@pytest.mark.parametrize("model_id", DRIVERS)
def test_robust_accuracy_is_the_stated_one(model_id):
    model = load(model_id)
    check = model.entry.metrics["robust_check"]
    assert check["eps"] == (model.entry.robust_eps or model.entry.metrics["eval_eps"])
    assert check["pgd_steps"] >= 20
    images, labels, _ = _split(model.entry.dataset)
    x, y = images[: check["images"]], labels[: check["images"]]
    acc = robust_accuracy(model, x, y, check["eps"], steps=check["pgd_steps"])
    assert acc == pytest.approx(check["accuracy"], abs=SAME_ATTACK), model_id
    curve = model.entry.metrics.get("robust_curve")
    if curve and check["eps"] in curve["eps"]:
        whole = curve["accuracy"][curve["eps"].index(check["eps"])]
        assert acc == pytest.approx(whole, abs=SUBSET_ERRORS * (0.25 / len(x)) ** 0.5), (model_id, whole)
