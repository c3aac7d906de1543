"""The study's report: tables per data set, the defaults' line, and grids of frames."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from morphlib.data import CHANNELS
from morphlib.data import load as load_data
from morphlib.engine.auto import STEPS
from morphlib.stats import rate, wilson
from morphlib.store import RunStore

from .outcomes import Line, find, outcome, paired, pick, pixel_line, summarise
from .plan import (
    DEFAULT_MODELS,
    EXAMPLES,
    GOOD_FLIP_RATE,
    MAX_CHROMA,
    StudyConfig,
    config_from,
    frames_path,
    recommended_goal,
    recommended_setting,
    relation,
)
from .walk import warp_medians, with_reads

# -- the report ---------------------------------------------------------------------------------


def stored_configs(out: Path) -> list[StudyConfig]:
    """The study configurations under ``out``, in :data:`DEFAULT_MODELS` order."""
    configs = {}
    for path in out.glob("config_*.json"):
        config = config_from(json.loads(path.read_text()))
        configs[config.dataset] = config
    order = list(DEFAULT_MODELS)
    return [configs[d] for d in sorted(configs, key=lambda d: order.index(d) if d in order else len(order))]


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.0f} %" if n else "–"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _rules_table(lines: Sequence[Line], config: StudyConfig) -> list[str]:
    head = ["driver", "setting", "stop", "driver flips", "judge majority (CI)", "majority reads source"]
    head += [f"{j}" for j in config.judges] + ["median stop RMS", "fade", "chroma"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for x in lines:
        lo, hi = wilson(x.majority, x.pairs)
        cells = [
            f"`{x.driver}`",
            x.setting,
            x.rule,
            f"{x.flips}/{x.pairs} ({_pct(x.flips, x.pairs)})",
            f"{x.majority}/{x.pairs} ({_pct(x.majority, x.pairs)}, {100 * lo:.0f}–{100 * hi:.0f})",
            _pct(x.majority_source, x.pairs),
            *[_pct(x.judges[j], x.pairs) for j in config.judges],
            _num(x.rms),
            _num(x.fade, 2),
            _num(x.chroma, 2),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _judges_table(line: Line, config: StudyConfig) -> list[str]:
    out = ["| judge | counted | reads the target (95 % CI) |", "|---|---|---|"]
    for j in (*config.judges, *config.shown):
        kinds = sorted({relation(d, j) for d in config.drivers} - {"independent"})
        kind = "yes" if j in config.judges else f"no: {' / '.join(kinds) or 'shown'} of a driver"
        out.append(f"| `{j}` | {kind} | {rate(line.judges[j], line.pairs)} |")
    out.append(f"| majority of the counted | – | {rate(line.majority, line.pairs)} |")
    return out


def write_report(out: Path) -> Path:
    """``report.md``, ``results.csv`` and the grids, from the rows and warp fits under ``out``."""
    rows_all = RunStore(out, rows="rows.jsonl").rows()
    configs = stored_configs(out)
    text = [
        "# What makes a morph good: drivers, settings and stopping rules",
        "",
        "Written by `python -m morphlib study`; every number is computed from `rows.jsonl`.",
        f"Each pair's path is walked to the search cap in {STEPS} equal L2 steps and every frame is",
        "scored; each stopping rule (`morphlib.stopping.Goal`) is applied to that one path. Rates are",
        "over **all** pairs, with Wilson 95 % intervals. The (driver, setting, rule) is picked on the",
        "**selection** pairs (most judge-majority reads among those flipping the driver on "
        f">= {100 * GOOD_FLIP_RATE:.0f} % with a median chroma share <= {100 * MAX_CHROMA:.0f} %)",
        "and reported on the **held-out report** pairs, other source images from the same test split.",
        "Counted judges are independent of every driver (`morphlib.zoo.judges`: another architecture",
        "and another view of the data); siblings and same-view judges are shown, never counted.",
        "*chroma*: share of the change's energy in YIQ chroma; *fade*: loss of",
        "RMS contrast.",
        "",
    ]
    csv_rows = []
    for config in configs:
        rows = with_reads(out, config.dataset, [r for r in rows_all if r["dataset"] == config.dataset])
        if not rows:
            continue
        lines = summarise(rows, config)
        text += [
            f"## {config.dataset}",
            "",
            f"Drivers {', '.join(f'`{d}`' for d in config.drivers)}; counted judges "
            f"{', '.join(f'`{j}`' for j in config.judges)}; "
            f"shown {', '.join(f'`{j}`' for j in config.shown)}. "
            f"{config.select} selection and {config.report} report pairs (seed {config.seed}), "
            f"cap RMS {config.max_rms:g}. Made by `python -m morphlib study --datasets {config.dataset} "
            f"--select {config.select} --report {config.report} --max-rms {config.max_rms:g} "
            f"--seed {config.seed} "
            f"--drivers {','.join(config.drivers)}`.",
            "",
        ]
        best = pick(lines)
        if best is None:
            text += [
                f"No (driver, setting, rule) flips {100 * GOOD_FLIP_RATE:.0f} % of the selection pairs.",
                "",
            ]
        else:
            held = find(lines, best.driver, best.setting, best.rule, "report")
            assert held is not None
            text += [
                f"**Picked on the selection pairs:** `{best.driver}`, {best.setting}, stop at {best.rule} "
                f"(selection: flips {rate(best.flips, best.pairs)}, "
                f"judge majority {rate(best.majority, best.pairs)}).",
                "",
                f"**Held out, on the report pairs:** flips {rate(held.flips, held.pairs)}, "
                f"judge majority {rate(held.majority, held.pairs)}.",
                "",
                *_judges_table(held, config),
                "",
            ]
            peer = pixel_line(lines, rows, held)
            if peer is not None:
                a, b, p = paired(held, peer)
                text += [
                    f"Against pixel edits on the same path and stop ({peer.setting}, {best.rule}), "
                    "paired over "
                    f"the {held.pairs} report pairs: majority reads {held.majority} vs {peer.majority}; "
                    f"{a} pairs only the pick convinces, {b} only pixel edits; exact McNemar p = {p:.3g}.",
                    "",
                ]
            for line in [held] + ([] if peer is None else [peer]):
                energy = warp_medians(out, config.dataset, line, rows)
                if energy is not None:
                    text.append(
                        f"- {line.setting}: median E warp {100 * energy[0]:.0f} %, warp + gain "
                        f"{100 * energy[1]:.0f} % (report pairs, at the stop)."
                    )
            text += [
                "",
                "Every rule, for the picked driver and setting, on the report pairs:",
                "",
                *_rules_table(
                    [
                        x
                        for x in lines
                        if (x.driver, x.setting, x.split) == (best.driver, best.setting, "report")
                    ],
                    config,
                ),
                "",
                f"Every driver and setting at the picked rule ({best.rule}), and at the cap, "
                "on the report pairs:",
                "",
                *_rules_table(
                    [x for x in lines if x.split == "report" and x.rule in (best.rule, "cap")],
                    config,
                ),
                "",
            ]
        text += _default_here(config, lines, rows)
        text += [
            "Every (driver, setting, rule) on the selection pairs:",
            "",
            *_rules_table([x for x in lines if x.split == "select"], config),
            "",
        ]
        grid = _grid(config, out, rows, best)
        if grid is not None:
            text += [f"![stop and cap frames, {config.dataset}]({grid.name})", ""]
        for x in lines:
            csv_rows.append(
                dict(
                    dataset=config.dataset,
                    driver=x.driver,
                    setting=x.setting,
                    rule=x.rule,
                    split=x.split,
                    pairs=x.pairs,
                    flips=x.flips,
                    majority=x.majority,
                    majority_source=x.majority_source,
                    **{f"judge:{j}": v for j, v in x.judges.items()},
                    rms=x.rms,
                    fade=x.fade,
                    chroma=x.chroma,
                )
            )
    with (out / "results.csv").open("w", newline="") as f:
        if csv_rows:
            writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in csv_rows for k in r)))
            writer.writeheader()
            writer.writerows(csv_rows)
    report = out / "report.md"
    report.write_text("\n".join(text))
    return report


def _default_here(config: StudyConfig, lines: Sequence[Line], rows: Sequence[dict]) -> list[str]:
    """How the app's and the CLI's defaults (the first driver, :data:`~morphlib.config.RECOMMENDED`,
    :data:`~morphlib.config.RECOMMENDED_STRENGTH`) do on the report pairs, beside pixel edits."""
    setting, rule = recommended_setting(CHANNELS[config.dataset]).name, recommended_goal()
    line = find(lines, config.drivers[0], setting, rule, "report")
    if line is None:
        return []
    text = [
        f"**The defaults here** (`{config.drivers[0]}`, {setting}, stop at {rule}), on the report pairs: "
        f"flips {rate(line.flips, line.pairs)}, judge majority {rate(line.majority, line.pairs)}, "
        f"median stop RMS {_num(line.rms)}, fade {_num(line.fade, 2)}, chroma share {_num(line.chroma, 2)}.",
    ]
    peer = pixel_line(lines, rows, line)
    if peer is not None:
        a, b, p = paired(line, peer)
        text.append(
            f"Pixel edits on the same path and stop: judge majority {rate(peer.majority, peer.pairs)}; "
            f"{a} pairs only the default convinces, {b} only pixel edits (exact McNemar p = {p:.3g})."
        )
    return [*text, ""]


def _grid(config: StudyConfig, out: Path, rows: Sequence[dict], best: Line | None) -> Path | None:
    """Report pairs' sources, then per (driver, setting) the frame at the picked stop and at the cap."""
    rule = best.rule if best is not None else "top-1"
    first = [r for r in rows if r["split"] == "report"]
    combos = list(dict.fromkeys((r["driver"], r["setting"]) for r in first))
    indices = list(dict.fromkeys(r["index"] for r in first))[:EXAMPLES]
    if not combos or not indices:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images, _, names = load_data(config.dataset, "test", seed=0)
    by_key = {(r["driver"], r["setting"], r["index"]): r for r in first}
    panels = [(d, s, which) for d, s in combos for which in (rule, "cap")]
    fig, axes = plt.subplots(
        len(panels) + 1,
        len(indices),
        figsize=(1.2 * len(indices) + 3.2, 1.2 * (len(panels) + 1)),
        squeeze=False,
    )

    def show(ax, image: torch.Tensor, title: str) -> None:
        picture = (
            (image.float() / (255 if image.dtype == torch.uint8 else 1)).clamp(0, 1).permute(1, 2, 0).numpy()
        )
        ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=6)

    for c, index in enumerate(indices):
        row = by_key.get((combos[0][0], combos[0][1], index))
        title = "" if row is None else f"{names[row['label']]} → {names[row['target']]}"
        show(axes[0, c], images[index], title)
    axes[0, 0].set_ylabel("source", fontsize=6, rotation=0, ha="right", va="center")
    for r, (driver, setting, which) in enumerate(panels, start=1):
        path = frames_path(out, config.dataset, driver, setting)
        frames = torch.load(path) if path.exists() else {}
        for c, index in enumerate(indices):
            row = by_key.get((driver, setting, index))
            if row is None or index not in frames:
                axes[r, c].axis("off")
                continue
            o = outcome(row, which, config.judges)
            votes = sum(o.reads[j] for j in config.judges)
            show(
                axes[r, c],
                frames[index][o.stop],
                f"{'flip' if o.flipped else 'no flip'}, {votes}/{len(config.judges)}",
            )
        axes[r, 0].set_ylabel(
            f"{driver}\n{setting}\n@ {which}", fontsize=6, rotation=0, ha="right", va="center"
        )
    fig.tight_layout()
    path = out / f"grid_{config.dataset}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
