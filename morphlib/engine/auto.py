"""Automatic strength: the morph ends where its stopping rule says, searched up to a cap.

The rule is a :class:`~morphlib.stopping.Goal` (top-1, p >= x, an overshoot past top-1, a
plateau of p(target), a log-odds margin, or the cap).  Frozen paths (:func:`auto_strength`):
the path ``α ↦ clip(x(−α·g))`` is sampled at ``SAMPLES`` evenly spaced amplifications up to
the cap (the amplification whose frame lies at the cap's L2 distance, or where the edit
saturates if it never gets that far), scored in batches; where the rule stops at the first
frame that meets a threshold (top-1, p, margin), that sample is refined by bisection against
the sample before it; the other rules stop at a sample.  No backward pass: only the cached
:class:`~morphlib.engine.Gradient` is rendered and scored.  Iterative paths walk ``STEPS``
equal L2 steps up to the cap and ask the rule after every step (:func:`Stopper`).  Both
report an :class:`AutoStrength`, with the one set of messages below.

Examples
--------
>>> from morphlib import MorphConfig, Strength, gradient
>>> from morphlib.zoo import load
>>> from morphlib.data import load as load_data
>>> images, _, _ = load_data("digits", split="test", n=1, seed=0)
>>> g = gradient(load("digits-cnn-robust"), images[0], "4", MorphConfig(family="pixel"))
>>> found = auto_strength(g, Strength.auto())
>>> found.reached, g.labels[int(g.score(g.render([found.alpha]))[0].argmax())]
(True, '4')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from morphlib.config import Strength
from morphlib.stopping import THRESHOLD_RULES, Goal, Track

from .gradient import Gradient
from .search import PROBE, BudgetUnreachable

SAMPLES = 16
REFINE = 6
#: Steps of an iterative path searched by auto strength (its budget resolution: cap / STEPS).
STEPS = 24

__all__ = ["REFINE", "SAMPLES", "STEPS", "AutoStrength", "Stopper", "auto_strength", "meets", "report"]


@dataclass(frozen=True)
class AutoStrength:
    """What an auto strength found.

    Attributes
    ----------
    reached : bool
        Whether the goal was met within the cap.
    alpha : float
        Amplification the morph ends at: the smallest found that meets the goal, or the cap.
    budget : float
        L2 distance of the last frame from the input.
    prob : float
        Target probability of the last frame.
    max_budget : float
        The cap searched up to, as an L2 distance.
    saturated_at : float or None
        When the edit cannot reach the cap (phase edits are bounded), the largest L2 distance
        it reaches; ``None`` otherwise.
    goal : str
        The stopping rule for people (``"top-1"``, ``"p >= 0.90"``, ``"top-1 + 50 %"``, ...).
    message : str
        One sentence for the user saying what was found.
    """

    reached: bool
    alpha: float
    budget: float
    prob: float
    max_budget: float
    saturated_at: float | None
    goal: str
    message: str


def _goal(strength: Strength) -> Goal:
    if strength.goal is None:
        raise ValueError(f"an auto strength is needed, got {strength.describe()}")
    return strength.goal


def meets(strength: Strength, probs: Tensor, targets: int | Sequence[int]) -> Tensor:
    """Which rows of class probabilities ``(K, N)`` reach the target as the auto goal counts it
    (:meth:`~morphlib.stopping.Goal.met`), ``(K,)``; one target for all rows or one per row."""
    goal = _goal(strength)
    t = [targets] * len(probs) if isinstance(targets, int) else list(targets)
    return torch.tensor([goal.met(row, ti) for row, ti in zip(probs, t, strict=True)], dtype=torch.bool)


class Stopper:
    """The ``stop`` of an iterative walk (:func:`morphlib.engine.paths.iterate`) for a stopping rule.

    Frame ``k`` of the walk lies at L2 ``k · step``; the stopper keeps each row's probabilities
    so far, so that rules that look back (overshoot, plateau) are asked on the whole path.
    """

    def __init__(self, strength: Strength, start: Tensor, targets: Sequence[int], step: float):
        self.goal, self.targets, self.step = _goal(strength), list(targets), step
        self.seen: list[list[Tensor]] = [[p.detach()] for p in start]  # frame 0 of each row

    def __call__(self, probs: Tensor, rows: list[int]) -> Tensor:
        done = []
        for row, p in zip(rows, probs, strict=True):
            self.seen[row].append(p.detach())
            path = torch.stack(self.seen[row])
            l2 = self.step * torch.arange(len(path), dtype=torch.float64)
            done.append(self.goal.stop(Track.of(path, self.targets[row], l2)) == len(path) - 1)
        return torch.tensor(done, dtype=torch.bool)


def report(
    strength: Strength,
    label: str,
    *,
    reached: bool,
    alpha: float,
    l2: float,
    prob: float,
    best: float,
    cap: float,
    saturated_at: float | None,
    path: str = "",
    top1: bool = False,
) -> AutoStrength:
    """The :class:`AutoStrength` of a search that ended at (``alpha``, ``l2``, ``prob``), with its message.

    ``path`` names an iterative path (``"step-local"``); ``best`` is the highest target
    probability seen on the way; ``top1``: the target is the top class of the last frame (a
    goal stricter than top-1 may still be unmet there).
    """
    goal = strength.goal_text
    along = f" along the {path} path" if path else ""
    if reached and l2 == 0:
        message = f"the input already meets the goal ({goal} for {label!r}, p = {prob:.3f}); nothing to morph"
    elif reached:
        where = f"L2 = {l2:.3g}" + ("" if path else f" (alpha = {alpha:.3g}, p = {prob:.3f})")
        message = f"{label!r} meets the goal ({goal}) at {where}{along}" + (
            f" (p = {prob:.3f})." if path else "."
        )
    else:
        along = f" along this {path} path" if path else " along this path"
        limit = (
            f"the edit saturates at L2 = {saturated_at:.3g}, below the cap {cap:.3g}"
            if saturated_at is not None
            else f"the budget cap L2 = {cap:.3g} came first"
        )
        hint = (
            "try another family or a larger cap"
            if path
            else "try another family, the step-local regime or a larger cap"
        )
        if top1:  # the class flipped; only the stricter goal is unmet
            message = (
                f"{label!r} is the top class at the end (p = {prob:.3f}) but never met the goal "
                f"({goal}){along}: {limit}. Showing the morph at the cap."
            )
        else:
            message = (
                f"{label!r} never met the goal ({goal}){along}: {limit} (best p({label}) = {best:.3f}). "
                f"Showing the morph at the cap; {hint}."
            )
    return AutoStrength(reached, alpha, l2, prob, cap, saturated_at, goal, message)


def _saturation_alpha(grad: Gradient, max_budget: float) -> tuple[float, float]:
    """For an edit that cannot reach ``max_budget``: the smallest amplification within 2 % of its
    largest distance over a geometric scan, and that distance."""
    slope = grad.l2(PROBE) / PROBE
    start = max_budget / 64 / slope
    alphas = start * 2.0 ** (torch.arange(25, dtype=torch.float64) / 2)
    l2 = (grad.render(alphas) - grad.image).flatten(1).norm(dim=1).double().cpu()
    l2 = torch.where(torch.isfinite(l2), l2, torch.full_like(l2, -1.0))  # frames that broke down
    best = float(l2.max())
    if best <= 0:
        raise ValueError(
            "the edit breaks down (non-finite values) before it changes the image; try another family"
        )
    index = int(torch.nonzero(l2 >= 0.98 * best)[0])
    return float(alphas[index]), float(l2[index])


def auto_strength(
    grad: Gradient, strength: Strength, samples: int = SAMPLES, refine: int = REFINE
) -> AutoStrength:
    """The smallest amplification along a one-image ``grad``'s frozen path that meets ``strength``'s goal.

    Parameters
    ----------
    grad : Gradient
        The frozen-regime gradient of one image (see :func:`morphlib.gradient`).
    strength : Strength
        An auto strength: its goal and cap.
    samples : int
        Evenly spaced amplifications scored (in batches) before refining.
    refine : int
        Bisection steps between the first sample that meets the goal and the one before it.

    Returns
    -------
    AutoStrength
        ``reached`` is False when the cap comes first; ``alpha`` is then the cap.
    """
    if strength.kind != "auto":
        raise ValueError(f"auto_strength needs an auto strength, got {strength.describe()}")
    goal = _goal(strength)
    if samples < 1 or refine < 0:
        raise ValueError("samples must be >= 1 and refine >= 0")
    x0, target, label = grad.image, grad.target, grad.labels[grad.target]
    cap = strength.cap_l2(x0[0].numel())

    def scored(alphas: Tensor) -> tuple[Tensor, Tensor]:
        frames = grad.render(alphas)
        return grad.score(frames), (frames - x0).flatten(1).norm(dim=1).double().cpu()

    p0 = float(grad.probs[0, target])
    if goal.stop(Track.of(grad.probs[:1], target, torch.zeros(1))) == 0:
        return report(
            strength, label, reached=True, alpha=0.0, l2=0.0, prob=p0, best=p0, cap=cap, saturated_at=None
        )
    saturated_at = None
    try:
        alpha_cap = grad.alpha_for_budget(cap)
    except BudgetUnreachable:  # a bounded (phase) edit: search up to where it saturates
        alpha_cap, saturated_at = _saturation_alpha(grad, cap)
    alphas = torch.linspace(0.0, alpha_cap, samples + 1, dtype=torch.float64)[1:]
    probs, l2 = scored(alphas)
    stop = goal.stop(
        Track.of(torch.cat([grad.probs[:1], probs]), target, torch.cat([torch.zeros(1).double(), l2]))
    )
    if stop is None or goal.rule not in THRESHOLD_RULES:  # no bisection: the stop is a sample
        k = len(alphas) - 1 if stop is None else stop - 1
        return report(
            strength,
            label,
            reached=goal.met(probs[k], target),
            alpha=float(alphas[k]),
            l2=float(l2[k]),
            prob=float(probs[k, target]),
            best=float(probs[: k + 1, target].max()),
            cap=cap,
            saturated_at=saturated_at if stop is None else None,
            top1=int(probs[k].argmax()) == target,
        )
    k = stop - 1
    lo = float(alphas[k - 1]) if k > 0 else 0.0
    hi, hi_prob, hi_l2 = float(alphas[k]), float(probs[k, target]), float(l2[k])
    for _ in range(refine):
        mid = 0.5 * (lo + hi)
        p_mid, l2_mid = scored(torch.tensor([mid], dtype=torch.float64))
        if bool(meets(strength, p_mid, target)[0]):
            hi, hi_prob, hi_l2 = mid, float(p_mid[0, target]), float(l2_mid[0])
        else:
            lo = mid
    return report(
        strength,
        label,
        reached=True,
        alpha=hi,
        l2=hi_l2,
        prob=hi_prob,
        best=hi_prob,
        cap=cap,
        saturated_at=saturated_at,
    )
