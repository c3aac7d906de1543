"""The paths a morph walks, for a batch of images at once (a single morph is a batch of one).

Frozen
    One gradient at the source; frame ``k`` has parameters ``−α_k·g`` (:func:`frozen`).
Persistent and step-local
    ``frames − 1`` steps, each along a freshly computed, normalised gradient (:func:`iterate`).
    With a budget, each step's size is found by a root search (no extra backward pass) so that
    frame ``k`` lies at L2 ``k · budget / (frames − 1)`` from the input; with an amplification,
    every step has size ``alpha / (frames − 1)``.  A frame's ``alpha`` is the summed step sizes
    so far.  The gradient is evaluated at the clipped frame, so each step's forward pass also
    scores the frame it starts from.  ``persistent`` keeps the parameters anchored to the source
    decomposition (a gradient flow in ``δ, η``, the phase cap on the accumulated ``δ``);
    ``step-local`` re-analyses the current frame at every step (the phase cap per step).

Every image of a batch keeps its own searches, run in lockstep so that each round is one
batched synthesis; one forward and one backward pass per step serve the whole batch.  An image
whose path ends early (its budget out of reach, or its stop met) leaves the batch; the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from morphlib.edits import EditSpace, Params, per_row

from .classifier import probabilities
from .gradient import Gradient, class_gradient, distances
from .search import PROBE, BudgetUnreachable, solve_rows, stalled

#: ``stop(probs, rows)``: whether the path of each image ``rows[j]`` stops at its current frame,
#: whose class probabilities are ``probs[j]`` ``(B, N)``; one bool per row.
Stop = Callable[[Tensor, list[int]], Tensor]

__all__ = ["Path", "Stop", "frozen", "iterate"]


@dataclass
class Path:
    """One image's frames ``(K, C, H, W)``, amplifications ``(K,)`` and class probabilities ``(K, N)``."""

    images: Tensor
    alphas: Tensor
    probs: Tensor


def frozen(
    grad: Gradient, alpha_max: list[float | BudgetUnreachable], frames: int
) -> list[Path | BudgetUnreachable]:
    """Each image's frames at amplifications evenly spaced from 0 to its ``alpha_max`` (errors pass)."""
    ok = [i for i, a in enumerate(alpha_max) if not isinstance(a, BudgetUnreachable)]
    out: list[Path | BudgetUnreachable] = list(alpha_max)  # type: ignore[arg-type]
    if not ok:
        return out
    reached = [0.0 if isinstance(a, BudgetUnreachable) else a for a in alpha_max]
    alphas = torch.stack([torch.linspace(0.0, float(a), frames, dtype=torch.float64) for a in reached])
    if len(grad) == 1:  # all frames of one image in chunks
        images = grad.render(alphas[0])[None]
    else:  # one frame per image at a time
        x0 = grad.image
        images = torch.stack([x0] + [grad.render(alphas[:, k]) for k in range(1, frames)], dim=1)
    scored = probabilities(grad.model, images[ok, 1:].flatten(0, 1)).view(len(ok), frames - 1, -1)
    for i, probs in zip(ok, scored, strict=True):
        out[i] = Path(images[i], alphas[i], torch.cat([grad.probs[i : i + 1], probs]))
    return out


@dataclass
class _Line:
    """The clipped images along ``base − size·direction`` in one edit space, one size per row."""

    space: EditSpace
    base: Params
    direction: Params
    cap: float | None

    def params(self, size: Tensor) -> Params:
        moved = tuple(b - per_row(size, d) * d for b, d in zip(self.base, self.direction, strict=True))
        return self.space.cap_phase(moved, self.cap)

    @torch.no_grad()
    def image(self, size: Tensor) -> Tensor:
        return self.space.clip(self.space.images(self.params(size)))


class _Walk:
    """The rows of a batch still on their way, with their frames so far."""

    def __init__(self, grad: Gradient):
        self.grad = grad
        self.live = list(range(len(grad)))
        self.x0 = grad.image
        self.space = grad.space
        self.base = grad.space.zeros(len(grad))
        self.direction = grad.direction
        self.images: list[Tensor] = [self.x0]
        self.probs: list[Tensor | None] = [grad.probs]
        self.alphas: list[Tensor] = [torch.zeros(len(grad), dtype=torch.float64)]

    def path(self, j: int) -> Path:
        """Live row ``j``'s path so far (its last frame scored)."""
        probs = [p[j] for p in self.probs if p is not None]
        if len(probs) != len(self.images):
            raise AssertionError("a frame of the path was not scored")
        return Path(
            torch.stack([t[j] for t in self.images]),
            torch.stack([t[j] for t in self.alphas]),
            torch.stack(probs),
        )

    def keep(self, keep: list[int]) -> None:
        """Go on with live rows ``keep`` only."""
        config = self.grad.config
        self.live = [self.live[j] for j in keep]
        self.x0 = self.x0[keep]
        self.images = [t[keep] for t in self.images]
        self.probs = [None if t is None else t[keep] for t in self.probs]
        self.alphas = [t[keep] for t in self.alphas]
        self.base = tuple(p[keep] for p in self.base)
        self.direction = tuple(p[keep] for p in self.direction)
        source = self.images[-1] if config.regime == "step-local" else self.x0
        self.space = EditSpace(config.family, source, config.luma_only, self.space.pyramid)


def iterate(
    grad: Gradient,
    frames: int,
    *,
    budget: float | Sequence[float] | None = None,
    alpha: float | None = None,
    stop: Stop | None = None,
    report: Callable[[int], None] = lambda done: None,
) -> list[Path | BudgetUnreachable]:
    """The persistent or step-local path of every image of ``grad`` (see the module notes).

    Give ``budget`` (the last frame's L2 distance; one for all, or one per image) or ``alpha`` (its
    amplification).  With
    ``stop``, an image's path ends at the first frame that passes it, or where its edit
    saturates short of the next step's distance, and no error is raised; without it, an
    image whose budget cannot be reached gets :class:`BudgetUnreachable`.
    """
    if (budget is None) == (alpha is None):
        raise ValueError("give an iterative path a budget or an amplification")
    config, model = grad.config, grad.model
    walk = _Walk(grad)
    out: list[Path | BudgetUnreachable | None] = [None] * len(grad)
    budgets = (
        None
        if budget is None
        else [float(b) for b in (budget if isinstance(budget, Sequence) else [budget] * len(grad))]
    )
    step_l2 = None if budgets is None else [b / (frames - 1) for b in budgets]  # per image of grad
    guess: list[float] | None = None
    for k in range(1, frames):
        if k > 1:  # a fresh gradient at the current frames
            if config.regime == "step-local":
                walk.space = EditSpace(config.family, walk.images[-1], config.luma_only, walk.space.pyramid)
                walk.base = walk.space.zeros(len(walk.live))
            step = class_gradient(
                model,
                walk.space,
                walk.base,
                [grad.targets[i] for i in walk.live],
                [grad.sources[i] for i in walk.live],
                config,
                clip=True,
            )
            walk.direction = step.direction
            walk.probs[-1] = step.probs  # its forward pass scored the current frames
            if stop is not None:
                done = stop(step.probs, walk.live).tolist()
                for j in (j for j, d in enumerate(done) if d):
                    out[walk.live[j]] = walk.path(j)
                if any(done):
                    if all(done):
                        break
                    going = [j for j, d in enumerate(done) if not d]
                    walk.keep(going)
                    guess = None if guess is None else [guess[j] for j in going]
        line = _Line(walk.space, walk.base, walk.direction, config.phase_cap)
        if step_l2 is None:
            size = torch.full((len(walk.live),), float(alpha or 0.0) / (frames - 1), dtype=torch.float64)
            images = line.image(size)
        else:
            tried: dict[str, Tensor] = {}  # the last images the search made: those it returns

            def distance(sizes: Tensor, line: _Line = line, tried: dict = tried) -> list[float]:
                tried["sizes"], tried["images"] = sizes, line.image(sizes)
                return distances(tried["images"], walk.x0)

            current = distances(walk.images[-1], walk.x0)
            if guess is None:
                probed = distance(torch.full((len(walk.live),), PROBE))
                guess = [
                    step_l2[i] / s if (s := (d - c) / PROBE) > 0 else 1.0
                    for i, d, c in zip(walk.live, probed, current, strict=True)
                ]
            found = solve_rows(distance, [k * step_l2[i] for i in walk.live], current, guess)
            keep = [j for j, f in enumerate(found) if not isinstance(f, BudgetUnreachable)]
            for j in (j for j, f in enumerate(found) if isinstance(f, BudgetUnreachable)):
                assert budgets is not None
                out[walk.live[j]] = (
                    walk.path(j)
                    if stop is not None
                    else stalled(config.regime, budgets[walk.live[j]], current[j], k, frames)
                )
            if not keep:
                break
            size = torch.tensor([found[j] for j in keep], dtype=torch.float64)
            reuse, last = torch.equal(tried["sizes"][keep], size), tried["images"][keep]
            if len(keep) < len(walk.live):  # drop the rows that cannot go on
                walk.keep(keep)
                line = _Line(walk.space, walk.base, walk.direction, config.phase_cap)
            guess = size.tolist()
            images = last if reuse else line.image(size)
        walk.images.append(images)
        if config.regime == "persistent":
            walk.base = line.params(size)
        walk.probs.append(None)
        walk.alphas.append(walk.alphas[-1] + size)
        report(k)
    else:
        walk.probs[-1] = probabilities(model, walk.images[-1])
        for j, i in enumerate(walk.live):
            out[i] = walk.path(j)
    paths = [p for p in out if p is not None]
    if len(paths) != len(out):
        raise AssertionError("an image of the batch was left without a path")
    return paths
