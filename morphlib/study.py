"""What makes a morph good: morph settings compared at one budget cap (docs/method.md §8).

For every setting (edit family, regime, pyramid bandwidth, phase cap, smoothing,
luma-only) and every (source, target) pair, :func:`~morphlib.morph` with an auto
:class:`~morphlib.config.Strength` walks the morph up to an RMS budget cap and stops where
the driver's top-1 becomes the target: the morph the app shows with auto strength.  Per setting:

* **flips**: how often the driver's top-1 becomes the target within the cap, and the
  median smallest flipping budget (RMS per value);
* **transfer**: for each judge, the fraction of flips whose last frame it reads as the
  target (a semantic morph convinces classifiers it was not computed from; an
  adversarial one does not);
* **E**: warp-explained energy of the last frame, warp only and warp + gain;
* **fade**: the loss of RMS contrast of the last frame, ``max(0, 1 − σ(x_K)/σ(x_0))``
  (0 for moved structure, 1 for an image dissolved into its mean).

Each finished pair is one line of ``rows.jsonl`` (a rerun skips what is done);
:func:`write_report` writes ``report.md``, ``results.csv`` and a grid of last frames
per data set.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .config import AUTO_MAX_RMS, RECOMMENDED, RECOMMENDED_STRENGTH, MorphConfig, Strength
from .data import CHANNELS
from .data import load as load_data
from .engine import morph
from .evaluate import EvalConfig, choose_sources, read_rows
from .metrics import fit_warp, transfer
from .store import RunStore
from .zoo import load as load_model

#: Budget cap of the study: auto strength's default, RMS change per value.
STUDY_MAX_RMS = AUTO_MAX_RMS
#: Flip rate a setting needs before its transfer counts (the issue's goal for the app).
GOOD_FLIP_RATE = 0.9
#: The stop-at-confidence goal of the variants named "to p 0.9".
CONFIDENT = 0.9
EXAMPLES = 6  # (source, target) pairs shown in the grid of last frames
PI = math.pi


@dataclass(frozen=True)
class Setting:
    """One way of morphing: a :class:`~morphlib.config.MorphConfig` and the goal of its auto strength."""

    family: str
    regime: str
    bandwidth: str = "octave"
    phase_cap: float | None = None
    smooth_sigma: float | None = None
    luma_only: bool = False
    min_prob: float | None = None  # auto strength's goal: None for top-1, else p(target) >= min_prob

    @property
    def name(self) -> str:
        parts = [self.family, self.regime]
        if self.bandwidth != "octave":
            parts.append(self.bandwidth)
        if self.phase_cap is not None:
            parts.append(f"cap {self.phase_cap / PI:.2g}π")
        if self.smooth_sigma is not None:
            parts.append(f"smooth {self.smooth_sigma:g}")
        if self.luma_only:
            parts.append("luma")
        if self.min_prob is not None:
            parts.append(f"to p {self.min_prob:g}")
        return " ".join(parts)

    def config(self) -> MorphConfig:
        return MorphConfig(
            family=self.family,
            regime=self.regime,
            luma_only=self.luma_only,
            phase_cap=self.phase_cap,
            smooth_sigma=self.smooth_sigma,
            pyramid={"bandwidth": self.bandwidth},
        )

    def strength(self, max_rms: float) -> Strength:
        return Strength.auto(goal=self.min_prob, cap_rms=max_rms)


def default_settings(channels: int) -> list[Setting]:
    """The settings compared: families × regimes, then each control varied on its own.

    The controls are varied around the paper's csp-phase/frozen and around the iterative
    csp-joint paths (the ones that can draw new strokes); luma-only only for colour data.
    """
    base = [
        Setting("pixel", "frozen"),
        Setting("pixel", "persistent"),
        Setting("fourier-phase", "frozen"),
        Setting("csp-phase", "frozen"),
        Setting("csp-phase", "persistent"),
        Setting("csp-phase", "step-local"),
        Setting("csp-joint", "frozen"),
        Setting("csp-joint", "persistent"),
        Setting("csp-joint", "step-local"),
    ]
    controls = []
    for family, regime in (("csp-phase", "frozen"), ("csp-joint", "step-local")):
        controls += [
            Setting(family, regime, bandwidth="half-octave"),
            Setting(family, regime, bandwidth="quarter-octave"),
            Setting(family, regime, phase_cap=PI / 4),
            Setting(family, regime, phase_cap=PI / 2),
            Setting(family, regime, smooth_sigma=1.0),
        ]
    # Stopping where the driver is confident rather than at the first flip: judges lag the driver.
    controls += [
        Setting(family, regime, min_prob=CONFIDENT)
        for family, regime in (
            ("pixel", "persistent"),
            ("pixel", "step-local"),
            ("csp-phase", "step-local"),
            ("csp-joint", "persistent"),
            ("csp-joint", "step-local"),
        )
    ]
    controls += [
        Setting("csp-joint", "step-local", bandwidth="half-octave", min_prob=CONFIDENT),
        Setting("csp-joint", "step-local", smooth_sigma=1.0, min_prob=CONFIDENT),
        Setting("csp-joint", "step-local", bandwidth="half-octave", smooth_sigma=1.0, min_prob=CONFIDENT),
    ]
    if channels == 3:
        controls += [
            Setting("pixel", "persistent", luma_only=True),
            Setting("csp-joint", "step-local", luma_only=True),
        ]
    return base + controls


@dataclass(frozen=True)
class StudyConfig:
    """Everything that decides the numbers of a study on one data set."""

    dataset: str
    model: str
    judges: tuple[str, ...]
    sources: int
    max_rms: float = STUDY_MAX_RMS
    frames: int = 8
    seed: int = 0


def fade(source: torch.Tensor, edited: torch.Tensor) -> torch.Tensor:
    """Loss of RMS contrast per image, ``(B,)``: ``max(0, 1 − σ(edited)/σ(source))``.

    >>> x = torch.rand(1, 1, 16, 16)
    >>> round(float(fade(x, 0.5 + 0.25 * (x - 0.5))[0]), 3), float(fade(x, x.flip(-1))[0])
    (0.75, 0.0)
    """
    spread = lambda x: x.flatten(1).std(dim=1)  # noqa: E731
    return (1 - spread(edited) / spread(source).clamp_min(1e-12)).clamp_min(0.0)


def _key(dataset: str, setting: str, index: int, target: int) -> str:
    return f"{dataset}|{setting}|{index}|{target}"


def run_study(
    config: StudyConfig,
    out: Path,
    settings: Sequence[Setting] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Run (or resume) the study of ``config`` into ``out/rows.jsonl``; returns its rows."""

    def same(stored: dict) -> bool:  # more sources extend a study
        return (
            StudyConfig(**{**stored, "sources": config.sources, "judges": tuple(stored["judges"])}) == config
        )

    store = RunStore(out, rows="rows.jsonl", settings=f"config_{config.dataset}.json")
    with store.open(asdict(config), same):
        return _run_study(config, out, store, settings, progress)


def _run_study(
    config: StudyConfig,
    out: Path,
    store: RunStore,
    settings: Sequence[Setting] | None,
    progress: Callable[[int, int], None] | None,
) -> list[dict]:
    """:func:`run_study` with its folder held."""
    settings = list(settings or default_settings(CHANNELS[config.dataset]))
    driver = load_model(config.model)
    judges = [load_model(j) for j in config.judges]
    images, labels, _ = load_data(config.dataset, "test", seed=config.seed)
    picked = choose_sources(
        EvalConfig(config.dataset, config.model, config.judges, (), (), (), config.sources, seed=config.seed),
        driver,
        images,
        labels,
    )
    done = store.done
    side = math.sqrt(images[0].numel())
    examples_path = out / f"examples_{config.dataset}.pt"
    examples = torch.load(examples_path) if examples_path.exists() else {}
    total = len(settings) * len(picked)
    count = sum(_key(config.dataset, s.name, i, t) in done for s in settings for i, _, t in picked)
    for setting in settings:
        todo = [(i, y, t) for i, y, t in picked if _key(config.dataset, setting.name, i, t) not in done]
        rows, last_frames = [], []
        for index, label, target in todo:
            result = morph(
                driver,
                images[index],
                target,
                setting.config(),
                setting.strength(config.max_rms),
                frames=config.frames,
                progress=False,
            )
            found = result.auto
            assert found is not None
            last = result.frames[-1:]
            last_frames.append(last)
            rows.append(
                dict(
                    key=_key(config.dataset, setting.name, index, target),
                    dataset=config.dataset,
                    setting=setting.name,
                    **asdict(setting),
                    index=index,
                    label=label,
                    target=target,
                    flipped=bool(found.reached),
                    rms=found.budget / side,
                    saturated=found.saturated_at is not None,
                    p_target=found.prob,
                    judges={
                        j: bool(read[0])
                        for j, read in zip(config.judges, transfer(judges, last, target), strict=True)
                    },
                    fade=float(fade(images[index : index + 1], last)[0]),
                )
            )
            count += 1
            if progress is not None:
                progress(count, total)
        if not rows:
            continue
        edited, sources = torch.cat(last_frames), images[[r["index"] for r in rows]]
        warp, warp_gain = fit_warp(sources, edited).energy, fit_warp(sources, edited, gain=True).energy
        for row, e, eg in zip(rows, warp.tolist(), warp_gain.tolist(), strict=True):
            row.update(E_warp=_finite(e), E_warp_gain=_finite(eg))
        store.append(rows)
        if setting.name not in examples:  # the grid's frames: the first pairs, kept once
            first = [r["index"] for r in rows][:EXAMPLES]
            examples[setting.name] = (edited[: len(first)].clamp(0, 1) * 255).round().to(torch.uint8)
            torch.save(examples, examples_path)
    return [r for r in store.rows() if r["dataset"] == config.dataset]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


#: Driver and judges per data set: the robust model drives; the others were never used for a gradient.
#: This is the one list of a study's judges; which of them count as independent of the driver is
#: :func:`morphlib.zoo.independent_judges`'s rule (MNIST: the kNN, the MLP and the noise-trained
#: EfficientNet; ``mnist-judge`` and ``mnist-judge-vit`` see the data as the driver does, and
#: ``mnist-cnn`` is its sibling: shown, not counted).
DEFAULT_MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mnist": (
        "mnist-cnn-robust",
        (
            "mnist-judge-knn",
            "mnist-judge-mlp",
            "mnist-judge-noise",
            "mnist-judge",
            "mnist-judge-vit",
            "mnist-cnn",
        ),
    ),
    "shapes": ("shapes-cnn-robust", ("shapes-judge", "shapes-cnn")),
    "orientation": ("orientation-cnn-robust", ("orientation-judge", "orientation-cnn")),
    "digits": ("digits-cnn-robust", ("digits-judge", "digits-cnn")),
}


def _median(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.median(kept)) if kept else None


def summarise(rows: Sequence[dict], judges: Sequence[str]) -> list[dict]:
    """One line per setting, in the order the settings first appear."""
    by_setting: dict[str, list[dict]] = {}
    for row in rows:
        by_setting.setdefault(row["setting"], []).append(row)
    lines = []
    for name, group in by_setting.items():
        flips = [r for r in group if r["flipped"]]
        line = dict(
            setting=name,
            family=group[0]["family"],
            regime=group[0]["regime"],
            pairs=len(group),
            flips=len(flips),
            flip_rate=len(flips) / len(group),
            saturated=sum(r["saturated"] for r in group),
            flip_rms=_median([r["rms"] for r in flips]),
            E_warp=_median([r["E_warp"] for r in flips]),
            E_warp_gain=_median([r["E_warp_gain"] for r in flips]),
            fade=_median([r["fade"] for r in flips]),
        )
        for judge in judges:
            line[f"judge:{judge}"] = sum(r["judges"][judge] for r in flips) / len(flips) if flips else None
        lines.append(line)
    return lines


def transfer_of(line: dict) -> float | None:
    """Mean over judges of the fraction of flips each reads as the target."""
    values = [v for k, v in line.items() if k.startswith("judge:")]
    return None if not values or values[0] is None else float(np.mean(values))


def best_setting(summary: Sequence[dict]) -> dict | None:
    """The setting with the highest judge transfer among those that flip >= GOOD_FLIP_RATE."""
    good = [s for s in summary if s["flip_rate"] >= GOOD_FLIP_RATE and transfer_of(s) is not None]
    return max(good, key=lambda s: (transfer_of(s), s["flip_rate"]), default=None)


def _cell(value: float | None, percent: bool = True) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.0f} %" if percent else f"{value:.3f}"


def _table(summary: Sequence[dict], judges: Sequence[str]) -> list[str]:
    head = [
        "setting",
        "flips",
        "median flip RMS",
        *[f"judge {j}" for j in judges],
        "E warp",
        "E warp+gain",
        "fade",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        flips = f"{s['flips']}/{s['pairs']} ({100 * s['flip_rate']:.0f} %)" + (
            f", {s['saturated']} saturated" if s["saturated"] else ""
        )
        cells = [
            s["setting"],
            flips,
            _cell(s["flip_rms"], percent=False),
            *[_cell(s[f"judge:{j}"]) for j in judges],
            _cell(s["E_warp"]),
            _cell(s["E_warp_gain"]),
            _cell(s["fade"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def stored_configs(out: Path) -> list[StudyConfig]:
    """The study configurations under ``out``, one per data set, in :data:`DEFAULT_MODELS` order."""
    configs = {}
    for path in out.glob("config_*.json"):
        raw = json.loads(path.read_text())
        configs[raw["dataset"]] = StudyConfig(**{**raw, "judges": tuple(raw["judges"])})
    return [configs[d] for d in sorted(configs, key=lambda d: list(DEFAULT_MODELS).index(d))]


def write_report(out: Path) -> Path:
    """``report.md``, ``results.csv`` and one grid of last frames per data set studied under ``out``."""
    configs = stored_configs(out)
    rows = read_rows(out / "rows.jsonl")
    text = [
        "# What makes a morph good: the settings study",
        "",
        "Written by `python -m morphlib study`; every number below is computed from `rows.jsonl`.",
        "Each (source, target) pair is morphed with an auto strength (`morphlib.Strength.auto`):",
        "the morph stops where the driver's top-1 first becomes the target, searched up to the RMS",
        "cap (iterative regimes in 24 equal steps, so their flip budget is known to cap/24). Judges",
        "score that last frame; E (warp-explained energy), and fade (loss of RMS contrast) are medians",
        "over the flips. A setting counts as good when it flips at least "
        f"{100 * GOOD_FLIP_RATE:.0f} % of the pairs; the best is the good one the judges agree with most.",
        "",
    ]
    table_rows = []
    for config in configs:
        mine = [r for r in rows if r["dataset"] == config.dataset]
        if not mine:
            continue
        summary = summarise(mine, config.judges)
        best = best_setting(summary)
        text += [
            f"## {config.dataset}",
            "",
            f"Driver `{config.model}`, judges {', '.join(f'`{j}`' for j in config.judges)}; "
            f"{summary[0]['pairs']} (source, target) pairs (test images the driver gets right, seeded "
            f"random other class), cap RMS {config.max_rms} "
            f"(L2 {config.max_rms * math.sqrt(_numel(config)):.3g}).",
            "",
            *_table(summary, config.judges),
            "",
            f"Best setting: **{best['setting']}** (flips {100 * best['flip_rate']:.0f} %, mean judge "
            f"transfer {100 * transfer_of(best):.0f} %)."
            if best
            else f"No setting flips {100 * GOOD_FLIP_RATE:.0f} % of the pairs within the cap.",
            "",
        ]
        text += _defaults_check(summary)
        grid = _grid(config, out, mine)
        if grid is not None:
            text += [f"![last frames, {config.dataset}]({grid.name})", ""]
        table_rows += [dict(dataset=config.dataset, **s) for s in summary]
    with (out / "results.csv").open("w", newline="") as f:
        if table_rows:
            fields = list(dict.fromkeys(k for r in table_rows for k in r))
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(table_rows)
    report = out / "report.md"
    report.write_text("\n".join(text))
    return report


def recommended_setting() -> Setting:
    """The setting the app and the CLI start from (:data:`morphlib.config.RECOMMENDED`)."""
    r = RECOMMENDED
    return Setting(r.family, r.regime, smooth_sigma=r.smooth_sigma, min_prob=RECOMMENDED_STRENGTH.goal)


def _defaults_check(summary: Sequence[dict]) -> list[str]:
    """How the app's default setting does here, against pixel edits on the same path and goal."""
    chosen = recommended_setting()
    peer = Setting("pixel", "persistent", min_prob=chosen.min_prob).name
    lines = {s["setting"]: s for s in summary}
    if chosen.name not in lines:
        return []
    out = [f"The app's and the CLI's default (`morphlib.config.RECOMMENDED`) is **{chosen.name}**:"]
    for name in (chosen.name, peer):
        if name in lines:
            s = lines[name]
            judged = ", ".join(_cell(v) for k, v in s.items() if k.startswith("judge:"))
            mean = transfer_of(s)
            out.append(
                f"- {name}: flips {s['flips']}/{s['pairs']} ({100 * s['flip_rate']:.0f} %), judges {judged}"
                + (f" (mean {100 * mean:.0f} %)" if mean is not None else "")
            )
    return out + [""]


def _numel(config: StudyConfig) -> int:
    from .data import IMAGE_SIZE

    return CHANNELS[config.dataset] * IMAGE_SIZE[config.dataset] ** 2


def _grid(config: StudyConfig, out: Path, rows: Sequence[dict]) -> Path | None:
    """Sources on the top row, then each setting's last frames (✓ driver flipped, judges agreeing)."""
    examples_path = out / f"examples_{config.dataset}.pt"
    if not examples_path.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    examples = torch.load(examples_path)
    images, _, names = load_data(config.dataset, "test", seed=config.seed)
    settings = [s for s in dict.fromkeys(r["setting"] for r in rows) if s in examples]
    first = {}
    for r in rows:
        first.setdefault(r["setting"], []).append(r)
    pairs = [(r["index"], r["label"], r["target"]) for r in first[settings[0]]][:EXAMPLES]
    cols = len(pairs)
    fig, axes = plt.subplots(
        len(settings) + 1, cols, figsize=(1.3 * cols + 2.2, 1.3 * (len(settings) + 1)), squeeze=False
    )

    def show(ax, image: torch.Tensor, title: str) -> None:
        picture = (
            (image.float() / (255 if image.dtype == torch.uint8 else 1)).clamp(0, 1).permute(1, 2, 0).numpy()
        )
        ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=7)

    for c, (index, label, target) in enumerate(pairs):
        show(axes[0, c], images[index], f"{names[label]} → {names[target]}")
    axes[0, 0].set_ylabel("source", fontsize=7, rotation=0, ha="right", va="center")
    for r, setting in enumerate(settings, start=1):
        for c in range(cols):
            row = first[setting][c] if c < len(first[setting]) else None
            if c < len(examples[setting]) and row is not None:
                votes = sum(row["judges"].values())
                mark = ("flip" if row["flipped"] else "no flip") + f", {votes}/{len(row['judges'])} judges"
                show(axes[r, c], examples[setting][c], mark)
            else:
                axes[r, c].axis("off")
        axes[r, 0].set_ylabel(setting, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout()
    path = out / f"grid_{config.dataset}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
