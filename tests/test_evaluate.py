"""The evaluation runner: a small run writes a report, and an interrupted run resumes to the same rows."""

import json

import pytest

from morphlib.evaluate import EvalConfig, bootstrap_median, evaluate, read_rows

CONFIG = EvalConfig(
    dataset="digits",
    model="digits-cnn-robust",
    judges=("digits-judge",),
    families=("pixel", "csp-phase"),
    budgets=(3.0,),
    regimes=("frozen",),
    sources=2,
    frames=3,
)
VOLATILE = {"seconds"}


def stable(rows):
    return sorted(({k: v for k, v in r.items() if k not in VOLATILE} for r in rows), key=lambda r: r["key"])


def assert_same_rows(rows, expected):
    """The same cases and measures; numbers to float tolerance (batches round differently).

    E is a non-convex fit stopped after at most a fixed number of L-BFGS iterations, so
    the 1e-7 by which a batched frame differs can move it: noise of 1e-7 on 16 frames
    moved E by a median of 1e-4 and at most 2e-3 (digits) to 2e-2 (shapes).  The fit
    itself does not depend on the batch (tests/test_metrics.py); E gets its own tolerance.
    """
    rows, expected = stable(rows), stable(expected)
    assert [r["key"] for r in rows] == [r["key"] for r in expected]
    for row, want in zip(rows, expected, strict=True):
        assert row.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, float):
                value = (
                    pytest.approx(value, abs=1e-2) if key.startswith("e_") else pytest.approx(value, rel=1e-4)
                )
            assert row[key] == value, key


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_results(tmp_path):
    whole = evaluate(CONFIG, tmp_path / "whole")
    assert len(whole) == 4
    report = (tmp_path / "whole" / "report.md").read_text()
    assert "| frozen | 3 | csp-phase | 2 |" in report and "Published figures" in report
    assert (tmp_path / "whole" / "results.csv").read_text().count("\n") == 5
    assert (tmp_path / "whole" / "families_frozen.png").stat().st_size > 0
    for row in whole:
        assert 0.0 <= row["e_warp"] <= row["e_warp_gain"] + 1e-6 <= 1.0 + 1e-6
        assert row["l2"] == pytest.approx(3.0, rel=0.02)

    def stop_after_first_source(done, total, eta):
        if done > 0:  # the first call comes before any chunk
            raise Interrupt

    out = tmp_path / "resumed"
    with pytest.raises(Interrupt):  # one source a batch: interrupted after the first
        evaluate(CONFIG, out, progress=stop_after_first_source, batch=1)
    assert len(read_rows(out / "results.jsonl")) == 2
    with (out / "results.jsonl").open("a") as f:
        f.write('{"key": "half a line')  # as if killed mid-write
    calls = []
    resumed = evaluate(CONFIG, out, progress=lambda done, total, eta: calls.append(done), batch=1)
    assert calls == [2, 4]  # said at once, then only the second source's two cases ran
    assert_same_rows(resumed, whole)  # one source at a time gives what a batch of both gave
    assert "half a line" in (out / "results.jsonl.bad").read_text()  # the torn line, set aside


def test_resuming_with_other_settings_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"dataset": "digits", "model": "digits-cnn"}))
    with pytest.raises(ValueError, match="other settings"):
        evaluate(CONFIG, tmp_path)


def test_unreachable_budgets_are_recorded_and_counted(tmp_path):
    # A 3x32x32 image in [0, 1] is at most ~55 away from anything: no family reaches 200.
    config = EvalConfig(**{**CONFIG.__dict__, "budgets": (200.0,), "sources": 1})
    rows = evaluate(config, tmp_path)
    assert len(rows) == 2
    assert all("cannot be reached" in row["unreachable"] for row in rows)
    report = (tmp_path / "report.md").read_text()
    assert "| frozen | 200 | pixel | 0 | 1 | - |" in report


def test_bootstrap_median_interval_brackets_the_median():
    m, lo, hi = bootstrap_median(list(range(101)))
    assert m == 50 and lo < 50 < hi


def test_the_command_logs_progress_lines_when_not_on_a_terminal(tmp_path, capsys):
    from morphlib.cli import main

    argv = ["evaluate", "--dataset", "digits", "--model", "digits-cnn-robust", "--judges", "digits-judge"]
    argv += ["--families", "pixel", "--budgets", "3", "--regime", "frozen", "--sources", "2", "--frames", "3"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err  # a log gets whole lines, not a line rewritten in place
    assert captured.err.splitlines()[-1].startswith("2/2 cases")
    assert (tmp_path / "run" / "report.md").is_file() and "report.md" in captured.out


def test_ray_is_not_imported_unless_asked_for_and_a_missing_ray_says_how_to_install_it(tmp_path, capsys):
    import subprocess
    import sys

    code = "import sys, morphlib.cli, morphlib.evaluate, morphlib.executors; print('ray' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )

    from morphlib.cli import main

    saved = sys.modules.get("ray")
    sys.modules["ray"] = None  # what Python does for a package that is not installed: import fails
    try:
        argv = ["evaluate", "--dataset", "digits", "--model", "digits-cnn", "--out", str(tmp_path)]
        assert main([*argv, "--executor", "ray"]) == 2
    finally:
        if saved is None:
            del sys.modules["ray"]
        else:
            sys.modules["ray"] = saved
    assert "pip install 'morphlib[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "results.jsonl").exists()
