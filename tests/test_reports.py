"""A committed report is reproducible: its first sources, run again now, give the rows it holds."""

import json
from pathlib import Path

import pytest

from morphlib.evaluate import EvalConfig, evaluate

REPORT = Path(__file__).resolve().parent.parent / "reports" / "digits"
SOURCES = 2
#: Frames and probabilities to float rounding.
TOLERANCE = {"l2": 1e-4, "p_target": 1e-4, "p_target_start": 1e-4, "p_source": 1e-4}
#: E is a non-convex fit: rounding of a batch that differs from the committed run's moves some cases
#: far (0|8|fourier-phase|2|persistent: committed 0.628, 0.764 from the code before and after the
#: one-engine change alike), so E is checked over the cases: 90 % within 0.02.
E_CLOSE, E_SHARE = 0.02, 0.9


def test_reports_digits_rows_are_reproduced(tmp_path):
    saved = json.loads((REPORT / "config.json").read_text())
    config = EvalConfig(
        **dict(
            saved,
            judges=tuple(saved["judges"]),
            families=tuple(saved["families"]),
            budgets=tuple(saved["budgets"]),
            regimes=tuple(saved["regimes"]),
            sources=SOURCES,
        )
    )
    rows = {r["key"]: r for r in evaluate(config, tmp_path / "run")}
    committed = {}
    with (REPORT / "results.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            if row["key"] in rows:
                committed[row["key"]] = row
    assert len(rows) == SOURCES * 4 * 3 * 2 and committed.keys() == rows.keys()
    for key, row in rows.items():
        old = committed[key]
        assert (row["source"], row["target"], row["top1"], row["judges"]) == (
            old["source"],
            old["target"],
            old["top1"],
            old["judges"],
        ), key
        assert ("unreachable" in row) == ("unreachable" in old), key
        for field, tol in TOLERANCE.items():
            if field in old:
                assert row[field] == pytest.approx(old[field], abs=tol), (key, field)
    for field in ("e_warp", "e_warp_gain"):
        pairs = [(rows[k][field], committed[k][field]) for k in rows if field in committed[k]]
        close = sum(abs(a - b) <= E_CLOSE for a, b in pairs)
        assert close >= E_SHARE * len(pairs), (field, close, len(pairs))
