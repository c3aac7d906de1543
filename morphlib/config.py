"""What a morph is: one settings value (:class:`MorphConfig`) and one strength value (:class:`Strength`).

Every front end (the library's :func:`~morphlib.morph`, the batched morph, the CLI, the app
and its permalinks, the study and the evaluation) builds these two values and hands them to
the one engine (:mod:`morphlib.engine`); none of them branches on how the strength is given.
Two named settings are provided: :data:`RECOMMENDED` (what the app and the CLI start from,
chosen by the settings study, ``reports/quality``) and :data:`PAPER` (the published method:
csp-phase, frozen).  ``docs/method.md`` explains every field.

Examples
--------
>>> config = MorphConfig(family="pixel", regime="persistent")
>>> config.replace(loss="margin").loss
'margin'
>>> Strength.budget(2.0)
Strength(kind='budget', value=2.0, goal=None, cap_rms=0.28)
>>> Strength.auto(goal=0.9).describe(), Strength.auto("top-1+50%").goal
('auto (p >= 0.90, cap RMS 0.28)', Goal(rule='overshoot', value=0.5))
>>> MorphConfig(regime="frozn")
Traceback (most recent call last):
...
ValueError: unknown regime 'frozn'; choose one of frozen, persistent, step-local
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any

from .edits import FAMILIES
from .objectives import LOSSES
from .stopping import Goal
from .transforms import BANDWIDTHS, SteerablePyramid

#: Regimes: one gradient at the source, a gradient flow anchored to it, or re-analysis at every step.
REGIMES: tuple[str, ...] = ("frozen", "persistent", "step-local")
#: How a strength is given.
STRENGTH_KINDS: tuple[str, ...] = ("budget", "amplification", "auto")
#: The default budget when no strength is given: an RMS change of 0.05 per value.
DEFAULT_RMS_BUDGET = 0.05
#: Auto strength's default search cap, as an RMS change per value (L2 7.8 on a 28x28 digit): the
#: cap the settings study measures flips within (``reports/quality``).
AUTO_MAX_RMS = 0.28
#: The largest amplification: 50 radians of phase is eight turns, and a log-amplitude of 50 a gain
#: of 5e21, past which float32 overflows; no morph needs more.
MAX_AMPLIFICATION = 50.0

__all__ = [
    "AUTO_MAX_RMS",
    "DEFAULT_RMS_BUDGET",
    "Goal",
    "MAX_AMPLIFICATION",
    "PAPER",
    "RECOMMENDED",
    "RECOMMENDED_STRENGTH",
    "REGIMES",
    "MorphConfig",
    "PyramidConfig",
    "Strength",
]


def _number(name: str, value: Any, *, low: float = 0.0, allow_low: bool = False) -> float:
    """``value`` as a finite float above ``low`` (or at it, with ``allow_low``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < low or (value == low and not allow_low):
        bound = f">= {low:g}" if allow_low else f"> {low:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return value


def _choice(name: str, value: Any, choices: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class PyramidConfig:
    """The complex steerable pyramid of the ``csp-*`` families (see ``transforms.SteerablePyramid``).

    ``orientations`` ``None`` means 4 for octave bandwidth and 8 for sub-octave ones.
    """

    scales: int | str = "auto"
    orientations: int | None = None
    bandwidth: str = "octave"
    downsample: bool = True
    tight: bool = False

    def __post_init__(self) -> None:
        _choice("bandwidth", self.bandwidth, tuple(BANDWIDTHS), "bandwidth")
        SteerablePyramid(**dataclasses.asdict(self))  # it checks the rest

    def build(self) -> SteerablePyramid:
        """The pyramid of these settings, one shared per settings: its filters, made on first use per
        image size, are then reused by every morph (at 32 px they cost as much as the morph)."""
        return _shared_pyramid(self)

    def resolved(self) -> dict:
        """The settings with the default orientations filled in, as a result records them."""
        return dict(dataclasses.asdict(self), orientations=self.build().orientations)

    @classmethod
    def of(cls, pyramid: PyramidConfig | SteerablePyramid | dict | None) -> PyramidConfig:
        """A PyramidConfig from itself, a pyramid, a dict of its settings, or ``None`` (the default)."""
        if pyramid is None:
            return cls()
        if isinstance(pyramid, cls):
            return pyramid
        if isinstance(pyramid, SteerablePyramid):
            return cls(
                pyramid.scales, pyramid.orientations, pyramid.bandwidth, pyramid.downsample, pyramid.tight
            )
        if isinstance(pyramid, dict):
            names = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(pyramid) - names)
            if unknown:
                raise ValueError(f"unknown pyramid settings {unknown}; use keys {', '.join(sorted(names))}")
            return cls(**pyramid)
        raise TypeError(
            f"pyramid must be a PyramidConfig, SteerablePyramid or dict, got {type(pyramid).__name__}"
        )


@functools.lru_cache(maxsize=64)
def _shared_pyramid(config: PyramidConfig) -> SteerablePyramid:
    return SteerablePyramid(**dataclasses.asdict(config))


@dataclass(frozen=True)
class MorphConfig:
    """Every setting of a morph except its strength and frame count; checked when made.

    Attributes
    ----------
    family : str
        Edit family: ``pixel``, ``fourier-phase``, ``csp-phase`` (the paper's), ``csp-joint``
        (phase and log-amplitude) or ``csp-amplitude``.
    regime : str
        ``frozen`` (one gradient, linear extrapolation), ``persistent`` (gradient flow of the
        parameters, anchored to the source) or ``step-local`` (re-analyse every frame).
    loss : str
        ``nll``, ``margin`` or ``contrast`` (:mod:`morphlib.objectives`).
    luma_only : bool
        Edit only the YIQ luma of a colour image, keep its chroma.  Grey images stay grey
        whatever this says.
    phase_cap : float or None
        Largest phase increment, radians (``None``: no cap).
    smooth_sigma : float or None
        Amplitude-weighted Gaussian smoothing of the phase gradient, in pixels of each band
        (``None`` or 0: none).
    pyramid : PyramidConfig
        The CSP of the ``csp-*`` families (a dict of its settings is accepted too).
    """

    family: str = "csp-phase"
    regime: str = "frozen"
    loss: str = "nll"
    luma_only: bool = False
    phase_cap: float | None = None
    smooth_sigma: float | None = None
    pyramid: PyramidConfig = field(default_factory=PyramidConfig)

    def __post_init__(self) -> None:
        _choice("family", self.family, FAMILIES, "edit family")
        _choice("regime", self.regime, REGIMES, "regime")
        _choice("loss", self.loss, LOSSES, "loss")
        if not isinstance(self.luma_only, bool):
            raise TypeError(f"luma_only must be True or False, got {type(self.luma_only).__name__}")
        if self.phase_cap is not None:
            object.__setattr__(self, "phase_cap", _number("phase_cap", self.phase_cap))
        if self.smooth_sigma is not None:
            sigma = _number("smooth_sigma", self.smooth_sigma, allow_low=True)
            object.__setattr__(self, "smooth_sigma", sigma or None)
        object.__setattr__(self, "pyramid", PyramidConfig.of(self.pyramid))

    def replace(self, **changes: Any) -> MorphConfig:
        """A copy with ``changes`` (checked the same way)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain data (:meth:`from_dict` undoes it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> MorphConfig:
        """The config :meth:`to_dict` wrote."""
        return cls(**data)

    def gradient_fields(self) -> dict:
        """What a class gradient depends on (all but the regime): a :class:`~morphlib.engine.Gradient`
        computed with one config serves every config whose ``gradient_fields`` are equal."""
        out = dataclasses.asdict(self)
        del out["regime"]
        if not self.family.startswith("csp"):
            del out["pyramid"]
        return out

    def record(self) -> dict:
        """The settings as a result's ``params`` record them (plain values)."""
        pyramid = self.pyramid.resolved() if self.family.startswith("csp") else None
        return dict(
            family=self.family,
            loss=self.loss,
            luma_only=self.luma_only,
            phase_cap=self.phase_cap,
            smooth_sigma=self.smooth_sigma,
            pyramid=pyramid,
        )


@dataclass(frozen=True)
class Strength:
    """How far a morph goes: an L2 budget, a raw amplification, or automatic.

    Build one with :meth:`budget`, :meth:`amplification` or :meth:`auto`.

    Attributes
    ----------
    kind : {"budget", "amplification", "auto"}
        ``budget``: the last frame lies at L2 distance ``value`` from the input (clipped
        frames, all channels).  ``amplification``: ``value`` is the largest parameter change
        of the last frame (radians of phase, nepers, or pixel values).  ``auto``: the morph
        ends where its stopping rule ``goal`` says, searched up to ``cap_rms``.
    value : float or None
        The budget or amplification (``None`` for auto).
    goal : Goal or None
        Auto only: the stopping rule (:class:`~morphlib.stopping.Goal`; given as a Goal, a spec
        such as ``"top-1+50%"``, a probability, or ``None`` for top-1).  ``None`` otherwise.
    cap_rms : float
        Auto only: the search cap, as an RMS change per value (the L2 cap is
        ``cap_rms * sqrt(C*H*W)``).  The one unit for the cap in the library, CLI and app.
    """

    kind: str = "budget"
    value: float | None = None
    goal: Goal | None = None
    cap_rms: float = AUTO_MAX_RMS

    def __post_init__(self) -> None:
        _choice("strength kind", self.kind, STRENGTH_KINDS, "strength kind")
        if self.kind == "auto":
            if self.value is not None:
                raise ValueError("an auto strength has no value; give its goal and cap_rms")
            object.__setattr__(self, "goal", Goal.parse(self.goal))
        else:
            if self.value is None:
                raise ValueError(f"a {self.kind} strength needs a value")
            allow_zero = self.kind == "amplification"
            value = _number(self.kind, self.value, allow_low=allow_zero)
            if self.kind == "amplification" and value > MAX_AMPLIFICATION:
                raise ValueError(
                    f"amplification must be at most {MAX_AMPLIFICATION:g} (radians, nepers or pixel values), "
                    f"got {value:g}"
                )
            object.__setattr__(self, "value", value)
            if self.goal is not None:
                raise ValueError("only an auto strength has a goal")
        cap = _number("cap_rms", self.cap_rms)
        if cap > 1:
            raise ValueError(
                f"cap_rms must be at most 1 (no image in [0, 1] changes more than 1 per value), got {cap:g}"
            )
        object.__setattr__(self, "cap_rms", cap)

    @classmethod
    def budget(cls, l2: float) -> Strength:
        """The last frame at L2 distance ``l2`` from the input (met within 1 %)."""
        return cls("budget", l2)

    @classmethod
    def amplification(cls, alpha: float) -> Strength:
        """The last frame at amplification ``alpha`` (normalised units: the largest parameter change)."""
        return cls("amplification", alpha)

    @classmethod
    def auto(cls, goal: Goal | str | float | None = None, cap_rms: float = AUTO_MAX_RMS) -> Strength:
        """End where the stopping rule ``goal`` says (see :class:`~morphlib.stopping.Goal`; a
        probability: where p(target) reaches it; ``None``: where the target becomes top-1),
        searching no further than an RMS change of ``cap_rms`` per value."""
        return cls("auto", None, Goal.parse(goal), cap_rms)

    @classmethod
    def default_budget(cls, values: int) -> Strength:
        """The budget used when none is given: an RMS change of 0.05 over ``values`` (C*H*W) values."""
        return cls.budget(DEFAULT_RMS_BUDGET * math.sqrt(values))

    def cap_l2(self, values: int) -> float:
        """The auto search cap as an L2 distance, for an image of ``values`` (C*H*W) values."""
        return self.cap_rms * math.sqrt(values)

    @property
    def goal_text(self) -> str:
        """The stopping rule for people (``"top-1"``, ``"p >= 0.90"``, ...; ``""`` for no auto)."""
        return "" if self.goal is None else self.goal.text

    def describe(self) -> str:
        """One line for people."""
        if self.kind == "auto":
            return f"auto ({self.goal_text}, cap RMS {self.cap_rms:g})"
        unit = "L2 budget" if self.kind == "budget" else "amplification"
        return f"{unit} {self.value:g}"


#: The app's and the CLI's starting point, picked by the settings study (``reports/quality``) on
#: its selection pairs and reported on 200 held-out MNIST pairs: csp-joint on a step-local path
#: (it can draw strokes on a black background, where a phase shift cannot), amplitude-weighted
#: smoothing of 1 px, and on colour images the luma only (no new colour).  With the ε = 3 driver
#: ``mnist-cnn-robust-eps3`` and :data:`RECOMMENDED_STRENGTH` the driver's top-1 becomes the target
#: on 186/200 held-out pairs (93 %) and a majority of three judges independent of it (a kNN and an
#: MLP on pixels, a noise-trained EfficientNet) reads the target on 165/200 (82 %, 95 % CI 77–87),
#: against 137/200 for pixel edits on the same path and stop (McNemar p = 3e-5).
RECOMMENDED = MorphConfig(family="csp-joint", regime="step-local", smooth_sigma=1.0, luma_only=True)
#: Auto strength stops where the target leads the runner-up by a log-odds margin of 3 (p(target)
#: 20 times the runner-up's), or at the cap RMS 0.28: the study's pick, the rule at which the
#: independent judges read the target most often on the selection pairs (stopping at the first
#: top-1 frame, they read it on 30 % of the held-out pairs: judges lag the driver).
RECOMMENDED_STRENGTH = Strength.auto(goal="margin3")
#: The published method (Mahdisoltani et al., 2025): one gradient of the CSP phases, extrapolated.
PAPER = MorphConfig(family="csp-phase", regime="frozen")
