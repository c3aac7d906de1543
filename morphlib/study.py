"""What makes a morph good: drivers, edit settings and stopping rules, judged by strangers (docs/method.md §8).

For each driver, each edit setting and each (source, target) pair, :func:`~morphlib.morph_batch`
walks the path all the way to the search cap (:data:`~morphlib.engine.auto.STEPS` equal L2 steps,
``Strength.auto("cap")``); every frame is scored by the driver, kept as the 8-bit frame a video
shows, and read by each judge.  Every stopping rule of :data:`RULES` is then applied to that one
path: the frame it stops at is the frame an auto-strength morph with that rule ends at (when the
video asks for no more frames than the walk took; see :func:`morphlib.morph`), so one walk
measures them all, and a judge added later reads the kept frames without a new walk.

* **Judges** are counted only when they are independent of every driver
  (:mod:`morphlib.zoo.judges`: another architecture and another view of the data; a model of the
  driver's own architecture and data is a sibling, shown beside the others and never counted); the **majority** is a strict majority
  of the counted judges reading the target.  Rates are over **all** pairs (not only the flips),
  with counts and Wilson 95 % intervals (:mod:`morphlib.stats`).
* **Held out**: the pairs are drawn once, seeded, from the test images every driver gets right;
  the first ``select`` pairs pick the (driver, setting, rule) with the most judge-majority reads
  among those that flip the driver on at least :data:`GOOD_FLIP_RATE` of them; the next
  ``report`` pairs, with other source images, report that pick.
* **Model-free measures**: the fade (loss of RMS contrast), the share of the change that is
  colour (YIQ chroma) and, on the gratings, the model-free Fourier orientation judge
  (:class:`morphlib.metrics.FourierOrientation`).  The warp-explained energy E of the pick and
  of pixel edits on the same path and stop is fitted on the report pairs.

Each walked pair is one line of ``rows.jsonl`` (a rerun skips what is done); its frames are kept
(8-bit) in ``frames/``, the judges' readings in ``reads_<data set>.jsonl``.  :func:`write_report` writes ``report.md``
and ``results.csv`` and a grid of last frames at the stop and at the cap per data set.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import AUTO_MAX_RMS, RECOMMENDED, RECOMMENDED_STRENGTH, MorphConfig, Strength
from .data import CHANNELS, LABEL_NAMES, ORIENTATIONS
from .data import load as load_data
from .engine import morph_batch
from .engine.auto import STEPS
from .engine.classifier import BATCH
from .metrics import FourierOrientation, chroma_share, fade, fit_warp, judge_labels
from .stats import mcnemar, rate, wilson
from .stopping import CHOICES, Goal, Track
from .store import RunStore

#: The stopping rules compared (:class:`~morphlib.stopping.Goal` specs).
RULES: tuple[str, ...] = CHOICES
#: Flip rate a (driver, setting, rule) needs on the selection pairs before its judges count.
GOOD_FLIP_RATE = 0.9
#: Largest median share of the change that may be colour (YIQ chroma) in a pick: no new colour.
MAX_CHROMA = 0.1
#: The judge with no weights on the gratings (see :class:`~morphlib.metrics.FourierOrientation`).
FOURIER_JUDGE = "fourier-orientation"
EXAMPLES = 6  # report pairs shown in the grids
SPLITS = ("select", "report")
PI = math.pi


@dataclass(frozen=True)
class Setting:
    """One way of editing (a :class:`~morphlib.config.MorphConfig`); the stopping rule is separate."""

    family: str
    regime: str
    smooth_sigma: float | None = None
    luma_only: bool = False

    @property
    def name(self) -> str:
        parts = [self.family, self.regime]
        if self.smooth_sigma is not None:
            parts.append(f"smooth {self.smooth_sigma:g}")
        if self.luma_only:
            parts.append("luma")
        return " ".join(parts)

    def config(self) -> MorphConfig:
        return MorphConfig(
            family=self.family, regime=self.regime, luma_only=self.luma_only, smooth_sigma=self.smooth_sigma
        )


def recommended_setting(channels: int) -> Setting:
    """The setting the app and the CLI start from (:data:`morphlib.config.RECOMMENDED`) on images of
    ``channels`` channels (luma-only means nothing for grey ones)."""
    r = RECOMMENDED
    return Setting(r.family, r.regime, smooth_sigma=r.smooth_sigma, luma_only=r.luma_only and channels == 3)


def pixel_peer(setting: Setting) -> Setting:
    """Pixel edits on the same kind of path: the baseline a setting is tested against."""
    return Setting("pixel", setting.regime, luma_only=setting.luma_only)


#: The paper's method (:data:`morphlib.config.PAPER`): one gradient of the CSP phases, extrapolated.
PAPER_SETTING = Setting("csp-phase", "frozen")


def default_settings(channels: int) -> list[Setting]:
    """The settings compared: csp-joint on a step-local path with 1 px smoothing (the family that
    can draw strokes where the background is black), pixel edits on the same path, and the
    paper's frozen csp-phase; on colour data csp-joint with and without luma-only, and pixel
    edits of the luma."""
    joint = Setting("csp-joint", "step-local", smooth_sigma=1.0)
    pixel = Setting("pixel", "step-local")
    settings = [joint, pixel]
    if channels == 3:  # pixel edits in colour are left out: they cost as much and paint no less
        settings = [
            Setting(joint.family, joint.regime, joint.smooth_sigma, luma_only=True),
            joint,
            Setting("pixel", "step-local", luma_only=True),
        ]
    return settings + [PAPER_SETTING]


@dataclass(frozen=True)
class StudyConfig:
    """Everything that decides the numbers of a study on one data set.

    ``judges`` are counted (each must be independent of every driver); ``shown`` are scored and
    printed but never counted (siblings of a driver, judges of the same kind as another).
    """

    dataset: str
    drivers: tuple[str, ...]
    judges: tuple[str, ...]
    shown: tuple[str, ...] = ()
    select: int = 100
    report: int = 200
    max_rms: float = AUTO_MAX_RMS
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.drivers or not self.judges:
            raise ValueError("a study needs at least one driver and one counted judge")
        if self.select < 1 or self.report < 1:
            raise ValueError("select and report need at least one pair each")
        for judge in self.judges:
            for driver in self.drivers:
                kind = relation(driver, judge)
                if kind != "independent":
                    raise ValueError(
                        f"{judge!r} is {'the driver' if kind == 'self' else 'a ' + kind + ' judge'} of "
                        f"{driver!r} (morphlib.zoo.judges): it may be shown, never counted as independent"
                    )


def relation(driver: str, judge: str) -> str:
    """What ``judge`` is to ``driver`` (:func:`morphlib.zoo.judges.relation`); the Fourier judge, which
    has no weights and no training, is independent of every driver."""
    from .zoo.judges import relation as zoo_relation

    return "independent" if judge == FOURIER_JUDGE else zoo_relation(driver, judge)


#: Drivers and judges per data set: the first driver is the app's; judges are counted, ``shown`` not
#: (which may be counted is :mod:`morphlib.zoo.judges`'s rule).  The shapes data have no study: their
#: one bundled judge sees the data as the drivers do, and no model-free shape measure reads them.
DEFAULT_MODELS: dict[str, dict[str, tuple[str, ...]]] = {
    "mnist": {
        "drivers": ("mnist-cnn-robust-eps3", "mnist-cnn-robust"),
        "judges": ("mnist-judge-knn", "mnist-judge-mlp", "mnist-judge-noise"),
        "shown": ("mnist-judge", "mnist-judge-vit", "mnist-cnn"),
    },
    "orientation": {
        "drivers": ("orientation-cnn-robust-eps2", "orientation-cnn-robust"),
        "judges": (FOURIER_JUDGE,),
        "shown": ("orientation-judge", "orientation-cnn"),
    },
}


def default_config(dataset: str, **overrides) -> StudyConfig:
    """The study of ``dataset`` with its :data:`DEFAULT_MODELS`."""
    if dataset not in DEFAULT_MODELS:
        raise ValueError(f"unknown data set {dataset!r}; choose from {', '.join(DEFAULT_MODELS)}")
    return StudyConfig(dataset, **{**DEFAULT_MODELS[dataset], **overrides})


def _load_judge(name: str, dataset: str) -> nn.Module:
    if name == FOURIER_JUDGE:
        if dataset != "orientation":
            raise ValueError(f"the {FOURIER_JUDGE} judge reads the orientation data only")
        return FourierOrientation(ORIENTATIONS, LABEL_NAMES["orientation"])
    from .zoo import load

    return load(name)


def split_pairs(config: StudyConfig, drivers: Sequence[nn.Module], images, labels) -> dict[str, list[tuple]]:
    """``{"select": [...], "report": [...]}`` of ``(index, label, target)``: seeded, from the test
    images every driver gets right, each image in one split only, targets random other classes."""
    with torch.no_grad():
        right = torch.ones(len(images), dtype=torch.bool)
        for driver in drivers:
            predicted = torch.cat([driver(part).argmax(-1) for part in images.split(256)])
            right &= predicted == labels
    rng = np.random.default_rng(config.seed)
    classes = len(LABEL_NAMES[config.dataset])
    pairs = []
    for i in rng.permutation(len(images)).tolist():
        if right[i]:
            label = int(labels[i])
            target = int(rng.choice([c for c in range(classes) if c != label]))
            pairs.append((i, label, target))
    if len(pairs) < config.select + config.report:
        raise ValueError(
            f"only {len(pairs)} test images of {config.dataset!r} are right for every driver; "
            f"ask for at most that many pairs (select + report)"
        )
    return {"select": pairs[: config.select], "report": pairs[config.select : config.select + config.report]}


def _key(dataset: str, driver: str, setting: str, index: int, target: int) -> str:
    return f"{dataset}|{driver}|{setting}|{index}|{target}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _frames_path(out: Path, dataset: str, driver: str, setting: str) -> Path:
    return out / "frames" / f"{dataset}__{_slug(driver)}__{_slug(setting)}.pt"


def run_study(
    config: StudyConfig,
    out: Path,
    settings: Sequence[Setting] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Run (or resume) the study of ``config`` into ``out``; returns its rows.

    Walks every (driver, setting, pair), then fits the warp energy of the pick (and of its pixel
    peer) on the report pairs.
    """
    def same(stored: dict) -> bool:  # other drivers or judges extend a study; other pairs do not
        keep = ("dataset", "select", "report", "max_rms", "seed")
        return all(stored[k] == asdict(config)[k] for k in keep)

    store = RunStore(out, rows="rows.jsonl", settings=f"config_{config.dataset}.json")
    with store.open(asdict(config), same):
        _walk(config, out, store, list(settings or default_settings(CHANNELS[config.dataset])), progress)
        rows = [r for r in store.rows() if r["dataset"] == config.dataset]
        _read(config, out, rows)
        rows = with_reads(out, config.dataset, rows)
        _fit_warps(config, out, rows)
        return rows


def _config(raw: dict) -> StudyConfig:
    return StudyConfig(**{**raw, **{k: tuple(raw[k]) for k in ("drivers", "judges", "shown")}})


def _walk(
    config: StudyConfig,
    out: Path,
    store: RunStore,
    settings: list[Setting],
    progress: Callable[[int, int], None] | None,
) -> None:
    from .zoo import load

    drivers = {d: load(d) for d in config.drivers}
    images, labels, _ = load_data(config.dataset, "test", seed=0)
    splits = split_pairs(config, list(drivers.values()), images, labels)
    pairs = [(split, *pair) for split in SPLITS for pair in splits[split]]
    done = store.done
    total = len(drivers) * len(settings) * len(pairs)
    count = sum(
        _key(config.dataset, d, s.name, i, t) in done for d in drivers for s in settings for _, i, _, t in pairs
    )
    side = math.sqrt(images[0].numel())
    for driver_name, driver in drivers.items():
        for setting in settings:
            path = _frames_path(out, config.dataset, driver_name, setting.name)
            kept = torch.load(path) if path.exists() else {}
            todo = [p for p in pairs if _key(config.dataset, driver_name, setting.name, p[1], p[3]) not in done]
            for start in range(0, len(todo), BATCH):
                chunk = todo[start : start + BATCH]
                results = morph_batch(
                    driver,
                    images[[i for _, i, _, _ in chunk]],
                    [t for _, _, _, t in chunk],
                    setting.config(),
                    Strength.auto("cap", cap_rms=config.max_rms),
                    frames=STEPS + 1,
                    sources=[y for _, _, y, _ in chunk],
                )
                rows = []
                for (split, index, label, target), result in zip(chunk, results, strict=True):
                    if isinstance(result, Exception):
                        raise result
                    frames = result.frames
                    track = Track.of(result.probs, target, result.l2)
                    source = images[index : index + 1].expand_as(frames)
                    rows.append(
                        dict(
                            key=_key(config.dataset, driver_name, setting.name, index, target),
                            dataset=config.dataset,
                            driver=driver_name,
                            setting=setting.name,
                            **asdict(setting),
                            split=split,
                            index=index,
                            label=label,
                            target=target,
                            rms=[round(float(v) / side, 5) for v in track.l2],
                            p=[round(float(v), 5) for v in track.p],
                            top1=[bool(v) for v in track.top1],
                            margin=[round(float(v), 4) for v in track.margin],
                            driver_top1=result.probs.argmax(dim=1).tolist(),
                            fade=[round(float(v), 4) for v in fade(source, frames)],
                            chroma=[round(float(v), 4) for v in chroma_share(source, frames)],
                        )
                    )
                    kept[index] = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(kept, path)
                store.append(rows)
                count += len(rows)
                if progress is not None:
                    progress(count, total)


# -- the judges ---------------------------------------------------------------------------------


def _reads_path(out: Path, dataset: str) -> Path:
    return out / f"reads_{dataset}.jsonl"


def _stored_reads(out: Path, dataset: str) -> dict[tuple[str, str], list[int]]:
    path = _reads_path(out, dataset)
    if not path.exists():
        return {}
    lines = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {(r["key"], r["judge"]): r["reads"] for r in lines}


def _read(config: StudyConfig, out: Path, rows: Sequence[dict]) -> None:
    """Each judge's top-1 class of every kept frame of ``rows`` it has not read yet."""
    done = _stored_reads(out, config.dataset)
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["driver"], row["setting"]), []).append(row)
    for name in (*config.judges, *config.shown):
        judge = None
        for (driver, setting), group in groups.items():
            todo = [r for r in group if (r["key"], name) not in done]
            if not todo:
                continue
            judge = judge or _load_judge(name, config.dataset)
            frames = torch.load(_frames_path(out, config.dataset, driver, setting))
            lines = []
            for start in range(0, len(todo), BATCH):  # the frames of BATCH rows at a time
                chunk = todo[start : start + BATCH]
                every = torch.cat([frames[r["index"]] for r in chunk]).float() / 255
                seen = judge_labels([judge], every, batch=len(every))[0].view(len(chunk), -1).tolist()
                lines += [json.dumps(dict(key=r["key"], judge=name, reads=s)) for r, s in zip(chunk, seen, strict=True)]
            with _reads_path(out, config.dataset).open("a") as f:
                f.write("\n".join(lines) + "\n")


def with_reads(out: Path, dataset: str, rows: Sequence[dict]) -> list[dict]:
    """``rows`` with ``judges``: each judge's top-1 class per frame, for the judges that read them all."""
    reads = _stored_reads(out, dataset)
    judges = sorted({j for _, j in reads})
    return [dict(r, judges={j: reads[(r["key"], j)] for j in judges if (r["key"], j) in reads}) for r in rows]


# -- reading the rows ---------------------------------------------------------------------------


def track_of(row: dict) -> Track:
    """The path of a row as a stopping rule sees it."""
    return Track(
        p=torch.tensor(row["p"], dtype=torch.float64),
        top1=torch.tensor(row["top1"]),
        margin=torch.tensor(row["margin"], dtype=torch.float64),
        l2=torch.tensor(row["rms"], dtype=torch.float64),  # a rule compares distances by ratio
    )


@dataclass
class Outcome:
    """One row stopped by one rule."""

    stop: int
    flipped: bool  # the driver's top-1 is the target at the stop
    reached: bool  # the rule's own goal is met there
    reads: dict[str, bool]  # judge -> reads the target
    source_reads: dict[str, bool]  # judge -> still reads the source
    majority: bool  # a strict majority of the counted judges reads the target
    majority_source: bool
    rms: float
    fade: float
    chroma: float


def outcome(row: dict, rule: str, counted: Sequence[str]) -> Outcome:
    """Where ``rule`` stops ``row``'s path (its last frame, the cap, when it never does) and what
    the judges read there."""
    goal, track = Goal.parse(rule), track_of(row)
    stop = goal.stop(track)
    k = len(track) - 1 if stop is None else stop
    reads = {j: v[k] == row["target"] for j, v in row["judges"].items()}
    source_reads = {j: v[k] == row["label"] for j, v in row["judges"].items()}
    return Outcome(
        stop=k,
        flipped=bool(row["top1"][k]),
        reached=goal.reached(track, k),
        reads=reads,
        source_reads=source_reads,
        majority=2 * sum(reads[j] for j in counted) > len(counted),
        majority_source=2 * sum(source_reads[j] for j in counted) > len(counted),
        rms=row["rms"][k],
        fade=row["fade"][k],
        chroma=row["chroma"][k],
    )


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None


@dataclass
class Line:
    """The summary of one (driver, setting, rule) on one split."""

    driver: str
    setting: str
    rule: str
    split: str
    pairs: int
    flips: int
    majority: int
    majority_source: int
    judges: dict[str, int]
    rms: float | None
    fade: float | None
    chroma: float | None
    outcomes: dict[str, bool] = field(repr=False, default_factory=dict)  # "index|target" -> majority reads target

    @property
    def flip_rate(self) -> float:
        return self.flips / self.pairs

    @property
    def majority_rate(self) -> float:
        return self.majority / self.pairs


def summarise(rows: Sequence[dict], config: StudyConfig, rules: Sequence[str] = RULES) -> list[Line]:
    """One :class:`Line` per (driver, setting, rule, split) present in ``rows``."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["driver"], row["setting"], row["split"]), []).append(row)
    lines = []
    for (driver, setting, split), group in groups.items():
        for rule in rules:
            got = [(f"{r['index']}|{r['target']}", outcome(r, rule, config.judges)) for r in group]
            outs = [o for _, o in got]
            lines.append(
                Line(
                    driver=driver,
                    setting=setting,
                    rule=rule,
                    split=split,
                    pairs=len(outs),
                    flips=sum(o.flipped for o in outs),
                    majority=sum(o.majority for o in outs),
                    majority_source=sum(o.majority_source for o in outs),
                    judges={j: sum(o.reads[j] for o in outs) for j in (*config.judges, *config.shown)},
                    rms=_median([o.rms for o in outs]),
                    fade=_median([o.fade for o in outs]),
                    chroma=_median([o.chroma for o in outs]),
                    outcomes={k: o.majority for k, o in got},
                )
            )
    return lines


def pick(lines: Sequence[Line]) -> Line | None:
    """On the selection pairs: the (driver, setting, rule) the counted judges' majority reads as the
    target most often among those that flip the driver on >= :data:`GOOD_FLIP_RATE` of the pairs
    and paint no new colour (median chroma share <= :data:`MAX_CHROMA`); ties go to the smaller
    change."""
    good = [
        x
        for x in lines
        if x.split == "select" and x.flip_rate >= GOOD_FLIP_RATE and (x.chroma or 0.0) <= MAX_CHROMA
    ]
    return max(good, key=lambda x: (x.majority, -(x.rms or 0.0)), default=None)


def find(lines: Sequence[Line], driver: str, setting: str, rule: str, split: str) -> Line | None:
    return next(
        (x for x in lines if (x.driver, x.setting, x.rule, x.split) == (driver, setting, rule, split)), None
    )


def paired(a: Line, b: Line) -> tuple[int, int, float]:
    """McNemar on the judge-majority outcome of the same pairs: (only a right, only b right, p)."""
    keys = a.outcomes.keys() & b.outcomes.keys()
    only_a = sum(a.outcomes[k] and not b.outcomes[k] for k in keys)
    only_b = sum(b.outcomes[k] and not a.outcomes[k] for k in keys)
    return only_a, only_b, mcnemar(only_a, only_b)


# -- the warp energy of the pick ----------------------------------------------------------------


def _warp_path(out: Path, dataset: str) -> Path:
    return out / f"warp_{dataset}.json"


def _fit_warps(config: StudyConfig, out: Path, rows: list[dict]) -> None:
    """E (warp only, warp + gain) of the report pairs' stop frames for the pick and its pixel peer."""
    lines = summarise(rows, config)
    best = pick(lines)
    if best is None:
        return
    path = _warp_path(out, config.dataset)
    fitted = json.loads(path.read_text()) if path.exists() else {}
    images, _, _ = load_data(config.dataset, "test", seed=0)
    peer = pixel_peer(_setting(best.setting, rows)).name
    for setting in dict.fromkeys((best.setting, peer)):
        mine = [
            r
            for r in rows
            if r["driver"] == best.driver and r["setting"] == setting and r["split"] == "report"
        ]
        todo = [r for r in mine if f"{r['key']}|{best.rule}" not in fitted]
        if not todo:
            continue
        frames = torch.load(_frames_path(out, config.dataset, best.driver, setting))
        stops = [outcome(r, best.rule, config.judges).stop for r in todo]
        edited = torch.stack([frames[r["index"]][k].float() / 255 for r, k in zip(todo, stops, strict=True)])
        sources = images[[r["index"] for r in todo]]
        warp = fit_warp(sources, edited).energy.tolist()
        gain = fit_warp(sources, edited, gain=True).energy.tolist()
        for r, e, g in zip(todo, warp, gain, strict=True):
            fitted[f"{r['key']}|{best.rule}"] = [_finite(e), _finite(g)]
        path.write_text(json.dumps(fitted, indent=0, sort_keys=True))


def _setting(name: str, rows: Sequence[dict]) -> Setting:
    row = next(r for r in rows if r["setting"] == name)
    return Setting(row["family"], row["regime"], row["smooth_sigma"], row["luma_only"])


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def warp_medians(out: Path, dataset: str, line: Line, rows: Sequence[dict]) -> tuple[float, float] | None:
    """Median E (warp, warp + gain) of ``line``'s report pairs, when fitted."""
    path = _warp_path(out, dataset)
    if not path.exists():
        return None
    fitted = json.loads(path.read_text())
    keys = [
        f"{r['key']}|{line.rule}"
        for r in rows
        if (r["driver"], r["setting"], r["split"]) == (line.driver, line.setting, line.split)
    ]
    got = [fitted[k] for k in keys if k in fitted]
    if not got:
        return None
    warp = [e for e, _ in got if e is not None]
    gain = [g for _, g in got if g is not None]
    return float(np.median(warp)), float(np.median(gain))


# -- the report ---------------------------------------------------------------------------------


def stored_configs(out: Path) -> list[StudyConfig]:
    """The study configurations under ``out``, in :data:`DEFAULT_MODELS` order."""
    configs = {}
    for path in out.glob("config_*.json"):
        config = _config(json.loads(path.read_text()))
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
    rows_all = [r for c in stored_configs(out) for r in with_reads(out, c.dataset, [x for x in rows_all if x["dataset"] == c.dataset])]
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
        "and another view of the data); siblings and same-view judges are shown, never counted. *chroma*: share of the change's energy in YIQ chroma; *fade*: loss of",
        "RMS contrast.",
        "",
    ]
    csv_rows = []
    for config in stored_configs(out):
        rows = [r for r in rows_all if r["dataset"] == config.dataset]
        if not rows:
            continue
        lines = summarise(rows, config)
        text += [
            f"## {config.dataset}",
            "",
            f"Drivers {', '.join(f'`{d}`' for d in config.drivers)}; counted judges "
            f"{', '.join(f'`{j}`' for j in config.judges)}; shown {', '.join(f'`{j}`' for j in config.shown)}. "
            f"{config.select} selection and {config.report} report pairs (seed {config.seed}), "
            f"cap RMS {config.max_rms:g}. Made by `python -m morphlib study --datasets {config.dataset} "
            f"--select {config.select} --report {config.report} --max-rms {config.max_rms:g} --seed {config.seed} "
            f"--drivers {','.join(config.drivers)}`.",
            "",
        ]
        best = pick(lines)
        if best is None:
            text += [f"No (driver, setting, rule) flips {100 * GOOD_FLIP_RATE:.0f} % of the selection pairs.", ""]
        else:
            held = find(lines, best.driver, best.setting, best.rule, "report")
            assert held is not None
            text += [
                f"**Picked on the selection pairs:** `{best.driver}`, {best.setting}, stop at {best.rule} "
                f"(selection: flips {rate(best.flips, best.pairs)}, judge majority {rate(best.majority, best.pairs)}).",
                "",
                f"**Held out, on the report pairs:** flips {rate(held.flips, held.pairs)}, "
                f"judge majority {rate(held.majority, held.pairs)}.",
                "",
                *_judges_table(held, config),
                "",
            ]
            peer = find(lines, best.driver, pixel_peer(_setting(best.setting, rows)).name, best.rule, "report")
            if peer is not None and peer.setting != held.setting:
                a, b, p = paired(held, peer)
                text += [
                    f"Against pixel edits on the same path and stop ({peer.setting}, {best.rule}), paired over "
                    f"the {held.pairs} report pairs: majority reads {held.majority} vs {peer.majority}; "
                    f"{a} pairs only the pick convinces, {b} only pixel edits; exact McNemar p = {p:.3g}.",
                    "",
                ]
            for line in [held] + ([] if peer is None or peer.setting == held.setting else [peer]):
                energy = warp_medians(out, config.dataset, line, rows)
                if line is not None and energy is not None:
                    text.append(
                        f"- {line.setting}: median E warp {100 * energy[0]:.0f} %, warp + gain "
                        f"{100 * energy[1]:.0f} % (report pairs, at the stop)."
                    )
            text += [
                "",
                "Every rule, for the picked driver and setting, on the report pairs:",
                "",
                *_rules_table(
                    [x for x in lines if (x.driver, x.setting, x.split) == (best.driver, best.setting, "report")],
                    config,
                ),
                "",
                f"Every driver and setting at the picked rule ({best.rule}), and at the cap, on the report pairs:",
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
    peer = find(lines, config.drivers[0], pixel_peer(_setting(setting, rows)).name, rule, "report")
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
        len(panels) + 1, len(indices), figsize=(1.2 * len(indices) + 3.2, 1.2 * (len(panels) + 1)), squeeze=False
    )

    def show(ax, image: torch.Tensor, title: str) -> None:
        picture = (image.float() / (255 if image.dtype == torch.uint8 else 1)).clamp(0, 1).permute(1, 2, 0).numpy()
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
        path = _frames_path(out, config.dataset, driver, setting)
        frames = torch.load(path) if path.exists() else {}
        for c, index in enumerate(indices):
            row = by_key.get((driver, setting, index))
            if row is None or index not in frames:
                axes[r, c].axis("off")
                continue
            o = outcome(row, which, config.judges)
            votes = sum(o.reads[j] for j in config.judges)
            show(axes[r, c], frames[index][o.stop], f"{'flip' if o.flipped else 'no flip'}, {votes}/{len(config.judges)}")
        axes[r, 0].set_ylabel(f"{driver}\n{setting}\n@ {which}", fontsize=6, rotation=0, ha="right", va="center")
    fig.tight_layout()
    path = out / f"grid_{config.dataset}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def recommended_goal() -> str:
    """The stopping rule the app and the CLI start from, as a spec."""
    goal = RECOMMENDED_STRENGTH.goal
    assert goal is not None
    return goal.spec
