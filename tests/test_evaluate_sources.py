"""Where an evaluation's sources and targets come from: a bundled test split or an image folder,
the driver's correct images only, targets by a stated seeded policy."""

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from morphlib.data import LABEL_NAMES
from morphlib.data import load as load_data
from morphlib.evaluate import EvalConfig, choose_sources, evaluate, source_images
from morphlib.labels import pick_target
from morphlib.zoo import load

BASE = dict(
    model="shapes-cnn",
    judges=("shapes-judge",),
    families=("pixel",),
    budgets=(2.0,),
    regimes=("frozen",),
    sources=3,
    frames=3,
)

DIGITS = {**BASE, "dataset": "digits", "model": "digits-cnn", "judges": ("digits-judge",)}
del DIGITS["sources"]


def _shape_folder(root, layout, per_class=3):
    """``root/<folder>/<i>.png``: shapes test images (seed 5, 80x80) of the class each folder names."""
    images, labels, _ = load_data("shapes", split="test", n=60, seed=5)
    for folder, label in layout.items():
        (root / folder).mkdir(parents=True)
        for i, image in enumerate(images[labels == label][:per_class]):
            pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(pixels).resize((80, 80)).save(root / folder / f"{i}.png")
    return root


def test_sources_are_correct_and_targets_follow_the_policy():
    model = load("digits-cnn")
    config = EvalConfig(**DIGITS, sources=20)
    images, labels = source_images(config, model)
    with torch.no_grad():
        logits = model(images)
    random = choose_sources(config, model, images, labels, chunk=7)  # chunks do not change the choice
    assert random == choose_sources(config, model, images, labels)
    assert len(random) == 20 and len({i for i, _, _ in random}) == 20
    for index, label, target in random:
        assert logits[index].argmax() == label == labels[index] and target != label
    assert len({t for _, _, t in random}) > 1

    runner_up = choose_sources(EvalConfig(**DIGITS, sources=20, targets="runner-up"), model, images, labels)
    assert [i for i, _, _ in runner_up] == [i for i, _, _ in random]  # the same sources
    for index, _, target in runner_up:
        assert target == int(logits[index].topk(2).indices[1])


def test_pick_target_policies():
    rng = np.random.default_rng(0)
    drawn = [pick_target("random", torch.zeros(4), 2, rng) for _ in range(400)]
    assert set(drawn) == {0, 1, 3} and min(np.bincount(drawn)[[0, 1, 3]]) > 100
    with pytest.raises(ValueError, match="choose from random, runner-up"):
        pick_target("nearest", torch.zeros(4), 2, rng)
    with pytest.raises(ValueError, match="unknown target policy"):
        EvalConfig(dataset="shapes", **BASE, targets="nearest")
    with pytest.raises(ValueError, match="either a bundled data set or an image folder"):
        EvalConfig(dataset="shapes", images="somewhere", **BASE)


def test_evaluation_on_an_image_folder(tmp_path, caplog):
    root = _shape_folder(tmp_path / "images", {"circle": 0, "1": 1, "Triangle": 2, "blobs": 3})
    config = EvalConfig(dataset=None, images=str(root), targets="runner-up", **{**BASE, "sources": 2})
    with caplog.at_level(logging.WARNING, logger="morphlib.evaluate"):
        rows = evaluate(config, tmp_path / "run")
    assert any("left out blobs/" in m for m in caplog.messages)  # said at once, not only in the report
    assert len(rows) == 2 and all("e_warp" in row for row in rows)

    record = json.loads((tmp_path / "run" / "sources.json").read_text())
    assert record["unmatched"] == {"blobs": "no class of that name, id or index"}
    assert record["matched"] == {"1": 1, "Triangle": 2, "circle": 0}
    model = load("shapes-cnn")
    folder, _ = source_images(config, model)  # the images as the run saw them: fitted to 64x64
    for source in record["sources"]:
        assert str(folder.paths[source["index"]].relative_to(root)) == source["path"]
        assert source["path"].split("/")[0] in record["matched"]
        with torch.no_grad():
            logits = model(folder[source["index"]][None])[0]
        assert source["label"] == int(logits.argmax()) and source["target"] == int(logits.topk(2).indices[1])
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["images"] == str(root) and stored["targets"] == "runner-up"
    report = (tmp_path / "run" / "report.md").read_text()
    assert (
        f"image folder `{root}`" in report
        and "runner-up class" in report
        and "`--targets runner-up`" in report
    )
    assert (
        "9 images in 3 class folders" in report and "`blobs` (no class of that name, id or index)" in report
    )
    assert (tmp_path / "run" / "examples_frozen_l2_2.png").is_file()


def test_a_run_stored_before_the_policy_was_recorded_resumes(tmp_path):
    config = EvalConfig(**DIGITS, sources=1)
    evaluate(config, tmp_path)
    stored = json.loads((tmp_path / "config.json").read_text())
    del stored["images"], stored["targets"]  # as written before these settings existed: random targets
    (tmp_path / "config.json").write_text(json.dumps(stored))
    assert len(evaluate(config, tmp_path)) == 1
    with pytest.raises(ValueError, match="other settings"):
        evaluate(EvalConfig(**DIGITS, sources=1, targets="runner-up"), tmp_path)


def test_the_command_takes_images_and_targets(tmp_path, capsys):
    from morphlib.cli import main

    root = _shape_folder(tmp_path / "images", {name: i for i, name in enumerate(LABEL_NAMES["shapes"][:2])})
    argv = [
        "evaluate",
        "--images",
        str(root),
        "--model",
        "shapes-cnn",
        "--families",
        "pixel",
        "--budgets",
        "2",
    ]
    argv += ["--regime", "frozen", "--sources", "1", "--frames", "3", "--targets", "runner-up"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["targets"] == "runner-up"
    with pytest.raises(SystemExit):
        main(
            ["evaluate", "--images", str(root), "--dataset", "shapes", "--model", "shapes-cnn", "--out", "x"]
        )
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_morph_command_takes_a_target_policy(capsys):
    from morphlib.cli import main

    model = load("digits-cnn")
    image = load_data("digits", split="test", n=1, seed=0)[0][0]
    with torch.no_grad():
        first, second = model(image[None])[0].topk(2).indices.tolist()
    argv = ["morph", "data:digits:0", "--model", "digits-cnn", "--family", "pixel", "--frames", "2"]
    assert main([*argv, "--budget", "1", "--target", "runner-up"]) == 0
    assert f"digits-cnn: {model.labels[first]} -> {model.labels[second]} " in capsys.readouterr().out
    targets = set()
    for seed in range(4):
        assert main([*argv, "--budget", "1", "--target", "random", "--seed", str(seed)]) == 0
        line = capsys.readouterr().out.splitlines()[0]
        assert line.startswith(f"digits-cnn: {model.labels[first]} -> ")
        targets.add(line.split(" -> ")[1].split()[0])
    assert model.labels[first] not in targets and len(targets) > 1


def test_an_unreadable_image_is_reported_and_skipped(tmp_path, caplog):
    root = _shape_folder(tmp_path / "images", {"circle": 0, "1": 1, "Triangle": 2})
    first = sorted((root / "circle").iterdir())[0]
    first.write_bytes(b"not an image at all")  # the first image of the first class
    config = EvalConfig(dataset=None, images=str(root), targets="runner-up", **{**BASE, "sources": 2})
    with caplog.at_level(logging.WARNING, logger="morphlib.data"):
        rows = evaluate(config, tmp_path / "run")
    assert len(rows) == 2  # the run went on
    record = json.loads((tmp_path / "run" / "sources.json").read_text())
    bad = str(first.relative_to(root))
    assert bad in record["unreadable"] and "not an image" in record["unreadable"][bad]
    assert all(source["path"] != bad for source in record["sources"])
    assert any(bad in m for m in caplog.messages)


def test_a_small_folder_is_used_whole_and_reported_as_a_folder(tmp_path, capsys, caplog):
    """No --sources: every image of the folder the driver gets right; the report and figures name the
    folder, set no published MNIST figures beside it, and a folder taken by its number is said so."""
    from morphlib.cli import main

    root = _shape_folder(tmp_path / "my-shapes", {"circle": 0, "1": 1})
    argv = [
        "evaluate",
        "--images",
        str(root),
        "--model",
        "shapes-cnn",
        "--families",
        "pixel",
        "--budgets",
        "2",
    ]
    with caplog.at_level(logging.WARNING, logger="morphlib.data"):
        assert main([*argv, "--regime", "frozen", "--frames", "3", "--out", str(tmp_path / "run")]) == 0
    assert any("'1' is taken as class index 1" in m for m in caplog.messages)
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("0/") and "starting" in err.splitlines()[0]  # a line at once
    record = json.loads((tmp_path / "run" / "sources.json").read_text())
    model = load("shapes-cnn")
    folder, labels = source_images(
        EvalConfig(**{**BASE, "dataset": None, "images": str(root), "sources": 0}), model
    )
    with torch.no_grad():
        right = int((model(folder[0 : len(folder)]).argmax(-1) == labels).sum())
    assert len(record["sources"]) == right > 0
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Published figures" not in report and "no published figures" in report
    assert f"; {right} sources from the image folder" in report
