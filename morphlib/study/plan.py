"""The study's settings: what is compared, on which pairs, driven and judged by which models."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from morphlib.config import AUTO_MAX_RMS, RECOMMENDED, RECOMMENDED_STRENGTH, MorphConfig
from morphlib.data import LABEL_NAMES, ORIENTATIONS
from morphlib.data import load as load_data
from morphlib.metrics import FourierOrientation, ShapeOutline, StructureTensorOrientation
from morphlib.stopping import CHOICES

#: The stopping rules compared (:class:`~morphlib.stopping.Goal` specs).
RULES: tuple[str, ...] = CHOICES
#: Flip rate a (driver, setting, rule) needs on the selection pairs before its judges count.
GOOD_FLIP_RATE = 0.9
#: Largest median share of the change that may be colour (YIQ chroma) in a pick: no new colour.
MAX_CHROMA = 0.1
FOURIER_JUDGE = "fourier-orientation"
TENSOR_JUDGE = "structure-tensor"
OUTLINE_JUDGE = "shape-outline"
#: Training images the outline judge's class means are fit on.
OUTLINE_FIT_IMAGES = 2000


_GRATINGS = (ORIENTATIONS, LABEL_NAMES["orientation"])  # an orientation judge's classes: degrees, names


def _outline_judge() -> nn.Module:
    images, labels, names = load_data("shapes", "train", n=OUTLINE_FIT_IMAGES, seed=0)
    return ShapeOutline.fit(images, labels, names)


#: Judges that are not networks, by name: the data set each reads and how it is made.  On the
#: gratings the orientation holding the most Fourier energy
#: (:class:`~morphlib.metrics.FourierOrientation`) and the structure tensor's
#: (:class:`~morphlib.metrics.StructureTensorOrientation`), both without weights; on the shapes the
#: nearest class mean of the figure's outline features (:class:`~morphlib.metrics.ShapeOutline`,
#: fit on training images).
MODEL_FREE_JUDGES: dict[str, tuple[str, Callable[[], nn.Module]]] = {
    FOURIER_JUDGE: ("orientation", partial(FourierOrientation, *_GRATINGS)),
    TENSOR_JUDGE: ("orientation", partial(StructureTensorOrientation, *_GRATINGS)),
    OUTLINE_JUDGE: ("shapes", _outline_judge),
}
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


def pixel_peer(setting: str, rows: Sequence[dict]) -> str:
    """The name of pixel edits on the same kind of path as the setting named ``setting`` (whose
    fields ``rows`` hold): the baseline a setting is tested against."""
    row = next(r for r in rows if r["setting"] == setting)
    return Setting("pixel", row["regime"], luma_only=row["luma_only"]).name


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
    """What ``judge`` is to ``driver`` (:func:`morphlib.zoo.judges.relation`); a judge that is not a
    network (:data:`MODEL_FREE_JUDGES`) shares neither architecture nor view with any driver: it
    is independent of every one."""
    from morphlib.zoo.judges import relation as zoo_relation

    return "independent" if judge in MODEL_FREE_JUDGES else zoo_relation(driver, judge)


#: Drivers and judges per data set: the first driver is the app's; judges are counted, ``shown`` not
#: (which may be counted is :mod:`morphlib.zoo.judges`'s rule).  The shapes' one bundled judge sees
#: the data as the drivers do, so only the outline judge counts there.
DEFAULT_MODELS: dict[str, dict[str, tuple[str, ...]]] = {
    "mnist": {
        "drivers": ("mnist-cnn-robust-eps3", "mnist-cnn-robust"),
        "judges": ("mnist-judge-knn", "mnist-judge-mlp", "mnist-judge-noise"),
        "shown": ("mnist-judge", "mnist-judge-vit", "mnist-cnn"),
    },
    "orientation": {
        "drivers": ("orientation-cnn-robust-eps2", "orientation-cnn-robust"),
        "judges": (FOURIER_JUDGE, TENSOR_JUDGE),
        "shown": ("orientation-judge", "orientation-cnn"),
    },
    "shapes": {
        "drivers": ("shapes-cnn-robust-eps2", "shapes-cnn-robust"),
        "judges": (OUTLINE_JUDGE,),
        "shown": ("shapes-judge", "shapes-cnn"),
    },
}


def default_config(dataset: str, **overrides) -> StudyConfig:
    """The study of ``dataset`` with its :data:`DEFAULT_MODELS`."""
    if dataset not in DEFAULT_MODELS:
        raise ValueError(f"unknown data set {dataset!r}; choose from {', '.join(DEFAULT_MODELS)}")
    return StudyConfig(dataset, **{**DEFAULT_MODELS[dataset], **overrides})


def load_judge(name: str, dataset: str) -> nn.Module:
    if name in MODEL_FREE_JUDGES:
        reads, make = MODEL_FREE_JUDGES[name]
        if dataset != reads:
            raise ValueError(f"the {name} judge reads the {reads} data only")
        return make()
    from morphlib.zoo import load

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


def row_key(dataset: str, driver: str, setting: str, index: int, target: int) -> str:
    return f"{dataset}|{driver}|{setting}|{index}|{target}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def frames_path(out: Path, dataset: str, driver: str, setting: str) -> Path:
    return out / "frames" / f"{dataset}__{_slug(driver)}__{_slug(setting)}.pt"


def config_from(raw: dict) -> StudyConfig:
    return StudyConfig(**{**raw, **{k: tuple(raw[k]) for k in ("drivers", "judges", "shown")}})


def recommended_goal() -> str:
    """The stopping rule the app and the CLI start from, as a spec."""
    goal = RECOMMENDED_STRENGTH.goal
    assert goal is not None
    return goal.spec
