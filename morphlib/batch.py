"""Batched morphs: several images at once, one forward and one backward pass per step for all.

:func:`morph_batch` gives each image what :func:`morphlib.morph.morph` gives it alone, to
float tolerance (a batch may round differently in the network's kernels): the same
gradients, the same frames, the same scores.  Each image keeps its own budget search; the
searches run in lockstep, so that the frames all of them try in one round are rendered
and measured as one batch.  An image whose budget cannot be reached gets its
:class:`~morphlib.morph.BudgetUnreachable` in place of a result; the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .edits import EditSpace, Params, scale_params
from .morph import (
    NO_CHANGE,
    PROBE,
    BudgetUnreachable,
    MorphResult,
    _check_run,
    _check_settings,
    _eval_mode,
    _gradient_rows,
    _Line,
    _make_pyramid,
    _model_device_dtype,
    _probabilities,
    _resolver,
    _result,
    _root_search,
    _settings,
    _Steps,
    _zero_gradient,
    default_budget,
    prepare_image,
    stalled,
)
from .transforms import SteerablePyramid

__all__ = ["morph_batch"]


def morph_batch(
    model: nn.Module,
    images: Sequence[Any] | Tensor,
    targets: Sequence[int | str],
    *,
    family: str = "csp-phase",
    regime: str = "frozen",
    frames: int = 16,
    budget: float | None = None,
    alpha: float | None = None,
    loss: str = "nll",
    luma_only: bool = False,
    phase_cap: float | None = None,
    smooth_sigma: float | None = None,
    pyramid: dict | SteerablePyramid | None = None,
    sources: Sequence[int | str | None] | None = None,
) -> list[MorphResult | BudgetUnreachable]:
    """Morph each of ``images`` toward its ``targets`` entry, as a batch.

    Parameters are those of :func:`morphlib.morph.morph`, with one target (and optionally
    one source class) per image; ``images`` is a sequence of single images or a tensor
    ``(B, C, H, W)``.  Images of different sizes, or grey and colour images, are batched
    separately.

    Returns
    -------
    list of MorphResult or BudgetUnreachable
        One entry per image, in order; an image whose budget is out of reach gets the error.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3)).eval()
    >>> results = morph_batch(net, torch.rand(2, 3, 16, 16), [1, 2], family="pixel", frames=3)
    >>> [r.target for r in results]
    [1, 2]
    """
    frames, budget, alpha = _check_run(regime, frames, budget, alpha)
    _check_settings(model, family, loss, phase_cap, smooth_sigma)
    images = list(images)
    sources = [None] * len(images) if sources is None else list(sources)
    if not len(targets) == len(sources) == len(images):
        raise ValueError(
            f"give one target (and source) per image: {len(images)} images, {len(targets)} targets, "
            f"{len(sources)} sources"
        )
    device, dtype = _model_device_dtype(model)
    xs = [prepare_image(image, dtype=dtype, device=device) for image in images]
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(xs):  # an EditSpace holds one size, and grey images or colour ones
        grey = x.shape[1] == 3 and bool((x == x[:, :1]).all())
        groups.setdefault((tuple(x.shape), grey), []).append(i)
    results: list = [None] * len(xs)
    with _eval_mode(model):
        for rows in groups.values():
            space = EditSpace(family, torch.cat([xs[i] for i in rows]), luma_only, _make_pyramid(pyramid))
            batch = _Batch.start(
                model,
                space,
                [targets[i] for i in rows],
                [sources[i] for i in rows],
                loss,
                phase_cap,
                smooth_sigma,
            )
            group_budget = default_budget(batch.x0[:1]) if budget is None and alpha is None else budget
            run = _frozen_rows if regime == "frozen" else _iterated_rows
            for i, result in zip(rows, run(batch, regime, frames, group_budget, alpha), strict=True):
                results[i] = result
    return results


@dataclass
class _Batch:
    """The sources of a batch and their first gradient (the frozen regime's only one)."""

    model: nn.Module
    space: EditSpace
    steps: _Steps
    labels: list[str]
    settings: dict
    loss: str
    phase_cap: float | None
    smooth_sigma: float | None

    @classmethod
    def start(cls, model, space, targets, sources, loss, phase_cap, smooth_sigma) -> _Batch:
        labels: list[str] = []
        resolve = [_resolver(model, t, s, labels) for t, s in zip(targets, sources, strict=True)]
        n = len(targets)
        steps = _gradient_rows(
            model,
            space,
            space.zeros(n),
            [None] * n,
            loss,
            [None] * n,
            smooth_sigma,
            clip=False,
            resolve=resolve,
        )
        for scale, target in zip(steps.scales.tolist(), steps.targets, strict=True):
            if scale == 0:
                raise _zero_gradient(labels[target], space.family)
        settings = _settings(space, loss, phase_cap, smooth_sigma)
        return cls(model, space, steps, labels, settings, loss, phase_cap, smooth_sigma)

    @property
    def x0(self) -> Tensor:
        return self.space.image

    def result(self, row: int, images: Tensor, alphas: Tensor, probs: Tensor, run: dict) -> MorphResult:
        """Row ``row``'s MorphResult from its frames ``(F, C, H, W)``, alphas and probabilities."""
        steps = self.steps
        run = dict(run, alpha_max=float(alphas[-1]))
        return _result(
            images,
            alphas,
            probs,
            self.x0[row : row + 1],
            self.settings,
            run,
            self.labels,
            steps.targets[row],
            steps.sources[row],
            float(steps.scales[row]),
        )


def _solve_rows(
    fn: Callable[[Tensor], list[float]], goals: Sequence[float], f0: Sequence[float], guesses: Sequence[float]
) -> list[float | BudgetUnreachable]:
    """One :func:`~morphlib.morph._solve_increasing` per row, in lockstep.

    ``fn(s)`` takes one value per row ``(B,)`` and returns one result per row; each round
    evaluates every row (a row already solved at its root), so that a round is one batch.
    """
    searches = [_root_search(g, f, guess, rtol=0.01) for g, f, guess in zip(goals, f0, guesses, strict=True)]
    s = [next(search) for search in searches]
    out: list = [None] * len(searches)
    pending = set(range(len(searches)))
    while pending:
        values = fn(torch.tensor(s, dtype=torch.float64))
        for i in sorted(pending):
            try:
                s[i] = searches[i].send(values[i])
            except StopIteration as found:
                out[i] = found.value
                pending.discard(i)
            except BudgetUnreachable as err:
                out[i], s[i] = err, 0.0
                pending.discard(i)
    return out


def _distances(images: Tensor, x0: Tensor) -> list[float]:
    """L2 distance of each image from its source, as :func:`~morphlib.morph.morph` measures it."""
    return [float((image - x).norm()) for image, x in zip(images, x0, strict=True)]


def _frozen_rows(batch: _Batch, regime: str, frames: int, budget: float | None, alpha: float | None) -> list:
    space, x0 = batch.space, batch.x0

    @torch.no_grad()
    def render(alphas: Tensor) -> Tensor:  # one frame per row, at that row's amplification
        params = scale_params(batch.steps.direction, -alphas.to(x0.dtype))
        return space.images(space.cap_phase(params, batch.phase_cap)).clamp(0.0, 1.0)

    n = len(x0)
    if budget is None:
        alpha_max: list = [alpha] * n
    else:
        slopes = [d / PROBE for d in _distances(render(torch.full((n,), PROBE)), x0)]
        if 0 in slopes:
            raise ValueError(NO_CHANGE)
        alpha_max = _solve_rows(
            lambda a: _distances(render(a), x0), [budget] * n, [0.0] * n, [budget / slope for slope in slopes]
        )
    reached = torch.tensor([0.0 if isinstance(a, Exception) else a for a in alpha_max], dtype=torch.float64)
    alphas = torch.stack([torch.linspace(0.0, float(a), frames, dtype=torch.float64) for a in reached])
    images = torch.stack([x0] + [render(alphas[:, k]) for k in range(1, frames)], dim=1)  # (B, F, C, H, W)
    ok = [i for i, a in enumerate(alpha_max) if not isinstance(a, Exception)]
    if not ok:
        return alpha_max
    scored = _probabilities(batch.model, images[ok, 1:].flatten(0, 1)).view(len(ok), frames - 1, -1)
    run = dict(regime=regime, frames=frames, budget=budget, alpha=alpha)
    out = list(alpha_max)
    for i, probs in zip(ok, scored, strict=True):
        probs = torch.cat([batch.steps.probs[i : i + 1], probs])
        out[i] = batch.result(i, images[i], alphas[i], probs, run)
    return out


def _iterated_rows(
    batch: _Batch, regime: str, frames: int, budget: float | None, alpha: float | None
) -> list:
    """The persistent or step-local path of every row (``morph._iterate``, batched)."""
    s, model = batch.settings, batch.model
    live = list(range(len(batch.x0)))  # the batch rows still on their way
    x0, space = batch.x0, batch.space
    base, direction = space.zeros(len(live)), batch.steps.direction
    images, probs = [x0], [batch.steps.probs]
    alphas = [torch.zeros(len(live), dtype=torch.float64)]
    step_l2 = budget / (frames - 1) if budget is not None else None
    guess: list[float] | None = None
    out: list = [None] * len(live)
    targets, sources = batch.steps.targets, batch.steps.sources
    for k in range(1, frames):
        if k > 1:  # a fresh gradient at the current frames
            if regime == "step-local":
                space = EditSpace(s["family"], images[-1], s["luma_only"], space.pyramid)
                base = space.zeros(len(live))
            step = _gradient_rows(
                model,
                space,
                base,
                [targets[i] for i in live],
                s["loss"],
                [sources[i] for i in live],
                s["smooth_sigma"],
                clip=True,
            )
            direction = step.direction
            probs[-1] = step.probs  # its forward pass scored the current frames
        line = _Line(space, base, direction, s["phase_cap"])
        if step_l2 is None:
            size = torch.full((len(live),), alpha / (frames - 1), dtype=torch.float64)
        else:
            current = _distances(images[-1], x0)

            def distance(sizes: Tensor, line: _Line = line, x0: Tensor = x0) -> list[float]:
                return _distances(line.image(sizes), x0)

            if guess is None:
                slopes = [
                    (d - c) / PROBE
                    for d, c in zip(distance(torch.full((len(live),), PROBE)), current, strict=True)
                ]
                guess = [step_l2 / slope if slope > 0 else 1.0 for slope in slopes]
            found = _solve_rows(distance, [k * step_l2] * len(live), current, guess)
            keep = [j for j, f in enumerate(found) if not isinstance(f, Exception)]
            for j, f in enumerate(found):
                if isinstance(f, Exception):
                    out[live[j]] = stalled(regime, budget, current[j], k, frames)
            if len(keep) < len(live):  # drop the rows that cannot go on
                if not keep:
                    return out
                live, x0, images, probs, alphas, base, direction = (
                    [live[j] for j in keep],
                    x0[keep],
                    [t[keep] for t in images],
                    [t[keep] for t in probs],
                    [t[keep] for t in alphas],
                    _rows(base, keep),
                    _rows(direction, keep),
                )
                space = EditSpace(
                    s["family"], images[-1] if regime == "step-local" else x0, s["luma_only"], space.pyramid
                )
                line = _Line(space, base, direction, s["phase_cap"])
                found = [found[j] for j in keep]
            size = torch.tensor(found, dtype=torch.float64)
            guess = found
        images.append(line.image(size))
        if regime == "persistent":
            base = line.params(size)
        probs.append(None)
        alphas.append(alphas[-1] + size)
    probs[-1] = _probabilities(model, images[-1])
    frames_of, probs_of, alphas_of = torch.stack(images, 1), torch.stack(probs, 1), torch.stack(alphas, 1)
    run = dict(regime=regime, frames=frames, budget=budget, alpha=alpha)
    for j, i in enumerate(live):
        out[i] = batch.result(i, frames_of[j], alphas_of[j], probs_of[j], run)
    return out


def _rows(params: Params, keep: list[int]) -> Params:
    return tuple(p[keep] for p in params)
