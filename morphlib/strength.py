"""Automatic strength: the smallest L2 budget along a frozen morph at which the target wins.

The frozen path ``α ↦ clip(x(−α·g))`` is sampled at ``samples`` evenly spaced
amplifications up to the cap (the amplification whose frame lies at ``max_budget``
from the input, or the point where the edit saturates if it never gets that far),
scored in batches; the first sample that meets the goal (the target is the top-1
class, or its probability reaches ``min_prob``) is then refined by bisection
against the sample before it.  No backward pass: only the cached
:class:`~morphlib.morph.Gradient` is rendered and scored.

Examples
--------
>>> from morphlib import gradient
>>> from morphlib.zoo import load
>>> from morphlib.data import load as load_data
>>> images, _, _ = load_data("digits", split="test", n=1, seed=0)
>>> g = gradient(load("digits-cnn-robust"), images[0], "4", family="pixel")
>>> found = auto_strength(g)
>>> found.reached, g.labels[int(g.score(g.render([found.alpha]))[0].argmax())]
(True, '4')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .morph import (
    BudgetUnreachable,
    Gradient,
    MorphResult,
    _eval_mode,
    _iterate,
    _progress,
    gradient,
    morph,
    path_result,
)

#: Default cap of the search: an RMS change of 0.28 per value (L2 7.8 on a 28x28 digit), the cap
#: the settings study measures flips within (reports/quality).
AUTO_MAX_RMS = 0.28
SAMPLES = 16
REFINE = 6
#: Steps of an iterative path searched by :func:`auto_morph` (its budget resolution: cap / STEPS).
STEPS = 24

__all__ = ["AUTO_MAX_RMS", "AutoStrength", "auto_morph", "auto_strength", "default_max_budget"]


@dataclass(frozen=True)
class AutoStrength:
    """What :func:`auto_strength` found.

    Attributes
    ----------
    reached : bool
        Whether the goal was met within the cap.
    alpha : float
        Amplification to morph to: the smallest one found that meets the goal, or the
        cap when the goal was not reached.
    budget : float
        L2 distance of the frame at ``alpha`` from the input.
    prob : float
        Target probability of that frame.
    max_budget : float
        The cap that was searched up to.
    saturated_at : float or None
        When the edit cannot reach ``max_budget`` (phase edits are bounded), the largest
        L2 distance it reaches; ``None`` otherwise.
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


def default_max_budget(image: torch.Tensor) -> float:
    """The default cap: an RMS change of :data:`AUTO_MAX_RMS` per value of ``image`` ``(1, C, H, W)``."""
    return AUTO_MAX_RMS * math.sqrt(image[0].numel())


def _saturation_alpha(grad: Gradient, max_budget: float) -> tuple[float, float]:
    """For an edit that cannot reach ``max_budget``: the smallest amplification within 2 % of its
    largest distance over a geometric scan, and that distance."""
    probe = 1e-3
    slope = grad.l2(probe) / probe
    start = max_budget / 64 / slope
    alphas = start * 2.0 ** (torch.arange(25, dtype=torch.float64) / 2)
    l2 = (grad.render(alphas) - grad.image).flatten(1).norm(dim=1).double().cpu()
    best = float(l2.max())
    index = int(torch.nonzero(l2 >= 0.98 * best)[0])
    return float(alphas[index]), float(l2[index])


def auto_strength(
    grad: Gradient,
    min_prob: float | None = None,
    max_budget: float | None = None,
    samples: int = SAMPLES,
    refine: int = REFINE,
) -> AutoStrength:
    """Find the smallest amplification along ``grad``'s frozen path at which the target wins.

    Parameters
    ----------
    grad : Gradient
        The frozen-regime gradient (see :func:`morphlib.gradient`).
    min_prob : float, optional
        Goal: the target's probability reaches ``min_prob`` (in ``(0, 1)``).  Default: the
        target becomes the top-1 class.
    max_budget : float, optional
        Search no further than this L2 distance from the input; default
        :func:`default_max_budget` (an RMS change of 0.2).
    samples : int
        Evenly spaced amplifications scored (in batches) before refining.
    refine : int
        Bisection steps between the first sample that meets the goal and the one before it.

    Returns
    -------
    AutoStrength
        ``reached`` is False when the cap comes first; ``alpha`` is then the cap.
    """
    if min_prob is not None and not 0.0 < float(min_prob) < 1.0:
        raise ValueError(f"the target probability must lie strictly between 0 and 1, got {min_prob}")
    if samples < 1 or refine < 0:
        raise ValueError("samples must be >= 1 and refine >= 0")
    x0 = grad.image
    max_budget = default_max_budget(x0) if max_budget is None else float(max_budget)
    if not math.isfinite(max_budget) or max_budget <= 0:
        raise ValueError(f"the budget cap must be a finite number > 0, got {max_budget}")
    target, label = grad.target, grad.labels[grad.target]
    goal = "top-1" if min_prob is None else f"p >= {float(min_prob):.2f}"

    def meets(probs: torch.Tensor) -> torch.Tensor:
        if min_prob is None:
            return probs.argmax(dim=1) == target
        return probs[:, target] >= float(min_prob)

    def scored(alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames = grad.render(alphas)
        return grad.score(frames), (frames - x0).flatten(1).norm(dim=1).double().cpu()

    if bool(meets(grad.probs[None])[0]):
        p = float(grad.probs[target])
        message = f"the input already meets the goal ({goal} for {label!r}, p = {p:.3f}); nothing to morph"
        return AutoStrength(True, 0.0, 0.0, p, max_budget, None, goal, message)

    saturated_at = None
    try:
        alpha_cap = grad.alpha_for_budget(max_budget)
    except BudgetUnreachable:  # a bounded (phase) edit: search up to where it saturates
        alpha_cap, saturated_at = _saturation_alpha(grad, max_budget)
    alphas = torch.linspace(0.0, alpha_cap, samples + 1, dtype=torch.float64)[1:]
    probs, l2 = scored(alphas)
    hits = torch.nonzero(meets(probs)).flatten()
    if len(hits) == 0:
        limit = (
            f"the edit saturates at L2 = {saturated_at:.3g}, below the cap {max_budget:.3g}"
            if saturated_at is not None
            else f"the budget cap L2 = {max_budget:.3g} came first"
        )
        p_end = float(probs[-1, target])
        best = float(probs[:, target].max())
        message = (
            f"{label!r} never became {goal} along this path: {limit} (best p({label}) = {best:.3f}). "
            "Showing the morph at the cap; try another family, the step-local regime or a larger cap."
        )
        return AutoStrength(
            False, float(alphas[-1]), float(l2[-1]), p_end, max_budget, saturated_at, goal, message
        )
    k = int(hits[0])
    lo = float(alphas[k - 1]) if k > 0 else 0.0
    hi, hi_prob, hi_l2 = float(alphas[k]), float(probs[k, target]), float(l2[k])
    for _ in range(refine):
        mid = 0.5 * (lo + hi)
        p_mid, l2_mid = scored(torch.tensor([mid], dtype=torch.float64))
        if bool(meets(p_mid)[0]):
            hi, hi_prob, hi_l2 = mid, float(p_mid[0, target]), float(l2_mid[0])
        else:
            lo = mid
    message = f"{label!r} becomes {goal} at L2 = {hi_l2:.3g} (alpha = {hi:.3g}, p = {hi_prob:.3f})."
    return AutoStrength(True, hi, hi_l2, hi_prob, max_budget, saturated_at, goal, message)


def _goal(min_prob: float | None) -> str:
    return "top-1" if min_prob is None else f"p >= {float(min_prob):.2f}"


def auto_morph(
    model: torch.nn.Module,
    image,
    target: int | str,
    *,
    regime: str = "frozen",
    frames: int = 16,
    min_prob: float | None = None,
    max_budget: float | None = None,
    steps: int = STEPS,
    grad: Gradient | None = None,
    progress=None,
    **settings,
) -> tuple[MorphResult, AutoStrength]:
    """A morph that ends where the target first wins (see :func:`auto_strength`), in any regime.

    ``frozen``: :func:`auto_strength` along the cached gradient, then the frames up to the
    amplification it found.  ``persistent`` and ``step-local``: the path is walked in
    ``steps`` equal L2 steps up to ``max_budget`` and stops at the first frame that meets
    the goal (or where the edit saturates); ``frames`` of its frames, evenly spaced and
    ending there, are returned.  ``settings`` are :func:`~morphlib.morph.gradient`'s
    (``family``, ``loss``, ``luma_only``, ``phase_cap``, ``smooth_sigma``, ``pyramid``, ``source``).

    Returns
    -------
    (MorphResult, AutoStrength)
    """
    if grad is None:
        grad = gradient(model, image, target, **settings)
    if regime == "frozen":
        found = auto_strength(grad, min_prob=min_prob, max_budget=max_budget)
        return morph(
            model, grad.image, grad.target, regime="frozen", frames=frames, alpha=found.alpha, grad=grad
        ), found
    if steps < 1 or frames < 2:
        raise ValueError("steps must be >= 1 and frames >= 2")
    max_budget = default_max_budget(grad.image) if max_budget is None else float(max_budget)
    if not math.isfinite(max_budget) or max_budget <= 0:
        raise ValueError(f"the budget cap must be a finite number > 0, got {max_budget}")
    target, label, goal = grad.target, grad.labels[grad.target], _goal(min_prob)

    def meets(probs: torch.Tensor) -> bool:
        return bool(probs.argmax() == target) if min_prob is None else float(probs[target]) >= float(min_prob)

    if meets(grad.probs):
        p = float(grad.probs[target])
        message = f"the input already meets the goal ({goal} for {label!r}, p = {p:.3f}); nothing to morph"
        result = morph(
            model, grad.image, target, regime=regime, frames=frames, alpha=0.0, grad=grad, progress=False
        )
        return result, AutoStrength(True, 0.0, 0.0, p, max_budget, None, goal, message)
    report = _progress(progress, steps, f"{regime} morph (auto strength)")
    with _eval_mode(model):
        images, alphas, probs = _iterate(model, grad, regime, steps + 1, max_budget, None, report, stop=meets)
    reached = meets(probs[-1])
    keep = torch.linspace(0, len(images) - 1, min(frames, len(images))).round().long().unique()
    result = path_result(
        grad,
        regime,
        images[keep],
        alphas[keep],
        probs[keep],
        budget=None,
        alpha=None,
        alpha_max=float(alphas[-1]),
    )
    l2, p = float(result.l2[-1]), float(result.probs[-1, target])
    saturated_at = l2 if not reached and len(images) < steps + 1 else None
    if reached:
        message = f"{label!r} becomes {goal} at L2 = {l2:.3g} along the {regime} path (p = {p:.3f})."
    else:
        limit = (
            f"the edit saturates at L2 = {l2:.3g}, below the cap {max_budget:.3g}"
            if saturated_at is not None
            else f"the budget cap L2 = {max_budget:.3g} came first"
        )
        best = float(probs[:, target].max())
        message = (
            f"{label!r} never became {goal} along this {regime} path: {limit} "
            f"(best p({label}) = {best:.3f}). "
            "Showing the morph at the cap; try another family or a larger cap."
        )
    found = AutoStrength(reached, float(alphas[-1]), l2, p, max_budget, saturated_at, goal, message)
    return result, found
