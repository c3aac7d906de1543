"""Where an auto-strength morph ends along its path: the stopping rule (:class:`Goal`).

A stopping rule sees a path as a :class:`Track`: per frame, p(target), whether the target is
the top-1 class, its log-odds margin over the runner-up, and the L2 distance from the input.
A :class:`Goal` says at which frame the path stops (:meth:`Goal.stop`, which needs only the
frames so far, so a walk can ask it after every step) and whether the target was reached
there (:meth:`Goal.met`).  The rules, compared by the settings study (``reports/quality``):

``top-1``
    the first frame whose top-1 class is the target;
``p``
    the first frame where p(target) >= ``value`` (a driver's calibration decides when);
``overshoot``
    on past the first top-1 frame to ``1 + value`` times its L2 distance (a fixed overshoot);
``plateau``
    once the target is top-1, the first frame where p(target) rose by less than ``value``
    over the step before (where the driver stops becoming more sure);
``margin``
    the first frame where log p(target) − log p(runner-up) >= ``value``;
``cap``
    never: the path runs to the search cap, and the target is reached if it is top-1 there.

A goal is written as a short spec for the CLI, the app and permalinks (:meth:`Goal.parse`):
``top-1``, ``p0.9``, ``top-1+50%``, ``plateau0.01``, ``margin2``, ``cap``.

>>> Goal.parse("top-1+50%"), Goal.parse(0.9).spec, Goal.parse(None).text
(Goal(rule='overshoot', value=0.5), 'p0.9', 'top-1')
>>> import torch
>>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.2, 0.8], [0.15, 0.85]])
>>> l2 = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
>>> track = Track.of(probs, 1, l2)
>>> [Goal.parse(s).stop(track) for s in ("top-1", "p0.8", "top-1+50%", "plateau0.1", "cap")]
[2, 3, 3, 4, None]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

#: The stopping rules, in the order the study and the app list them.
RULES: tuple[str, ...] = ("top-1", "p", "overshoot", "plateau", "margin", "cap")
#: Rules whose stop is the first frame that meets them, so a search may bisect between samples.
THRESHOLD_RULES: tuple[str, ...] = ("top-1", "p", "margin")
#: The rules offered by name (the app's choices, and the settings study's candidates).
CHOICES: tuple[str, ...] = (
    "top-1",
    "p0.5",
    "p0.7",
    "p0.9",
    "top-1+25%",
    "top-1+50%",
    "top-1+100%",
    "plateau0.01",
    "margin1",
    "margin2",
    "margin3",
    "cap",
)
#: A rule's default value where the spec gives none.
DEFAULT_VALUES: dict[str, float] = {"p": 0.9, "overshoot": 0.5, "plateau": 0.01, "margin": 2.0}

_SPEC = re.compile(
    r"^(?:(top-1)(?:\+(?P<over>[0-9.]+)%)?|(?P<rule>p|plateau|margin)(?:>=)?(?P<value>[0-9.]*)|(?P<cap>cap))$"
)

__all__ = ["CHOICES", "DEFAULT_VALUES", "RULES", "THRESHOLD_RULES", "Goal", "Track"]


@dataclass(frozen=True)
class Track:
    """A path as a stopping rule sees it: one entry per frame, ``(K,)`` each."""

    p: Tensor  # p(target)
    top1: Tensor  # bool: the target is the top-1 class
    margin: Tensor  # log p(target) − log p(runner-up)
    l2: Tensor  # distance from the input

    @classmethod
    def of(cls, probs: Tensor, target: int, l2: Tensor) -> Track:
        """The track of a path with class probabilities ``probs`` ``(K, N)`` and distances ``l2``."""
        logp = probs.detach().double().cpu().clamp_min(1e-30).log()
        others = logp.clone()
        others[:, target] = -math.inf
        return cls(
            p=probs[:, target].detach().double().cpu(),
            top1=probs.argmax(dim=1).cpu() == target,
            margin=logp[:, target] - others.max(dim=1).values,
            l2=torch.as_tensor(l2, dtype=torch.float64).cpu(),
        )

    def __len__(self) -> int:
        return len(self.p)


@dataclass(frozen=True)
class Goal:
    """A stopping rule: ``rule`` (one of :data:`RULES`) and its ``value`` (``None`` for top-1 and cap)."""

    rule: str = "top-1"
    value: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rule, str) or self.rule not in RULES:
            raise ValueError(f"unknown stopping rule {self.rule!r}; choose one of {', '.join(RULES)}")
        if self.rule in ("top-1", "cap"):
            if self.value is not None:
                raise ValueError(f"the {self.rule} rule takes no value")
            return
        value = DEFAULT_VALUES[self.rule] if self.value is None else self.value
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise TypeError(f"the {self.rule} rule's value must be a finite number, got {value!r}")
        value = float(value)
        bounds = {"p": (0.0, 1.0), "overshoot": (0.0, 4.0), "plateau": (0.0, 1.0), "margin": (0.0, 20.0)}
        low, high = bounds[self.rule]
        inside = low < value < high if self.rule == "p" else low < value <= high
        if not inside:
            raise ValueError(f"the {self.rule} rule's value must lie in ({low:g}, {high:g}), got {value:g}")
        object.__setattr__(self, "value", value)

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, spec: Any) -> Goal:
        """A goal from a :class:`Goal`, a spec string (see the module notes), a probability
        (``0.9``: p >= 0.9; ``0``: top-1) or ``None`` (top-1)."""
        if isinstance(spec, Goal):
            return spec
        if spec is None:
            return cls()
        if isinstance(spec, int | float) and not isinstance(spec, bool):
            return cls() if spec == 0 else cls("p", float(spec))
        if not isinstance(spec, str):
            raise TypeError(f"a goal is a spec string, a probability or None, got {type(spec).__name__}")
        text = spec.strip().lower().replace(" ", "")
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None:  # a bare probability
            return cls.parse(number)
        m = _SPEC.match(text)
        if m is None:
            raise ValueError(
                f"unknown goal {spec!r}; write top-1, p0.9, top-1+50%, plateau0.01, margin2 or cap"
            )
        if m.group("over"):
            return cls("overshoot", float(m.group("over")) / 100)
        if m.group("rule"):
            value = m.group("value")
            return cls(m.group("rule"), float(value) if value else None)
        return cls("cap") if m.group("cap") else cls()

    # -- names ----------------------------------------------------------------------------------

    @property
    def spec(self) -> str:
        """The short spec :meth:`parse` reads back."""
        if self.rule == "overshoot":
            assert self.value is not None
            return f"top-1+{100 * self.value:g}%"
        return self.rule if self.value is None else f"{self.rule}{self.value:g}"

    @property
    def text(self) -> str:
        """For people: ``"top-1"``, ``"p >= 0.90"``, ``"top-1 + 50 %"``, ...."""
        v = self.value
        if v is None:  # the two rules without a value
            return "the cap" if self.rule == "cap" else "top-1"
        return {
            "p": f"p >= {v:.2f}",
            "overshoot": f"top-1 + {100 * v:g} %",
            "plateau": f"top-1 until p rises < {v:g} a step",
            "margin": f"log-odds margin >= {v:g}",
        }[self.rule]

    # -- the rule -------------------------------------------------------------------------------

    def met(self, probs: Tensor, target: int) -> bool:
        """Whether a frame with class probabilities ``probs`` ``(N,)`` reaches the target."""
        return bool(self._hits(Track.of(probs[None], target, torch.zeros(1)))[0])

    def reached(self, track: Track, k: int) -> bool:
        """Whether frame ``k`` of ``track`` reaches the target."""
        return bool(self._hits(track)[k])

    def _hits(self, track: Track) -> Tensor:
        if self.rule == "p":
            return track.p >= (self.value or 0.0)
        if self.rule == "margin":
            return track.margin >= (self.value or 0.0)
        return track.top1

    def stop(self, track: Track) -> int | None:
        """The frame a path stops at, or ``None`` when none of its frames ends it (it goes on)."""
        p, l2 = track.p, track.l2
        first = _first(self._hits(track))
        if self.rule in THRESHOLD_RULES or first is None:
            return first
        if self.rule == "overshoot":
            assert self.value is not None
            far = torch.nonzero(l2[first:] >= (1 + self.value) * l2[first] - 1e-9).flatten()
            return first + int(far[0]) if len(far) else None
        if self.rule == "plateau":
            rise = p[first + 1 :] - p[first:-1]
            flat = _first(rise < (self.value or 0.0))
            return None if flat is None else first + 1 + flat
        return None  # cap


def _first(hits: Tensor) -> int | None:
    found = torch.nonzero(hits).flatten()
    return int(found[0]) if len(found) else None
