"""The atlas and the plane on small bundled models: distances against single morphs, batching,
the plane's centre, and what they write."""

from __future__ import annotations

import json
import math

import pytest
import torch

from morphlib import RECOMMENDED, MorphConfig, Strength, morph
from morphlib.atlas import atlas, default_targets, plane
from morphlib.data import load as load_data
from morphlib.zoo import load

CAP = 0.2  # RMS: a short walk keeps the tests quick


@pytest.fixture(scope="module")
def digits():
    images, _, _ = load_data("digits", split="test", n=2, seed=0)
    return load("digits-cnn-robust"), images[1]


@pytest.fixture(scope="module")
def full(digits):
    model, image = digits
    return atlas(model, image, cap_rms=CAP)


def test_every_other_class_is_walked_in_one_atlas(full):
    assert sorted(r.target for r in full.routes) == [c for c in range(10) if c != full.source]
    assert full.step == pytest.approx(full.cap / 24)
    assert sum(r.reached for r in full.routes) >= 3
    for r in full.routes:  # the walk ends where the class first becomes top-1, or short of it
        top1 = r.probs.argmax(dim=1)
        assert (top1[:-1] != r.target).all()
        assert (top1[-1] == r.target) == r.reached
        if r.reached:
            assert r.distance == pytest.approx(float(r.l2[-1])) and r.distance <= full.cap * 1.01
    ranked = [r.distance for r in full.ranked()]
    assert ranked == sorted(ranked)


def test_distances_agree_with_single_morphs_within_one_step(digits, full):
    model, image = digits
    ranked = full.ranked()
    for r in [ranked[0], ranked[len(ranked) // 2], ranked[-1]]:
        single = morph(model, image, r.target, RECOMMENDED, Strength.auto(None, cap_rms=CAP), progress=False)
        assert single.auto.reached == r.reached, r.label
        if r.reached:
            assert abs(single.auto.budget - r.distance) <= full.step * 1.01, r.label


def test_a_batched_atlas_equals_atlases_of_one_class(digits, full):
    model, image = digits
    for r in full.ranked()[:2]:
        (alone,) = atlas(model, image, targets=[r.label], cap_rms=CAP).routes
        assert alone.reached == r.reached
        assert alone.distance == pytest.approx(r.distance, rel=1e-3, abs=1e-3)
        assert torch.allclose(alone.last, r.last, atol=1e-3)


def test_the_frozen_regime_gives_the_auto_strength_distance(digits):
    model, image = digits
    config = MorphConfig(family="pixel")
    a = atlas(model, image, targets=["4", "7"], config=config, cap_rms=CAP)
    for r in a.routes:
        single = morph(model, image, r.target, config, Strength.auto(None, cap_rms=CAP), frames=3)
        assert single.auto.reached == r.reached
        if r.reached:
            assert r.distance == pytest.approx(single.auto.budget, rel=1e-3)


def test_targets_are_checked_and_the_source_is_at_distance_zero(digits, full):
    model, image = digits
    own = atlas(model, image, targets=[full.source], cap_rms=CAP)
    assert own.routes[0].distance == 0.0
    with pytest.raises(ValueError, match="unknown class"):
        atlas(model, image, targets=["eleven"])
    probs = torch.arange(30.0).softmax(0)
    assert default_targets(probs, 29) == list(range(28, 20, -1))  # a large label set: 8 runner-ups


def test_a_class_with_no_gradient_is_beyond_reach_not_an_error(digits):
    """A blank image gives a phase edit nothing to act on: a morph says so; the atlas, whose rows
    share one batch, marks each such class beyond the cap (it saturates) and walks the rest."""
    model, image = digits
    blank = torch.zeros_like(image)
    config = MorphConfig(family="csp-phase", regime="step-local")
    with pytest.raises(ValueError, match="gradient toward '4' is zero"):
        morph(model, blank, "4", config)
    found = atlas(model, blank, config=config, cap_rms=CAP)
    assert len(found.routes) == 9
    assert all(math.isinf(r.distance) and r.saturated for r in found.routes)
    assert all(torch.equal(r.last, blank.float()) for r in found.routes)  # nothing moved


def test_atlas_save_writes_chart_frames_and_summary(full, tmp_path):
    paths = full.save(tmp_path)
    assert all(p.is_file() for p in paths.values())
    summary = json.loads(paths["summary"].read_text())
    assert summary["source"]["label"] == full.labels[full.source] and summary["goal"] == "top-1"
    assert [c["label"] for c in summary["classes"]] == [r.label for r in full.ranked()]
    assert "rank" in full.table()


def test_the_plane_centre_is_the_image_and_its_class(digits, full, tmp_path):
    model, image = digits
    a, b = (r.label for r in full.ranked()[:2])
    p = plane(model, image, a, b, n=7, cap_rms=CAP)
    assert p.classes.shape == (7, 7) and p.centre == full.source
    assert torch.equal(p.images[(3, 3)], image.float())  # the centre point is the image itself
    assert float(p.u[3]) == 0.0 == float(p.v[3]) and len(p.images) == 9
    assert p.reach[0] > 0 and p.reach[1] > 0 and float(p.u[-1]) == pytest.approx(p.reach[0])
    assert sum(p.regions().values()) == 49
    first = p.first_along("a")
    assert math.isinf(first) or 0 < first <= p.reach[0]
    paths = p.save(tmp_path)
    assert paths["plane"].stat().st_size > 10_000
    assert json.loads(paths["plane_summary"].read_text())["source"] == full.labels[full.source]


def test_the_plane_refuses_an_even_grid_and_one_class_twice(digits):
    model, image = digits
    with pytest.raises(ValueError, match="odd"):
        plane(model, image, "4", "9", n=6)
    with pytest.raises(ValueError, match="two different classes"):
        plane(model, image, "4", 4, n=3)


def _run_folder(folder, model, rows):
    """A run folder as ``evaluate --atlas`` leaves it after ``len(rows)`` of 50 sources."""
    folder.mkdir()
    config = dict(dataset="mnist", model=model, sources=50, seed=0, family="csp-joint", regime="step-local")
    (folder / "atlas_config.json").write_text(json.dumps({**config, "cap_rms": 0.28}))
    lines = [
        dict(key=str(i), index=i, label=label, top1=label, cap_l2=7.84, distances=d, saturated=[])
        for i, (label, d) in enumerate(rows)
    ]
    (folder / "atlas.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def test_the_comparison_script_computes_its_numbers_from_the_rows(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "atlas_compare.py"
    spec = importlib.util.spec_from_file_location("atlas_compare", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    def row(label, default, **near):
        d = {t: default for t in "0123456789" if t != label}
        return label, {**d, **{k.lstrip("c"): v for k, v in near.items()}}

    # standard: class 0 reaches 1 at 2 and 4 (median 3), the rest at 3;
    # the class-1 source reaches only 0, at 1
    standard = _run_folder(
        tmp_path / "std", "mnist-cnn", [row("0", 3.0, c1=2.0), row("0", 3.0, c1=4.0), row("1", None, c0=1.0)]
    )
    # robust: 0 -> 1 at 5 and 7 (median 6, ratio 2), 1 -> 0 at 1.5 (ratio 1.5), the rest at 4 (ratio 4/3)
    robust = _run_folder(
        tmp_path / "rob",
        "mnist-cnn-robust",
        [row("0", 4.0, c1=5.0), row("0", 4.0, c1=7.0), row("1", 4.0, c0=1.5)],
    )
    text = script.compare(standard, robust, tmp_path / "README.md")
    assert text == (tmp_path / "README.md").read_text()
    assert "Sources in these tables: 3 (robust) and 3 (standard)" in text and "robust 3 of 50" in text
    assert "robust 27/27 (100 %), standard 19/27 (70 %)" in text
    # reached distances: standard 1, 2, 4 and sixteen 3s (median 3);
    # robust 1.5, 5, 7 and twenty-four 4s (median 4)
    assert "robust 4.00, standard 3.00 (ratio 1.33)" in text
    # finite ratios: 2 (0 -> 1), 1.5 (1 -> 0) and eight 4/3 (0 -> the rest);
    # 1 -> the rest is infinite for the standard driver
    assert "both medians finite, 10 pairs): median robust/standard ratio 1.33, range 1.33-2.00" in text
    assert "| 0 | · | 2.00 | 1.33 | 1.33 |" in text and "| 1 | 1.50 | · | - | - |" in text
    assert "| 0 | · | 3.00 | 3.00 |" in text and "| 1 | 1.00 | · | ∞ |" in text
    assert "Closest pairs: 1→0 1.00, 0→2 3.00" in text
    assert "`mnist-cnn-robust`, L2 PGD eps 1.5" in text
