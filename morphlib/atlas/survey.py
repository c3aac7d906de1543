"""Atlases of many sources: each source's distance to every class, and the boundary distances per
class pair (``morphlib evaluate --atlas``).

:func:`survey` runs one :func:`~morphlib.atlas.atlas` per source (the first ``sources`` test
images the driver classifies correctly, as :func:`morphlib.evaluate.choose_sources` picks them;
:data:`BATCH` sources walked together) and appends one row per source to ``atlas.jsonl`` in a
:class:`~morphlib.store.RunStore` folder, so an interrupted run resumes.  :func:`pair_table` turns
the rows into a confusion-like
table: for source class ``s`` and class ``t``, the median L2 distance at which ``t`` becomes
the top-1 (a source that does not get there within the cap counts as infinitely far, so a
median is finite only when at least half of them do); :func:`ratio_table` divides two runs'
tables (e.g. a robust driver's by a standard one's).

Examples
--------
>>> rows = [{"label": "0", "distances": {"1": 2.0, "2": None}}, {"label": "0", "distances": {"1": 4.0}}]
>>> rows[1]["distances"]["2"] = 3.0
>>> table = pair_table(rows, ["0", "1", "2"])
>>> table[("0", "1")], table[("0", "2")]
((3.0, 2, 2), (inf, 1, 2))
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from morphlib.config import AUTO_MAX_RMS, RECOMMENDED

from .routes import atlases

#: Sources walked together (each with a row per class: 8 sources of 10 classes are 72 rows).
BATCH = 8
#: The run folder's files (beside an evaluation's, which they never share).
ROWS, SETTINGS, REPORT = "atlas.jsonl", "atlas_config.json", "atlas_report.md"

__all__ = [
    "REPORT",
    "ROWS",
    "SurveyConfig",
    "closest_pairs",
    "pair_table",
    "ratio_table",
    "reach_summary",
    "survey",
    "table_markdown",
]

#: ``(median distance, sources that reached the class, sources)`` per ``(source class, class)``.
PairTable = dict[tuple[str, str], tuple[float, int, int]]


@dataclass(frozen=True)
class SurveyConfig:
    """What decides a survey's numbers (stored in ``atlas_config.json``)."""

    dataset: str
    model: str
    sources: int
    seed: int = 0
    family: str = RECOMMENDED.family
    regime: str = RECOMMENDED.regime
    cap_rms: float = AUTO_MAX_RMS


def survey(
    config: SurveyConfig, out: str | Path, progress: Callable[[int, int], None] | None = None
) -> list[dict]:
    """Run (or resume) the atlases of ``config.sources`` sources into ``out``; write the report; return
    the rows (one per source: its index, label and distance to each class, ``None`` beyond the cap)."""
    from morphlib.evaluate import EvalConfig, choose_sources, source_images
    from morphlib.store import RunStore
    from morphlib.zoo import load

    out = Path(out)
    model = load(config.model)
    picking = EvalConfig(config.dataset, config.model, (), (), (), (), config.sources, seed=config.seed)
    images, labels = source_images(picking, model)
    sources = choose_sources(picking, model, images, labels)
    morph_config = RECOMMENDED.replace(family=config.family, regime=config.regime)
    with RunStore(out, rows=ROWS, settings=SETTINGS).open(asdict(config)) as store:
        todo = [(index, label) for index, label, _ in sources if str(index) not in store.done]
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            found = atlases(model, [images[i] for i, _ in chunk], config=morph_config, cap_rms=config.cap_rms)
            store.append(
                dict(
                    key=str(index),
                    index=index,
                    label=a.labels[label],
                    top1=a.labels[a.source],
                    cap_l2=a.cap,
                    distances={r.label: r.distance if r.reached else None for r in a.routes},
                    saturated=[r.label for r in a.routes if r.saturated],
                )
                for (index, label), a in zip(chunk, found, strict=True)
            )
            if progress is not None:
                progress(len(sources) - len(todo) + start + len(chunk), len(sources))
        keys = {str(index) for index, _, _ in sources}
        rows = [row for row in store.rows() if row["key"] in keys]
    class_labels = list(model.labels)
    (out / REPORT).write_text(report(rows, class_labels, config))
    (out / "atlas_pairs.json").write_text(
        json.dumps(
            [
                dict(source=s, target=t, median=None if math.isinf(m) else m, reached=k, n=n)
                for (s, t), (m, k, n) in pair_table(rows, class_labels).items()
            ],
            indent=2,
        )
    )
    return rows


def pair_table(rows: Sequence[dict], labels: Sequence[str]) -> PairTable:
    """``(source class, class) -> (median distance, reached, sources)`` over the rows of that source class."""
    table: PairTable = {}
    for s in labels:
        group = [row for row in rows if row["label"] == s]
        for t in labels:
            if t == s or not group:
                continue
            values = [row["distances"].get(t) for row in group]
            finite = [v for v in values if v is not None]
            median = statistics.median([math.inf if v is None else v for v in values])
            table[(s, t)] = (float(median), len(finite), len(values))
    return table


def ratio_table(numerator: PairTable, denominator: PairTable) -> dict[tuple[str, str], float]:
    """Per pair, ``numerator``'s median over ``denominator``'s (``nan`` where either is infinite)."""
    out = {}
    for pair, (top, _, _) in numerator.items():
        bottom = denominator.get(pair, (math.nan, 0, 0))[0]
        out[pair] = top / bottom if math.isfinite(top) and math.isfinite(bottom) and bottom > 0 else math.nan
    return out


def reach_summary(rows: Sequence[dict], labels: Sequence[str]) -> tuple[int, int, float]:
    """How many (source, class) walks reach the class within the cap, and how far they go.

    Parameters
    ----------
    rows : sequence of dict
        Survey rows (``atlas.jsonl``): each with its ``label`` and ``distances`` per class
        (``None``, or a class left out, where the cap came first).
    labels : sequence of str
        The classes; each row counts every one but its own.

    Returns
    -------
    reached : int
        The (source, class) walks that reach the class.
    walks : int
        All of them: the rows times the other classes.
    median : float
        The median distance over the reached ones (``nan`` if none is).

    Examples
    --------
    >>> reach_summary([{"label": "0", "distances": {"1": 2.0, "2": None}}], ["0", "1", "2"])
    (1, 2, 2.0)
    """
    values = [row["distances"].get(t) for row in rows for t in labels if t != row["label"]]
    reached = [v for v in values if v is not None]
    return len(reached), len(values), float(statistics.median(reached)) if reached else math.nan


def table_markdown(values: dict[tuple[str, str], float], labels: Sequence[str], digits: int = 2) -> list[str]:
    """A source-class × class Markdown table of ``values`` (``∞`` infinite, ``-`` missing)."""

    def cell(s: str, t: str) -> str:
        if s == t:
            return "·"
        v = values.get((s, t), math.nan)
        return "∞" if math.isinf(v) else "-" if math.isnan(v) else f"{v:.{digits}f}"

    lines = ["| source \\ class | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    lines += [f"| {s} | " + " | ".join(cell(s, t) for t in labels) + " |" for s in labels]
    return lines


def closest_pairs(table: PairTable, k: int = 10) -> list[tuple[str, str, float]]:
    """The ``k`` unordered class pairs whose boundary is nearest: the smaller median of the two ways."""
    best: dict[frozenset, tuple[str, str, float]] = {}
    for (s, t), (median, _, _) in table.items():
        key = frozenset((s, t))
        if key not in best or median < best[key][2]:
            best[key] = (s, t, median)
    return sorted(best.values(), key=lambda p: p[2])[:k]


def report(rows: Sequence[dict], labels: Sequence[str], config: SurveyConfig) -> str:
    """The survey's Markdown report: the median-distance table, the counts, the closest pairs."""
    table = pair_table(rows, labels)
    counts = {pair: f"{k}/{n}" for pair, (_, k, n) in table.items()}
    medians = {pair: m for pair, (m, _, _) in table.items()}
    md = [
        f"# Boundary distances of `{config.model}` on `{config.dataset}`",
        "",
        f"{len(rows)} test sources the driver classifies correctly (seed {config.seed}); one atlas each "
        f"({config.family}, {config.regime}, top-1 goal, cap RMS {config.cap_rms:g}). Median L2 distance "
        "from a source of the row's class to where the column's class becomes top-1; ∞: fewer than half "
        "of the sources get there within the cap.",
        "",
        *table_markdown(medians, labels),
        "",
        "Sources that reach the class within the cap:",
        "",
        *_counts_markdown(counts, labels),
        "",
        "Closest class pairs (the nearer of the two ways): "
        + ", ".join(f"{s}→{t} {m:.2f}" for s, t, m in closest_pairs(table)),
        "",
    ]
    return "\n".join(md)


def _counts_markdown(counts: dict[tuple[str, str], str], labels: Sequence[str]) -> list[str]:
    lines = ["| source \\ class | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    lines += [f"| {s} | " + " | ".join(counts.get((s, t), "·") for t in labels) + " |" for s in labels]
    return lines
