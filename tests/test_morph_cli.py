"""``python -m morphlib morph``: the per-frame table and the renders."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from morphlib.cli import main


def test_morph_command_prints_a_table_and_writes_renders(tmp_path, capsys):
    out = tmp_path / "renders"
    code = main(
        ["morph", "data:digits:0", "--model", "digits-cnn", "--target", "3", "--frames", "5", "--budget", "2"]
        + ["--out", str(out)]
    )
    assert code == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("digits-cnn: ") and "-> 3" in lines[0]
    assert lines[1].split()[:3] == ["frame", "alpha", "L2"] and lines[1].endswith("top-1")
    rows = [line.split() for line in lines[2:7]]
    assert [int(r[0]) for r in rows] == list(range(5))
    assert float(rows[0][2]) == 0 and abs(float(rows[-1][2]) - 2.0) <= 0.02
    assert float(rows[-1][4]) > float(rows[0][4])  # target probability rose
    for name in ("morph.gif", "morph.mp4", "contact_sheet.png", "probabilities.png", "summary.json"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "summary.json").read_text())["target"]["label"] == "3"


def test_morph_command_reads_image_files(tmp_path, capsys):
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[8:24, 14:18] = 255  # a bar, like a "1"
    Image.fromarray(pixels).save(tmp_path / "bar.png")
    code = main(
        ["morph", str(tmp_path / "bar.png"), "--model", "digits-cnn", "--target", "7", "--frames", "3"]
        + ["--regime", "frozen"]
    )
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    notes, lines = [n for n in out if n.startswith("note: ")], [n for n in out if not n.startswith("note: ")]
    assert any("out of the model's domain" in n for n in notes)  # a white bar on black is no scikit digit
    assert lines[0].startswith("auto strength: '7' ")  # no strength given: auto
    assert len(lines) == 1 + 2 + 3


def test_morph_command_user_errors(capsys):
    assert main(["morph", "data:digits:0", "--model", "digits-cnn", "--target", "eleven"]) == 2
    assert "unknown class 'eleven'" in capsys.readouterr().err
    assert main(["morph", "missing.png", "--model", "digits-cnn", "--target", "1"]) == 2
    assert "no image file" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "morphlib", "morph", "--help"], capture_output=True, text=True, check=True
    )
    assert "--budget" in result.stdout and "data:SET:INDEX" in result.stdout


def test_a_grey_digit_morphs_as_grey_with_auto_strength(tmp_path, capsys):
    from morphlib.data import load as load_data

    images, labels, _ = load_data("mnist", split="test", n=1, seed=0)
    Image.fromarray((images[0, 0].numpy() * 255).round().astype(np.uint8), mode="L").save(
        tmp_path / "digit.png"
    )
    target = str((int(labels[0]) + 3) % 10)
    out = tmp_path / "renders"
    code = main(
        ["morph", str(tmp_path / "digit.png"), "--model", "mnist-cnn-robust", "--target", target, "--auto"]
        + ["--family", "pixel", "--regime", "persistent", "--frames", "4", "--out", str(out), "--no-video"]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert f"auto strength: '{target}' meets the goal (log-odds margin >= 3)" in text
    last_row = [line.split() for line in text.splitlines() if line.split()[:1] == ["3"]][0]
    assert last_row[-1] == target  # the last frame's top-1
    with Image.open(out / "morph.gif") as gif:
        frame = np.asarray(gif.convert("RGB"), dtype=np.int16)
    picture = frame[: frame.shape[1]]  # the square image above the probability bars
    assert np.abs(picture - picture[..., :1]).max() == 0  # grey stays grey: no colour anywhere in it
