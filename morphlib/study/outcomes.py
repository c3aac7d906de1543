"""Where each stopping rule stops a walked path, what the judges read there, and the pick."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from morphlib.stats import mcnemar
from morphlib.stopping import Goal, Track

from .plan import GOOD_FLIP_RATE, MAX_CHROMA, RULES, StudyConfig, pixel_peer

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
    outcomes: dict[str, bool] = field(
        repr=False, default_factory=dict
    )  # "index|target" -> majority reads target

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


def pixel_line(lines: Sequence[Line], rows: Sequence[dict], line: Line) -> Line | None:
    """Pixel edits with ``line``'s driver, path, stop and pairs; ``None`` when ``line`` is pixel edits
    itself, or they were not walked."""
    peer = find(lines, line.driver, pixel_peer(line.setting, rows), line.rule, line.split)
    return None if peer is None or peer.setting == line.setting else peer


def paired(a: Line, b: Line) -> tuple[int, int, float]:
    """McNemar on the judge-majority outcome of the same pairs: (only a right, only b right, p)."""
    keys = a.outcomes.keys() & b.outcomes.keys()
    only_a = sum(a.outcomes[k] and not b.outcomes[k] for k in keys)
    only_b = sum(b.outcomes[k] and not a.outcomes[k] for k in keys)
    return only_a, only_b, mcnemar(only_a, only_b)
