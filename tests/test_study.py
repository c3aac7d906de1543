"""``python -m morphlib study``: held-out pairs, counted judges, the pick, end to end."""

from __future__ import annotations

import json

import pytest
import torch

from morphlib.cli import main
from morphlib.data import load as load_data
from morphlib.metrics import fade
from morphlib.study import (
    GOOD_FLIP_RATE,
    MAX_CHROMA,
    RULES,
    StudyConfig,
    default_config,
    default_settings,
    outcome,
    pick,
    recommended_setting,
    split_pairs,
    summarise,
)
from morphlib.zoo import load

SMALL = ["study", "--datasets", "mnist", "--select", "2", "--report", "2", "--settings", "pixel step-local"]


def test_fade_is_contrast_loss_not_movement():
    x = torch.rand(2, 1, 16, 16)
    assert fade(x, x.roll(5, dims=-1)).tolist() == [0.0, 0.0]  # moved structure keeps its contrast
    assert fade(x, torch.full_like(x, 0.5)).tolist() == pytest.approx([1.0, 1.0])  # dissolved
    assert fade(x, 0.5 + 0.5 * (x - 0.5)).tolist() == pytest.approx([0.5, 0.5], abs=1e-5)


def test_selection_and_report_pairs_share_no_image():
    config = StudyConfig("mnist", ("mnist-cnn-robust",), ("mnist-judge-knn",), select=60, report=120)
    images, labels, _ = load_data("mnist", "test", seed=0)
    driver = load("mnist-cnn-robust")
    splits = split_pairs(config, [driver], images, labels)
    select, report = ({i for i, _, _ in splits[s]} for s in ("select", "report"))
    assert len(select) == 60 and len(report) == 120 and not select & report
    assert splits == split_pairs(config, [driver], images, labels)  # seeded
    assert all(t != y for s in splits.values() for _, y, t in s)
    with torch.no_grad():  # every source is one the driver gets right
        chosen = [i for s in splits.values() for i, _, _ in s]
        assert (driver(images[chosen]).argmax(-1) == labels[chosen]).all()
    other = split_pairs(StudyConfig(**{**config.__dict__, "seed": 1}), [driver], images, labels)
    assert other["select"] != splits["select"]


def test_a_sibling_of_a_driver_is_never_counted():
    with pytest.raises(ValueError, match="sibling"):
        StudyConfig("mnist", ("mnist-cnn-robust",), ("mnist-cnn", "mnist-judge-knn"))
    with pytest.raises(ValueError, match="sibling"):  # whatever the driver's recipe
        StudyConfig("mnist", ("mnist-cnn-robust-eps3",), ("mnist-cnn",))
    with pytest.raises(ValueError, match="same view"):  # another architecture, the same view of the data
        StudyConfig("mnist", ("mnist-cnn-robust",), ("mnist-judge",))
    with pytest.raises(ValueError, match="the driver"):
        StudyConfig("mnist", ("mnist-cnn-robust",), ("mnist-cnn-robust",))
    shown = StudyConfig("mnist", ("mnist-cnn-robust",), ("mnist-judge-knn",), shown=("mnist-cnn",))
    assert "mnist-cnn" not in shown.judges
    for dataset in ("mnist", "orientation", "shapes"):
        config = default_config(dataset)
        assert len(config.judges) >= {"mnist": 3, "orientation": 2, "shapes": 1}[dataset]
        assert not set(config.judges) & {"mnist-cnn", "orientation-cnn", "shapes-cnn", *config.drivers}
    with pytest.raises(ValueError, match="same view"):  # the shapes' network judge sees them as drivers do
        StudyConfig("shapes", ("shapes-cnn-robust",), ("shapes-judge",))


def test_a_model_free_judge_reads_its_own_data_set_only():
    from morphlib.metrics import ShapeOutline, StructureTensorOrientation
    from morphlib.study.plan import OUTLINE_JUDGE, TENSOR_JUDGE, load_judge

    assert isinstance(load_judge(TENSOR_JUDGE, "orientation"), StructureTensorOrientation)
    assert isinstance(load_judge(OUTLINE_JUDGE, "shapes"), ShapeOutline)
    with pytest.raises(ValueError, match="reads the shapes data only"):
        load_judge(OUTLINE_JUDGE, "mnist")
    with pytest.raises(ValueError, match="reads the orientation data only"):
        load_judge(TENSOR_JUDGE, "shapes")


def _row(flips: bool, reads: int, chroma: float = 0.0, index: int = 0, setting: str = "s") -> dict:
    """A made-up path of 3 frames: the driver's top-1 reaches the target at frame 2 (or never);
    ``reads`` of three judges read the target there."""
    return dict(
        key=f"mnist|d|{setting}|{index}|1",
        driver="d",
        setting=setting,
        split="select",
        index=index,
        label=0,
        target=1,
        rms=[0.0, 0.1, 0.2],
        p=[0.01, 0.2, 0.95 if flips else 0.3],
        top1=[False, False, flips],
        margin=[-4.0, -1.0, 3.0 if flips else -0.5],
        judges={j: [0, 0, 1 if n < reads else 0] for n, j in enumerate("abc")},
        fade=[0.0, 0.0, 0.0],
        chroma=[0.0, chroma, chroma],
    )


def test_rates_are_over_all_pairs_and_the_pick_needs_flips_and_no_new_colour():
    counted = ("a", "b", "c")
    assert outcome(_row(True, 2), "top-1", counted).majority  # 2 of 3: a strict majority
    assert not outcome(_row(True, 1), "top-1", counted).majority
    # a pair the driver never flips still counts, at the cap, when the judges read the target there
    missed = outcome(_row(False, 3), "top-1", counted)
    assert (missed.stop, missed.flipped, missed.majority) == (2, False, True)
    rows = (
        [_row(True, 3, setting="colour", chroma=0.5, index=i) for i in range(10)]
        + [_row(i < 9, 2 if i < 6 else 0, setting="grey", index=i) for i in range(10)]
        + [_row(i < 8, 3, setting="few flips", index=i) for i in range(10)]
    )
    lines = summarise(rows, _Judges(counted))
    assert {x.setting for x in lines} == {"colour", "grey", "few flips"} and len(lines) == 3 * len(RULES)
    best = pick(lines)
    # "colour" convinces every judge but paints colour; "few flips" flips 80 % < the bar
    assert best is not None and best.setting == "grey" and best.majority == 6 and best.pairs == 10
    assert best.flip_rate >= GOOD_FLIP_RATE and (best.chroma or 0) <= MAX_CHROMA


class _Judges:
    """A stand-in for a StudyConfig's judges (made-up judges have no zoo entry to check)."""

    def __init__(self, judges):
        self.judges, self.shown = tuple(judges), ()


def test_the_app_default_is_one_of_the_settings_the_study_measures():
    from morphlib.config import RECOMMENDED_STRENGTH

    for channels in (1, 3):
        assert recommended_setting(channels) in default_settings(channels)
    assert RECOMMENDED_STRENGTH.goal is not None and RECOMMENDED_STRENGTH.goal.spec in RULES


def test_study_runs_end_to_end_resumes_and_reports(tmp_path):
    out = tmp_path / "quality"
    assert main([*SMALL, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    config = default_config("mnist")
    assert len(rows) == 4 * len(config.drivers) and {r["setting"] for r in rows} == {"pixel step-local"}
    assert sorted(r["split"] for r in rows) == ["report"] * (2 * len(config.drivers)) + ["select"] * (
        2 * len(config.drivers)
    )
    reads = [json.loads(line) for line in (out / "reads_mnist.jsonl").read_text().splitlines()]
    assert {r["judge"] for r in reads} == {*config.judges, *config.shown}
    for row in rows:
        assert len(row["rms"]) == len(row["p"]) == 25 and row["rms"][-1] <= 0.28 * 1.01
        assert row["target"] != row["label"]
    report = (out / "report.md").read_text()
    assert "Held out, on the report pairs" in report or "No (driver, setting, rule) flips" in report
    assert "`mnist-cnn` | no: sibling of a driver" in report or "Every (driver, setting, rule)" in report
    assert (out / "grid_mnist.png").stat().st_size > 0 and (out / "results.csv").exists()
    # a rerun finds everything walked and read, and adds nothing
    assert main([*SMALL, "--out", str(out)]) == 0
    assert len((out / "rows.jsonl").read_text().splitlines()) == len(rows)
    assert len((out / "reads_mnist.jsonl").read_text().splitlines()) == len(reads)


def test_unknown_settings_and_data_sets_are_refused(tmp_path, capsys):
    assert main([*SMALL[:-1], "pixel sideways", "--out", str(tmp_path)]) == 2
    assert "unknown settings ['pixel sideways']" in capsys.readouterr().err
    assert main(["study", "--datasets", "cifar", "--out", str(tmp_path)]) == 2


def test_the_defaults_are_what_the_committed_study_picked():
    """The app opens on the study's MNIST pick, and the library's and CLI's defaults are its setting
    and stopping rule (``reports/quality/report.md``, written from the committed rows)."""
    import re
    from pathlib import Path

    from morphlib.app.examples import load_examples
    from morphlib.app.registry import DEFAULT_MODELS as APP_MODELS
    from morphlib.config import RECOMMENDED_STRENGTH

    report = (Path(__file__).resolve().parents[1] / "reports" / "quality" / "report.md").read_text()
    mnist = report[report.index("## mnist") :]
    picked = re.search(r"\*\*Picked on the selection pairs:\*\* `([^`]+)`, ([^,]+), stop at (\S+) ", mnist)
    assert picked is not None
    driver, setting, rule = picked.groups()
    assert setting == recommended_setting(1).name and rule == RECOMMENDED_STRENGTH.goal.spec
    bundled = [m for m in APP_MODELS if m.startswith("mnist")]
    assert bundled[0] == driver
    assert {e.model for e in load_examples() if e.name in ("mnist-3", "mnist-7")} == {driver}
