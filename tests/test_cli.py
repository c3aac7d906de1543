"""The command line: help without the library loaded, what it mirrors of the library, one-line errors."""

import subprocess
import sys

import pytest

from morphlib import (
    RECOMMENDED,
    RECOMMENDED_STRENGTH,
    config,
    data,
    edits,
    evaluate,
    labels,
    objectives,
    study,
    train,
)
from morphlib import atlas as atlas_module
from morphlib.cli import atlas as cli_atlas
from morphlib.cli import evaluate as cli_evaluate
from morphlib.cli import main
from morphlib.cli import morph as cli_morph
from morphlib.cli import study as cli_study
from morphlib.cli import train as cli_train
from morphlib.stopping import Goal
from morphlib.transforms import BANDWIDTHS


def test_the_help_texts_mirror_the_library():
    """--help imports no torch, so the commands keep copies of a few names and defaults: they agree."""
    assert (
        cli_morph.DEFAULT_FAMILY,
        cli_morph.DEFAULT_REGIME,
        cli_morph.DEFAULT_SMOOTH,
        cli_morph.DEFAULT_LUMA,
    ) == (
        RECOMMENDED.family,
        RECOMMENDED.regime,
        RECOMMENDED.smooth_sigma,
        RECOMMENDED.luma_only,
    )
    assert (Goal.parse(cli_morph.DEFAULT_GOAL), cli_morph.DEFAULT_CAP_RMS) == (
        RECOMMENDED_STRENGTH.goal,
        RECOMMENDED_STRENGTH.cap_rms,
    )
    assert cli_morph.FAMILIES == edits.FAMILIES and cli_morph.REGIMES == config.REGIMES
    assert cli_morph.LOSSES == objectives.LOSSES and set(cli_morph.BANDWIDTHS) == set(BANDWIDTHS)
    assert cli_morph.POLICIES == labels.POLICIES
    assert cli_evaluate.DEFAULT_BATCH == evaluate.DEFAULT_BATCH
    assert set(cli_train.DATASETS) == set(data.DATASETS) and cli_train.ARCHITECTURES == tuple(
        train.ARCHITECTURES
    )
    assert (cli_train.LR, cli_train.PGD_STEPS) == (train.TrainConfig.lr, train.TRAIN_PGD_STEPS)
    assert set(cli_study.DATASETS) == set(study.DEFAULT_MODELS)
    assert cli_atlas.DEFAULT_GRID == atlas_module.GRID


@pytest.mark.parametrize("command", ["morph", "atlas", "train", "evaluate", "study"])
def test_help_loads_no_torch_and_shows_plain_text(command):
    code = (
        "import sys, contextlib, io\n"
        "from morphlib.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        f"    main(['{command}', '--help'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(out.getvalue())\n"
    )
    text = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "usage:" in text and "``" not in text and ":mod:" not in text and ":func:" not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["morph", "missing.png", "--model", "digits-cnn", "--target", "3"], "no image file 'missing.png'"),
        (
            ["morph", "data:digits:0", "--model", "digits-cnn", "--target", "3", "--goal", "1.5"],
            "the p rule's value must lie in (0, 1), got 1.5",
        ),
        (
            ["morph", "data:digits:0", "--model", "digits-cnn", "--target", "3", "--scales", "x"],
            "--scales must be",
        ),
        (["morph", "data:digits:0", "--model", "nope", "--target", "3"], "nope"),
        (["atlas", "data:digits:0", "--model", "digits-cnn", "--targets", "ten"], "unknown class 'ten'"),
    ],
)
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_a_file_that_is_not_an_image_is_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert main(["morph", str(bad), "--model", "digits-cnn", "--target", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not an image" in err and "\n" not in err


def test_folder_budgets_default_to_rms_changes_at_the_drivers_size():
    """An L2 of 2 on a 224x224 photo is an RMS change of 0.005: the default budgets of a folder scale."""
    assert cli_evaluate.default_budgets("shapes-cnn", dataset=True) == (1.0, 2.0)
    assert cli_evaluate.default_budgets("shapes-cnn", dataset=False) == (
        5.54,
        11.09,
    )  # 0.05, 0.1 x sqrt(3*64*64)
    assert cli_evaluate.default_budgets("mnist-cnn", dataset=False) == (1.4, 2.8)  # one grey channel, 28x28


def test_the_readmes_first_command_changes_the_class(tmp_path, capsys):
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    line = next(row for row in readme.splitlines() if row.startswith("morphlib morph "))
    argv = line.split("#")[0].split()[1:]
    argv[argv.index("--out") + 1] = str(tmp_path / "out")
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = [row.split() for row in out.splitlines() if row.strip()[:1].isdigit()]
    assert "meets the goal (log-odds margin >= 3)" in out and rows[0][-1] != "8" and rows[-1][-1] == "8"
    assert (tmp_path / "out" / "morph.gif").is_file()


def test_atlas_prints_ranked_distances_and_writes_the_atlas_and_the_plane(tmp_path, capsys):
    argv = ["atlas", "data:digits:1", "--model", "digits-cnn-robust", "--targets", "4,9", "--cap-rms", "0.2"]
    assert main([*argv, "--plane", "4,9", "--grid", "5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    ranked = [row.split() for row in out.splitlines() if row.strip()[:1].isdigit()]
    assert [row[1] for row in ranked] and {row[1] for row in ranked} == {"4", "9"}
    assert "top-1 goal" in out and "plane toward 4 and 9 (5x5): centre" in out
    for name in ("distances.png", "frames.png", "atlas.json", "plane.png", "plane.json"):
        assert (tmp_path / name).is_file(), name


def test_atlas_plane_takes_two_classes(capsys):
    with pytest.raises(SystemExit):
        main(["atlas", "data:digits:1", "--model", "digits-cnn-robust", "--plane", "4"])
    assert "expected two classes as A,B" in capsys.readouterr().err
