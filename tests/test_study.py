"""``python -m morphlib study``: end to end on a small setting, resumable, with its report."""

from __future__ import annotations

import json

import pytest
import torch

from morphlib import Strength
from morphlib.cli import main
from morphlib.study import DEFAULT_MODELS, Setting, best_setting, default_settings, fade, summarise

SMALL = ["study", "--datasets", "mnist", "--sources", "2", "--frames", "4"]
SETTINGS = ["--settings", "pixel persistent,csp-phase frozen"]


def test_fade_is_contrast_loss_not_movement():
    x = torch.rand(2, 1, 16, 16)
    assert fade(x, x.roll(5, dims=-1)).tolist() == [0.0, 0.0]  # moved structure keeps its contrast
    assert fade(x, torch.full_like(x, 0.5)).tolist() == pytest.approx([1.0, 1.0])  # dissolved
    assert fade(x, 0.5 + 0.5 * (x - 0.5)).tolist() == pytest.approx([0.5, 0.5], abs=1e-5)


def test_settings_vary_one_control_at_a_time_and_name_it():
    grey, colour = default_settings(1), default_settings(3)
    names = [s.name for s in colour]
    assert len(set(names)) == len(names)
    assert "csp-phase frozen" in names and "csp-joint step-local half-octave" in names
    assert "csp-phase frozen cap 0.5π" in names and "csp-joint step-local luma" in names
    assert not any(s.luma_only for s in grey)  # luma-only means nothing for grey data
    config = Setting("csp-phase", "frozen", bandwidth="quarter-octave", min_prob=0.9).config()
    assert (config.family, config.regime, config.pyramid.bandwidth) == (
        "csp-phase",
        "frozen",
        "quarter-octave",
    )
    assert Setting("pixel", "persistent", min_prob=0.9).strength(0.2) == Strength.auto(goal=0.9, cap_rms=0.2)


def test_study_runs_end_to_end_resumes_and_reports(tmp_path, capsys):
    out = tmp_path / "quality"
    assert main([*SMALL, *SETTINGS, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {r["setting"] for r in rows} == {"pixel persistent", "csp-phase frozen"}
    for row in rows:
        assert set(row["judges"]) == set(DEFAULT_MODELS["mnist"][1])
        assert 0 < row["rms"] <= 0.28 * 1.01 and 0 <= row["fade"] <= 1
        assert row["target"] != row["label"]
    report = (out / "report.md").read_text()
    assert "| pixel persistent | " in report and "judge mnist-judge-vit" in report
    assert (out / "grid_mnist.png").stat().st_size > 0 and (out / "results.csv").exists()
    # a rerun finds everything done and adds no rows
    assert main([*SMALL, *SETTINGS, "--out", str(out)]) == 0
    assert len((out / "rows.jsonl").read_text().splitlines()) == 4


def test_unknown_settings_and_data_sets_are_refused(tmp_path, capsys):
    assert main([*SMALL, "--settings", "pixel sideways", "--out", str(tmp_path)]) == 2
    assert "unknown settings ['pixel sideways']" in capsys.readouterr().err
    assert main(["study", "--datasets", "cifar", "--out", str(tmp_path)]) == 2


def test_best_setting_needs_flips_before_judges_count():
    rows = []
    for setting, flips, judged in (("a", 9, 9), ("b", 10, 5), ("c", 10, 8)):
        for i in range(10):
            rows.append(
                dict(
                    setting=setting,
                    family="pixel",
                    regime="frozen",
                    flipped=i < flips,
                    saturated=False,
                    rms=0.1,
                    E_warp=0.5,
                    E_warp_gain=0.6,
                    fade=0.0,
                    judges={"j": i < judged},
                )
            )
    summary = summarise(rows, ["j"])
    assert [s["flip_rate"] for s in summary] == [0.9, 1.0, 1.0]
    # "a" has the best transfer (9/9) and flips 90 %, the bar; "c" beats "b"
    assert best_setting(summary)["setting"] == "a"
    assert best_setting(summary[1:])["setting"] == "c"


def test_the_app_default_is_one_of_the_settings_the_study_measures():
    from morphlib.config import RECOMMENDED, RECOMMENDED_STRENGTH
    from morphlib.study import recommended_setting

    chosen = recommended_setting()
    assert chosen in default_settings(1) and chosen in default_settings(3)
    assert (chosen.family, chosen.regime, chosen.min_prob) == (
        RECOMMENDED.family,
        RECOMMENDED.regime,
        RECOMMENDED_STRENGTH.goal,
    )
