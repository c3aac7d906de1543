"""Automatic strength: the morph ends where the target first meets the goal, searched up to a cap.

Frozen paths (:func:`auto_strength`): the path ``α ↦ clip(x(−α·g))`` is sampled at
``SAMPLES`` evenly spaced amplifications up to the cap (the amplification whose frame lies
at the cap's L2 distance, or where the edit saturates if it never gets that far), scored in
batches; the first sample that meets the goal is refined by bisection against the sample
before it.  No backward pass: only the cached :class:`~morphlib.engine.Gradient` is
rendered and scored.  Iterative paths walk ``STEPS`` equal L2 steps up to the cap and stop
at the first frame that meets the goal (:mod:`morphlib.engine.paths`).  Both report an
:class:`AutoStrength`, with the one set of messages below.

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

from .gradient import Gradient
from .search import PROBE, BudgetUnreachable

SAMPLES = 16
REFINE = 6
#: Steps of an iterative path searched by auto strength (its budget resolution: cap / STEPS).
STEPS = 24

__all__ = ["REFINE", "SAMPLES", "STEPS", "AutoStrength", "auto_strength", "meets", "report"]


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
        ``"top-1"`` or ``"p >= 0.xx"``.
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


def meets(strength: Strength, probs: Tensor, targets: int | Sequence[int]) -> Tensor:
    """Which rows of class probabilities ``(K, N)`` meet the auto goal ``(K,)``, for one target or one
    per row."""
    t = torch.as_tensor(targets, dtype=torch.long, device=probs.device).expand(len(probs))
    if strength.goal is None:
        return probs.argmax(dim=1) == t
    return probs.gather(1, t[:, None])[:, 0] >= strength.goal


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
) -> AutoStrength:
    """The :class:`AutoStrength` of a search that ended at (``alpha``, ``l2``, ``prob``), with its message.

    ``path`` names an iterative path (``"step-local"``); ``best`` is the highest target
    probability seen on the way.
    """
    goal = strength.goal_text
    along = f" along the {path} path" if path else ""
    if reached and l2 == 0:
        message = f"the input already meets the goal ({goal} for {label!r}, p = {prob:.3f}); nothing to morph"
    elif reached:
        where = f"L2 = {l2:.3g}" + ("" if path else f" (alpha = {alpha:.3g}, p = {prob:.3f})")
        message = f"{label!r} becomes {goal} at {where}{along}" + (f" (p = {prob:.3f})." if path else ".")
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
        message = (
            f"{label!r} never became {goal}{along}: {limit} (best p({label}) = {best:.3f}). "
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
    if samples < 1 or refine < 0:
        raise ValueError("samples must be >= 1 and refine >= 0")
    x0, target, label = grad.image, grad.target, grad.labels[grad.target]
    cap = strength.cap_l2(x0[0].numel())

    def scored(alphas: Tensor) -> tuple[Tensor, Tensor]:
        frames = grad.render(alphas)
        return grad.score(frames), (frames - x0).flatten(1).norm(dim=1).double().cpu()

    p0 = float(grad.probs[0, target])
    if bool(meets(strength, grad.probs, target)[0]):
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
    hits = torch.nonzero(meets(strength, probs, target)).flatten()
    if len(hits) == 0:
        return report(
            strength,
            label,
            reached=False,
            alpha=float(alphas[-1]),
            l2=float(l2[-1]),
            prob=float(probs[-1, target]),
            best=float(probs[:, target].max()),
            cap=cap,
            saturated_at=saturated_at,
        )
    k = int(hits[0])
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
