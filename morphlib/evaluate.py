"""The comparison of edit families at matched L2 budgets (METHOD.md §7).

For every (source image, target, family, budget, regime) a morph is run with the
driver model; its last frame is scored by the driver (target probability), by the
judges (top-1 equals the target?) and by the warp-explained energy (warp only, and
warp plus gain).  Each finished case is appended as one JSON line to
``results.jsonl``, flushed to disk, so an interrupted run loses at most the case in
progress and a rerun skips what is done.  A budget that an edit family cannot reach
(phase edits saturate) is recorded as such, with the saturation level, and counted in
the report rather than stopping the run.  :func:`write_report` turns the rows into
``results.csv``, ``report.md`` and figures.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .data import load as load_data
from .executors import Chunk, RayExecutor, SerialExecutor, WorkerSetup
from .zoo import load as load_model

#: Published MNIST figures at L2 = 1 (Mahdisoltani et al., revision): median E, percent.
PUBLISHED_E = {
    "pixel": (38.2, 48.7),
    "fourier-phase": (32.4, 40.0),
    "csp-phase": (53.9, 71.5),
    "csp-joint": (50.7, 70.4),
}
#: What differs from the published MNIST setting, per data set (stated in the report).
DATASET_NOTES = {
    "digits": (
        "The published figures are for MNIST (28x28 grayscale, 70k images). Here the digits are "
        "scikit-learn's 1,797 handwritten digits, 8x8 pixels, upsampled to 32x32 and repeated over "
        "three channels, so (a) they are smoother than MNIST, which favours warp-like explanations "
        "for every family, and (b) an L2 budget is spread over 3x32x32 values: L2 = 2 here is the "
        "same RMS change as L2 = 1 on MNIST, L2 = 4 as L2 = 2. The driver and judges are this "
        "project's small bundled models (named above), not the published ones."
    ),
    "orientation": (
        "A synthetic set (windowed gratings at four orientations, 64x64 RGB) whose class is an "
        "orientation, so a successful edit must rotate structure; there is no published figure for it."
    ),
    "shapes": (
        "A synthetic set (filled shapes on textured backgrounds, 64x64 RGB); there is no published "
        "figure for it."
    ),
}
EXAMPLE_SOURCES = 4  # sources whose last frames are kept for the example grid
DEFAULT_BATCH = 8  # sources morphed together


@dataclass(frozen=True)
class EvalConfig:
    """Everything that decides the numbers of a run (stored in ``config.json``)."""

    dataset: str
    model: str
    judges: tuple[str, ...]
    families: tuple[str, ...]
    budgets: tuple[float, ...]
    regimes: tuple[str, ...]
    sources: int
    frames: int = 8
    seed: int = 0

    def fingerprint(self) -> dict:
        """The settings a resumed run must share (the case lists may grow)."""
        return dict(
            dataset=self.dataset,
            model=self.model,
            judges=list(self.judges),
            frames=self.frames,
            seed=self.seed,
        )


@dataclass(frozen=True)
class Case:
    source: int  # index into the test split
    label: int  # the source image's true class
    target: int
    family: str
    budget: float
    regime: str

    @property
    def key(self) -> str:
        return f"{self.source}|{self.target}|{self.family}|{self.budget:g}|{self.regime}"


def choose_sources(config: EvalConfig, model, images, labels) -> list[tuple[int, int, int]]:
    """``(index, label, target)`` for the first ``config.sources`` test images the driver gets right.

    Each target is a seeded random class other than the label.
    """
    with torch.no_grad():
        predicted = torch.cat([model(chunk).argmax(-1) for chunk in images.split(256)])
    correct = (predicted == labels).nonzero().flatten().tolist()
    if len(correct) < config.sources:
        raise ValueError(
            f"only {len(correct)} test images of {config.dataset!r} are classified correctly by "
            f"{config.model!r}; ask for at most that many --sources"
        )
    rng = np.random.default_rng(config.seed)
    n_classes = len(model.labels)
    chosen = []
    for index in correct[: config.sources]:
        label = int(labels[index])
        target = int(rng.integers(0, n_classes - 1))
        chosen.append((index, label, target + (target >= label)))
    return chosen


def plan(config: EvalConfig, sources: Sequence[tuple[int, int, int]]) -> list[Case]:
    return [
        Case(index, label, target, family, float(budget), regime)
        for regime in config.regimes
        for budget in config.budgets
        for family in config.families
        for index, label, target in sources
    ]


def read_rows(path: Path) -> list[dict]:
    """Rows of a results file; a line cut short by an interruption is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _open_for_append(path: Path):
    """Open the results file for appending, first ending a line cut short by an interruption."""
    if path.exists() and path.stat().st_size:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        if cut:
            with path.open("a") as f:
                f.write("\n")
    return path.open("a")


def evaluate(
    config: EvalConfig,
    out: str | Path,
    progress: Callable[[int, int, float], None] | None = None,
    executor: SerialExecutor | RayExecutor | None = None,
    batch: int = DEFAULT_BATCH,
) -> list[dict]:
    """Run (or resume) an evaluation into ``out`` and write its report; return the rows in plan order.

    ``batch`` sources are morphed together (one chunk); ``executor`` runs the chunks (by
    default here, one after another; a :class:`~morphlib.executors.RayExecutor` on a
    cluster).  Only this process writes ``results.jsonl``, a chunk at a time as chunks
    finish, so an interrupted run resumes from the file whatever ran it.
    ``progress(done, total, eta_seconds)`` is called after every chunk, with counts of cases.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "config.json"
    if config_path.exists():
        stored = json.loads(config_path.read_text())
        if {k: stored.get(k) for k in config.fingerprint()} != config.fingerprint():
            raise ValueError(
                f"{out} holds a run with other settings ({config_path}); use a new --out directory"
            )
    config_path.write_text(json.dumps(asdict(config), indent=2))

    model = load_model(config.model)
    judges = [load_model(j) for j in config.judges]
    for m in (model, *judges):
        if m.entry.dataset != config.dataset:
            raise ValueError(
                f"model {m.entry.id!r} was trained on {m.entry.dataset!r}, not {config.dataset!r}"
            )
    images, labels, _ = load_data(config.dataset, split="test", seed=config.seed)
    sources = choose_sources(config, model, images, labels)
    examples = {index for index, _, _ in sources[:EXAMPLE_SOURCES]}
    cases = plan(config, sources)

    results_path = out / "results.jsonl"
    done = {row["key"] for row in read_rows(results_path)}
    todo: dict[int, list[Case]] = {}
    for case in cases:
        if case.key not in done:
            todo.setdefault(case.source, []).append(case)
    pending = [(source, images[source], source_cases) for source, source_cases in todo.items()]
    chunks = [
        Chunk(part, frozenset(source for source, _, _ in part if source in examples))
        for part in (pending[i : i + batch] for i in range(0, len(pending), batch))
    ]
    executor = executor or SerialExecutor()
    setup = WorkerSetup(config.model, config.judges, config.frames)
    total = sum(chunk.cases for chunk in chunks)
    ran, start = 0, time.perf_counter()
    with (
        _open_for_append(results_path) as results,
        closing(executor.map(setup, chunks, (model, judges))) as ran_chunks,
    ):
        for result in ran_chunks:
            _save_examples(result.examples, out / "examples")  # before its rows: a rerun skips done rows
            results.write("".join(json.dumps(row) + "\n" for row in result.rows))
            results.flush()
            os.fsync(results.fileno())
            ran += len(result.rows)
            if progress is not None:
                eta = (time.perf_counter() - start) / ran * (total - ran)
                progress(len(cases) - total + ran, len(cases), eta)

    order = {c.key: i for i, c in enumerate(cases)}
    rows = sorted(
        (row for row in read_rows(results_path) if row["key"] in order), key=lambda r: order[r["key"]]
    )
    write_report(rows, config, out)  # in plan order, so the report does not depend on what ran it
    return rows


def _save_examples(examples: dict[str, np.ndarray], folder: Path) -> None:
    if not examples:
        return
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name, pixels in examples.items():
        Image.fromarray(pixels).save(folder / name)


# ---------------------------------------------------------------------- report
def bootstrap_median(values: Sequence[float], reps: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Median and its 95 % percentile-bootstrap interval."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(v, size=(reps, v.size), replace=True), axis=1)
    return float(np.median(v)), float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def summarise(rows: Sequence[dict], config: EvalConfig) -> list[dict]:
    """One line per (regime, budget, family): medians with intervals, transfer counts."""
    lines = []
    for regime in config.regimes:
        for budget in config.budgets:
            for family in config.families:
                cases = [
                    r
                    for r in rows
                    if r["regime"] == regime and r["family"] == family and math.isclose(r["budget"], budget)
                ]
                group = [r for r in cases if "unreachable" not in r]
                if not cases:
                    continue
                lines.append(
                    dict(
                        regime=regime,
                        budget=budget,
                        family=family,
                        n=len(group),
                        unreachable=len(cases) - len(group),
                        p_target=bootstrap_median([r["p_target"] for r in group]),
                        success=sum(r["top1"] == r["target"] for r in group),
                        transfer={
                            j: sum(r["judges"][j] == r["target"] for r in group) for j in config.judges
                        },
                        e_warp=bootstrap_median([r["e_warp"] for r in group]),
                        e_warp_gain=bootstrap_median([r["e_warp_gain"] for r in group]),
                        l2=float(np.median([r["l2"] for r in group])) if group else math.nan,
                    )
                )
    return lines


def _fmt(stat: tuple[float, float, float], scale: float = 1.0, digits: int = 1) -> str:
    if math.isnan(stat[0]):
        return "-"
    m, lo, hi = (s * scale for s in stat)
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def write_report(rows: Sequence[dict], config: EvalConfig, out: Path) -> Path:
    """``results.csv``, ``summary.json``, ``report.md`` and PNG figures in ``out``."""
    out = Path(out)
    keys = list(dict.fromkeys(k for row in rows for k in row if k != "judges"))
    fields = keys + [f"judge:{j}" for j in config.judges]
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            flat = {k: v for k, v in row.items() if k != "judges"}
            flat.update({f"judge:{j}": row["judges"][j] for j in config.judges if "judges" in row})
            writer.writerow(flat)
    summary = summarise(rows, config)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    figures = _figures(summary, config, out)

    judges = ", ".join(f"`{j}`" for j in config.judges) or "none"
    md = [
        f"# Edit families on `{config.dataset}`",
        "",
        f"Driver `{config.model}`; judges {judges}; {config.sources} test sources the driver "
        f"classifies correctly, one seeded random target each; {config.frames} frames per morph; "
        f"budgets are L2 distances of the last frame from the source (clipped to [0, 1], all "
        f"channels). Medians with 95 % bootstrap intervals over sources. Raw rows: `results.csv`.",
        "",
        "A case whose budget the family cannot reach (phase-only edits saturate) is counted under "
        "*not reached* and left out of the medians; `n` counts the cases that reached it.",
        "",
        "| regime | budget | family | n | not reached | median p(target) | top-1 = target "
        "| judges: top-1 = target | E warp % | E warp+gain % | median L2 |",
        "|---|---:|---|---:|---:|---|---:|---|---|---|---:|",
    ]
    for s in summary:
        transfer = ", ".join(f"{v}/{s['n']}" for v in s["transfer"].values()) or "-"
        md.append(
            f"| {s['regime']} | {s['budget']:g} | {s['family']} | {s['n']} | {s['unreachable']} "
            f"| {_fmt(s['p_target'], digits=3)} "
            f"| {s['success']}/{s['n']} | {transfer} | {_fmt(s['e_warp'], 100)} "
            f"| {_fmt(s['e_warp_gain'], 100)} | {s['l2']:.3f} |"
        )
    md += [
        "",
        "## Published figures (MNIST, L2 = 1, persistent regime)",
        "",
        "| family | E warp % | E warp+gain % |",
        "|---|---:|---:|",
    ]
    md += [f"| {fam} | {w} | {g} |" for fam, (w, g) in PUBLISHED_E.items()]
    md += ["", "## How this compares", "", DATASET_NOTES.get(config.dataset, ""), ""]
    published = sorted(PUBLISHED_E, key=lambda f: -PUBLISHED_E[f][0])
    md.append(f"Published ordering of median E (warp only): {' > '.join(published)}.")
    for regime in config.regimes:
        for budget in config.budgets:
            lines = {
                s["family"]: s["e_warp"][0]
                for s in summary
                if s["regime"] == regime and s["budget"] == budget and not math.isnan(s["e_warp"][0])
            }
            if lines:
                order = " > ".join(
                    f"{f} ({100 * e:.1f} %)" for f, e in sorted(lines.items(), key=lambda kv: -kv[1])
                )
                md.append(f"- here, {regime}, L2 = {budget:g}: {order}")
    md += ["", "## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures]
    (out / "report.md").write_text("\n".join(md) + "\n")
    return out / "report.md"


def _figures(summary: Sequence[dict], config: EvalConfig, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for regime in config.regimes:
        lines = [s for s in summary if s["regime"] == regime]
        if not lines:
            continue
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        for ax, key, title in zip(
            axes,
            ["e_warp", "e_warp_gain", "p_target"],
            ["E, warp", "E, warp + gain", "p(target)"],
            strict=True,
        ):
            width = 0.8 / max(len(config.budgets), 1)
            for b, budget in enumerate(config.budgets):
                vals = [
                    next((s for s in lines if s["family"] == f and s["budget"] == budget), None)
                    for f in config.families
                ]
                xs = np.arange(len(config.families)) + b * width
                med = [v[key][0] if v else np.nan for v in vals]
                err = [
                    [v[key][0] - v[key][1] if v else 0 for v in vals],
                    [v[key][2] - v[key][0] if v else 0 for v in vals],
                ]
                ax.bar(xs, med, width, yerr=err, capsize=3, label=f"L2 = {budget:g}")
            ax.set_xticks(np.arange(len(config.families)) + width * (len(config.budgets) - 1) / 2)
            ax.set_xticklabels(config.families, rotation=20)
            ax.set_title(title)
            ax.set_ylim(0, 1)
        axes[0].legend()
        fig.suptitle(f"{config.dataset}: {regime} regime (medians, 95 % bootstrap intervals)")
        fig.tight_layout()
        path = out / f"families_{regime}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    grid = _example_grid(config, out)
    return paths + ([grid] if grid else [])


def _example_grid(config: EvalConfig, out: Path) -> Path | None:
    """Source images beside their last frames, one column per family, at the largest budget."""
    from PIL import Image, ImageDraw

    example_dir = out / "examples"
    if not example_dir.exists():
        return None
    images, _, _ = load_data(config.dataset, split="test", seed=config.seed)
    budget, regime = max(config.budgets), config.regimes[0]
    rows = {}
    for path in sorted(example_dir.glob("*.png")):
        source, target, family, b, reg = path.stem.split("_", 4)
        if reg == regime and math.isclose(float(b), budget):
            rows.setdefault(int(source), {})[family] = Image.open(path).convert("RGB")
    if not rows:
        return None
    side = 96
    header = 18
    sheet = Image.new("RGB", (side * (1 + len(config.families)), header + side * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(["source", *config.families]):
        draw.text((c * side + 4, 3), name, fill="black")
    for r, (source, by_family) in enumerate(sorted(rows.items())):
        src = (images[source].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        tiles = [Image.fromarray(src)] + [by_family.get(f) for f in config.families]
        for c, tile in enumerate(tiles):
            if tile is not None:
                sheet.paste(tile.resize((side, side), Image.NEAREST), (c * side, header + r * side))
    path = out / f"examples_{regime}_l2_{budget:g}.png"
    sheet.save(path)
    return path
