"""The comparison of two ``morphlib evaluate --atlas`` runs, a standard driver's and a robust one's
(reports/atlas/README.md).

Usage: PYTHONPATH=. python scripts/atlas_compare.py STANDARD_DIR ROBUST_DIR [--out reports/atlas/README.md]
       PYTHONPATH=. python scripts/atlas_compare.py reports/atlas/mnist-cnn reports/atlas/mnist-cnn-robust

Each folder is one that ``morphlib evaluate --atlas`` wrote (``atlas.jsonl``, ``atlas_config.json``).
Every number in the README is computed from their rows with morphlib.atlas.survey: the sources per
class, the (source, class) walks that reach the class within the cap and their median distance
(``reach_summary``), each run's median distance per class pair (``pair_table``), the robust/standard
ratio per pair (``ratio_table``) with its median and range, and the closest class pairs
(``closest_pairs``). A run stopped short of the sources it asked for is compared on the sources it
has, and the README says so.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from morphlib import RECOMMENDED  # noqa: E402
from morphlib.atlas.survey import (  # noqa: E402
    ROWS,
    SETTINGS,
    closest_pairs,
    pair_table,
    ratio_table,
    reach_summary,
    table_markdown,
)
from morphlib.config import AUTO_MAX_RMS  # noqa: E402
from morphlib.engine.auto import STEPS  # noqa: E402
from morphlib.store import RunStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def load_run(folder: Path) -> tuple[dict, list[dict]]:
    """A run folder's settings (``atlas_config.json``) and rows (``atlas.jsonl``, each source once)."""
    settings = folder / SETTINGS
    if not settings.exists() or not (folder / ROWS).exists():
        raise SystemExit(f"{folder}: no {SETTINGS} and {ROWS} (not a `morphlib evaluate --atlas` folder)")
    rows = RunStore(folder, rows=ROWS, settings=SETTINGS).rows()
    if not rows:
        raise SystemExit(f"{folder}: {ROWS} holds no rows")
    return json.loads(settings.read_text()), rows


def class_labels(config: dict, *runs: list[dict]) -> list[str]:
    """The data set's class names in its own order; else every class the rows name, sorted."""
    from morphlib import data

    names = getattr(data, "LABEL_NAMES", {}).get(config["dataset"])
    if names:
        return [str(n) for n in names]
    seen = {row["label"] for rows in runs for row in rows} | {
        t for rows in runs for row in rows for t in row["distances"]
    }
    return sorted(seen, key=lambda s: (len(s), s))


def describe(model: str) -> str:
    """``, L2 PGD eps 1.5`` for a zoo model trained adversarially, else nothing."""
    try:
        from morphlib.zoo import entry_for

        entry = entry_for(model)
    except Exception:  # an id this checkout's zoo does not know: the name alone
        return ""
    if not entry.robust or entry.robust_eps is None:
        return ""
    return ", " + " ".join(
        filter(None, [(entry.robust_norm or "").upper(), "PGD eps", f"{entry.robust_eps:g}"])
    )


def command(config: dict, folder: Path) -> str:
    """The ``morphlib evaluate --atlas`` command line that makes (or resumes) the run."""
    args = f"--atlas --dataset {config['dataset']} --model {config['model']} --sources {config['sources']}"
    if config.get("seed", 0) != 0:
        args += f" --seed {config['seed']}"
    if config.get("regime", RECOMMENDED.regime) != RECOMMENDED.regime:
        args += f" --regime {config['regime']}"
    if not math.isclose(config.get("cap_rms", AUTO_MAX_RMS), AUTO_MAX_RMS):
        args += f" --cap-rms {config['cap_rms']:g}"
    return f"PYTHONPATH=. .venv/bin/python -m morphlib evaluate {args} --out {_shown(folder)}"


def _shown(path: Path) -> str:
    """The path relative to the repository root where it lies inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _one(values: set, what: str) -> Any:
    """The one value both runs share (else the script stops and says what differs)."""
    if len(values) != 1:
        raise SystemExit(f"the runs disagree on {what}: {sorted(values)}")
    return values.pop()


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f} %)" if n else "0/0"


def _closest(table: dict) -> str:
    return ", ".join(f"{s}→{t} {m:.2f}" for s, t, m in closest_pairs(table))


def compare(standard_dir: Path, robust_dir: Path, out: Path) -> str:
    """Write the comparison README to ``out`` and return its text."""
    std_config, std_rows = load_run(standard_dir)
    rob_config, rob_rows = load_run(robust_dir)
    for key in ("dataset", "family", "regime", "cap_rms", "seed"):
        _one({json.dumps(std_config.get(key)), json.dumps(rob_config.get(key))}, key)
    config = rob_config
    labels = class_labels(config, std_rows, rob_rows)
    cap_l2 = _one({round(row["cap_l2"], 6) for row in std_rows + rob_rows}, "the cap's L2 distance")
    values = round((cap_l2 / config["cap_rms"]) ** 2)
    side = math.isqrt(values)
    size = f"a {side}x{side} image" if side * side == values else f"an image of {values} values"
    rob_model, std_model = rob_config["model"], std_config["model"]

    tables = {"robust": pair_table(rob_rows, labels), "standard": pair_table(std_rows, labels)}
    medians = {name: {pair: m for pair, (m, _, _) in table.items()} for name, table in tables.items()}
    ratios = ratio_table(tables["robust"], tables["standard"])
    finite = sorted(r for r in ratios.values() if math.isfinite(r))
    rob_reached, rob_walks, rob_median = reach_summary(rob_rows, labels)
    std_reached, std_walks, std_median = reach_summary(std_rows, labels)
    rob_counts = Counter(row["label"] for row in rob_rows)
    std_counts = Counter(row["label"] for row in std_rows)
    per_class = {
        name: {label: counts[label] for label in labels if counts[label]}
        for name, counts in (("robust", rob_counts), ("standard", std_counts))
    }
    all_counts = [counts[label] for counts in (rob_counts, std_counts) for label in labels]
    shared = len({row["key"] for row in rob_rows} & {row["key"] for row in std_rows})

    recommended = (config["family"], config["regime"]) == (RECOMMENDED.family, RECOMMENDED.regime)
    path = f"{config['family']}, {config['regime']}, smoothing {RECOMMENDED.smooth_sigma:g}" + (
        ": `RECOMMENDED`" if recommended else ""
    )
    short = [
        f"{name} {len(rows)} of {cfg['sources']}"
        for name, cfg, rows in (("robust", rob_config, rob_rows), ("standard", std_config, std_rows))
        if len(rows) < cfg["sources"]
    ]
    if short:
        status = (
            f" The runs stopped short of the sources they asked for ({', '.join(short)}); rerunning the "
            "commands completes them and rewrites each folder's `atlas_report.md`, and rerunning this "
            "script the tables."
        )
    else:
        status = " Both runs are complete (all the sources they asked for)."
    same = (
        "the same sources for both drivers"
        if shared == len(rob_rows) == len(std_rows)
        else f"{shared} sources shared by the two drivers"
    )
    ratio_line = (
        f"* Per class pair (both medians finite, {len(finite)} pairs): median robust/standard ratio "
        f"{statistics.median(finite):.2f}, range {finite[0]:.2f}-{finite[-1]:.2f}."
        if finite
        else "* Per class pair: no pair has both medians finite."
    )

    md = [
        f"# Decision-boundary distances on {config['dataset'].upper()}: standard vs robust driver",
        "",
        "Made with `morphlib evaluate --atlas` (issue 24): for each of the first "
        f"{config['dataset'].upper()} test images each driver classifies correctly (seed {config['seed']}), "
        f"one atlas ({path}; top-1 goal; "
        f"cap RMS {config['cap_rms']:g} = L2 {cap_l2:.2f} on {size}; one step = L2 {cap_l2 / STEPS:.2f}): "
        "the L2 distance at which each other class first becomes the top-1 along its path. Commands "
        "(the runs resume from `atlas.jsonl`), then this README:",
        "",
        "```",
        command(rob_config, robust_dir),
        command(std_config, standard_dir),
        f"PYTHONPATH=. .venv/bin/python scripts/atlas_compare.py {_shown(standard_dir)} {_shown(robust_dir)}"
        + (f" --out {_shown(out)}" if out.resolve() != (ROOT / "reports/atlas/README.md") else ""),
        "```",
        "",
        f"**Sources in these tables: {len(rob_rows)} (robust) and {len(std_rows)} (standard)**, {same}."
        + status,
        f"Sources per class (robust): {per_class['robust']}; (standard): {per_class['standard']}. "
        f"With {min(all_counts)}-{max(all_counts)} sources per class a cell is a median of a handful of "
        "numbers: read the tables for their broad pattern, not single cells.",
        "",
        "## Overall",
        "",
        f"* Classes reached within the cap: robust {_pct(rob_reached, rob_walks)}, "
        f"standard {_pct(std_reached, std_walks)}.",
        f"* Median distance over every reached (source, class): robust {rob_median:.2f}, "
        f"standard {std_median:.2f} (ratio {rob_median / std_median:.2f}).",
        ratio_line,
        "",
        f"## Median distance, robust driver (`{rob_model}`{describe(rob_model)})",
        "",
        *table_markdown(medians["robust"], labels),
        "",
        f"Closest pairs: {_closest(tables['robust'])}",
        "",
        f"## Median distance, standard driver (`{std_model}`{describe(std_model)})",
        "",
        *table_markdown(medians["standard"], labels),
        "",
        f"Closest pairs: {_closest(tables['standard'])}",
        "",
        "## Robust / standard, per class pair",
        "",
        "How much farther the robust driver's boundary lies (`-`: a median is infinite or the class "
        "has no source).",
        "",
        *table_markdown(ratios, labels),
        "",
        "Each run folder holds its rows (`atlas.jsonl`), its settings (`atlas_config.json`) and, written "
        "when a run ends, its own `atlas_report.md` (with the counts of sources that reach each class) "
        f"and `atlas_pairs.json`. The distances are along the {config['regime']} path, an upper bound on the "
        "distance to the boundary (docs/atlas.md).",
        "",
    ]
    text = "\n".join(md)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("standard", type=Path, help="the standard driver's run folder")
    parser.add_argument("robust", type=Path, help="the robust driver's run folder")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "reports/atlas/README.md", help="the README to write"
    )
    args = parser.parse_args()
    compare(args.standard, args.robust, args.out)
    _, std_rows = load_run(args.standard)
    _, rob_rows = load_run(args.robust)
    print(f"sources: standard {len(std_rows)}, robust {len(rob_rows)}; wrote {args.out}")


if __name__ == "__main__":
    main()
