"""Class gradients in an edit space, normalised per image (METHOD: the gradient, §4 of docs/method.md).

:func:`class_gradient` takes one forward and one backward pass for a whole batch of
images (in eval mode their rows do not interact).  :class:`Gradient` keeps the first one,
the frozen regime's only gradient, with what it was computed for and with; it renders frames
at any amplification without another backward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from morphlib.config import MorphConfig
from morphlib.edits import EditSpace, Params, params_abs_max, per_row, scale_params
from morphlib.objectives import class_loss
from morphlib.transforms.base import CHUNK_VALUES

from .classifier import BATCH, eval_mode, logits_of, probabilities
from .search import NO_CHANGE, PROBE, BudgetUnreachable, solve_rows

#: Picks a row's (target, source) from its class probabilities ``(N,)``.
Resolver = Callable[[Tensor], tuple[int, int]]

__all__ = ["Gradient", "Step", "class_gradient", "distances"]


@dataclass
class Step:
    """One gradient evaluation of a batch: the normalised direction per row, the raw scale
    (largest absolute value) per row, and the class probabilities where it was evaluated."""

    direction: Params  # (B, ...) each
    scales: Tensor  # (B,)
    probs: Tensor  # (B, N)
    targets: list[int]
    sources: list[int]


def distances(images: Tensor, x0: Tensor) -> list[float]:
    """L2 distance of each image ``(B, C, H, W)`` from its source (row ``b`` of ``x0``)."""
    return [float((image - x).norm()) for image, x in zip(images, x0, strict=True)]


def class_gradient(
    model: nn.Module,
    space: EditSpace,
    base: Params,
    targets: Sequence[int],
    sources: Sequence[int],
    config: MorphConfig,
    clip: bool,
    resolve: Sequence[Resolver] | None = None,
) -> Step:
    """Gradient of ``config.loss`` wrt the edit parameters at ``base``, normalised per row.

    Row ``b`` of ``base`` edits image ``b`` of ``space``.  ``clip`` scores the clipped image
    (as iterative steps do: the frame as shown).  ``resolve[b](probs)``, when given, picks
    row ``b``'s target and source from its probabilities (the first gradient of a morph,
    when the number of classes is not known before the forward pass).
    """
    params = tuple(p.detach().clone().requires_grad_(True) for p in base)
    x = space.images(params)
    if clip:
        x = space.clip(x)
    logits = logits_of(model, x)
    probs = torch.softmax(logits.detach().float(), dim=-1)
    if resolve is not None:
        picked = [pick(row) for pick, row in zip(resolve, probs, strict=True)]
        targets, sources = [t for t, _ in picked], [s for _, s in picked]
    value = torch.stack(
        [
            class_loss(logits[b : b + 1], t, config.loss, s).sum()
            for b, (t, s) in enumerate(zip(targets, sources, strict=True))
        ]
    ).sum()
    grads = torch.autograd.grad(value, params)
    grads = space.smooth_phase(tuple(g.detach() for g in grads), config.smooth_sigma)
    scales = params_abs_max(grads)
    if not torch.isfinite(scales).all():
        raise ValueError("the class gradient is not finite; check the model")
    divisor = torch.where(scales > 0, scales, torch.ones_like(scales))
    direction = tuple(g / per_row(divisor, g) for g in grads)
    return Step(direction, scales.cpu(), probs.cpu(), list(targets), list(sources))


class Gradient:
    """The class gradient of one or more images at their source: the frozen regime's direction.

    Build it with :func:`morphlib.gradient` (one image) or :func:`morphlib.engine.gradients`
    (a batch).  ``direction`` is the normalised gradient ``g`` (largest absolute value 1 per
    image); frame ``α`` has parameters ``−α·g`` (phase increments capped at the config's
    ``phase_cap``), and :meth:`render` returns the clipped frames.  It remembers its
    :class:`~morphlib.config.MorphConfig`: a morph with other settings cannot reuse it.

    Attributes
    ----------
    model : nn.Module
    space : EditSpace
        The source decomposition(s) and edit family.
    direction : tuple of Tensor
        Normalised gradient, one ``(B, ...)`` tensor per parameter group.
    scales : Tensor
        ``(B,)`` largest absolute value of each raw gradient; raw amplification = ``alpha / scale``.
    probs : Tensor
        ``(B, N)`` class probabilities of the inputs.
    targets, sources : list of int
        Per image, the class moved toward and the class moved away from.
    labels : list of str
        Class names.
    config : MorphConfig
        The settings it was computed with.
    """

    def __init__(
        self, model: nn.Module, space: EditSpace, step: Step, labels: list[str], config: MorphConfig
    ):
        self.model = model
        self.space = space
        self.direction = step.direction
        self.scales = step.scales
        self.probs = step.probs
        self.targets = step.targets
        self.sources = step.sources
        self.labels = labels
        self.config = config
        self._l2_cache: dict[float, float] = {}

    def __len__(self) -> int:
        return len(self.targets)

    def _one(self, name: str) -> int:
        if len(self) != 1:
            raise ValueError(f"this gradient holds {len(self)} images; use .{name}s or .row(i)")
        return 0

    @property
    def target(self) -> int:
        """The target class of a one-image gradient."""
        return self.targets[self._one("target")]

    @property
    def source(self) -> int:
        """The source class of a one-image gradient."""
        return self.sources[self._one("source")]

    @property
    def scale(self) -> float:
        """The raw gradient's largest absolute value, for a one-image gradient."""
        return float(self.scales[self._one("scale")])

    @property
    def image(self) -> Tensor:
        """The inputs ``(B, C, H, W)``."""
        return self.space.image

    def rows(self, indices: Sequence[int]) -> Gradient:
        """Images ``indices`` alone (their own edit space, the same directions)."""
        if list(indices) == list(range(len(self))):
            return self
        keep = list(indices)
        space = EditSpace(self.space.family, self.image[keep], self.space.luma_only, self.space.pyramid)
        step = Step(
            tuple(d[keep] for d in self.direction),
            self.scales[keep],
            self.probs[keep],
            [self.targets[i] for i in keep],
            [self.sources[i] for i in keep],
        )
        return Gradient(self.model, space, step, self.labels, self.config)

    def state(self) -> dict:
        """The gradient as tensors (on the CPU) and plain data, without the model: what crosses a
        process border (a ZeroGPU call) with no pickled library object.  :meth:`from_state` undoes it."""
        return dict(
            image=self.image.detach().cpu(),
            direction=[d.detach().cpu() for d in self.direction],
            scales=self.scales.cpu(),
            probs=self.probs.cpu(),
            targets=list(self.targets),
            sources=list(self.sources),
            labels=list(self.labels),
            config=self.config.to_dict(),
        )

    @classmethod
    def from_state(cls, model: nn.Module, state: dict, device: torch.device | str = "cpu") -> Gradient:
        """The gradient :meth:`state` describes, for ``model`` on ``device`` (its source analysed again)."""
        config = MorphConfig.from_dict(state["config"])
        image = state["image"].to(device)
        space = EditSpace(config.family, image, config.luma_only, config.pyramid.build())
        direction = tuple(d.to(device) for d in state["direction"])
        step = Step(
            direction, state["scales"], state["probs"], list(state["targets"]), list(state["sources"])
        )
        return cls(model, space, step, list(state["labels"]), config)

    def row(self, i: int) -> Gradient:
        """Image ``i`` alone, as a one-image gradient."""
        return self.rows([i])

    def reconfigured(self, config: MorphConfig) -> Gradient:
        """This gradient serving ``config``, which may differ in its regime only; ValueError otherwise
        (a gradient of one family, loss or smoothing is no gradient of another)."""
        if config == self.config:
            return self
        mine, theirs = self.config.gradient_fields(), config.gradient_fields()
        if mine != theirs:
            differ = ", ".join(
                f"{k}: {mine.get(k)!r} != {theirs.get(k)!r}"
                for k in sorted(set(mine) | set(theirs))
                if mine.get(k) != theirs.get(k)
            )
            raise ValueError(f"this gradient was computed with other settings ({differ}); compute a new one")
        copy = Gradient(
            self.model,
            self.space,
            Step(self.direction, self.scales, self.probs, self.targets, self.sources),
            self.labels,
            config,
        )
        copy._l2_cache = self._l2_cache
        return copy

    def params(self, alphas: Tensor) -> Params:
        """Edit parameters at amplifications ``alphas``: ``F`` frames of a one-image gradient, or one
        frame per image ``(B,)``."""
        return self.space.cap_phase(scale_params(self.direction, -alphas), self.config.phase_cap)

    @torch.no_grad()
    def render(self, alphas: Sequence[float] | Tensor, clip: bool = True) -> Tensor:
        """Frames at amplifications ``alphas``; ``alpha = 0`` gives the input exactly.

        One image: any number of frames ``(F, C, H, W)``.  Several: one amplification per
        image, one frame each ``(B, C, H, W)``.
        """
        x0 = self.image
        alphas = torch.as_tensor(alphas, dtype=x0.dtype, device=x0.device).reshape(-1)
        if len(self) > 1:
            if len(alphas) != len(self):
                raise ValueError(f"give one amplification per image ({len(self)}), got {len(alphas)}")
            frames = self.space.images(self.params(alphas))
            return self.space.clip(frames) if clip else frames
        out = x0.expand(len(alphas), *x0.shape[1:]).clone()
        moving = torch.nonzero(alphas != 0).flatten()
        # Edits of 16 frames at 224x224 at once spill the CPU caches (152 vs 81 ms).
        per_chunk = max(1, min(BATCH, CHUNK_VALUES // x0[0].numel()))
        for chunk in moving.split(per_chunk) if len(moving) else ():
            frames = self.space.images(self.params(alphas[chunk]))
            out[chunk] = self.space.clip(frames) if clip else frames
        return out

    def frames(self, alpha_max: float, n: int) -> Tensor:
        """``n`` frames of a one-image gradient at amplifications evenly spaced from 0 to ``alpha_max``."""
        return self.render(torch.linspace(0.0, float(alpha_max), int(n)))

    def l2(self, alpha: float) -> float:
        """L2 distance of the (clipped) frame at ``alpha`` from the input (one image)."""
        key = float(alpha)
        if key not in self._l2_cache:
            self._l2_cache[key] = float((self.render([key]) - self.image).norm())
        return self._l2_cache[key]

    def alphas_for_budget(self, budget: float) -> list[float | BudgetUnreachable]:
        """Per image, the amplification whose frame lies at L2 distance ``budget`` from its input
        (within 1 %), or the error saying it is out of reach; the searches run in lockstep."""
        n = len(self)

        def distance(alphas: Tensor) -> list[float]:  # one image: cached, a re-render searches for free
            return [self.l2(float(alphas[0]))] if n == 1 else distances(self.render(alphas), self.image)

        slopes = [d / PROBE for d in distance(torch.full((n,), PROBE))]
        if 0 in slopes:
            raise ValueError(NO_CHANGE)
        guesses = [budget / slope for slope in slopes]
        return solve_rows(distance, [budget] * n, [0.0] * n, guesses)

    def alpha_for_budget(self, budget: float) -> float:
        """:meth:`alphas_for_budget` of a one-image gradient; raises BudgetUnreachable when out of reach."""
        self._one("alpha_for_budget")
        (found,) = self.alphas_for_budget(budget)
        if isinstance(found, BudgetUnreachable):
            raise found
        return found

    @torch.no_grad()
    def score(self, frames: Tensor, first_probs: Tensor | None = None) -> Tensor:
        """Class probabilities ``(F, N)`` of frames, in batches (``first_probs`` ``(N,)`` skips frame 0)."""
        rows = [first_probs[None]] if first_probs is not None else []
        rest = frames[1:] if first_probs is not None else frames
        with eval_mode(self.model):
            rows.append(probabilities(self.model, rest))
        return torch.cat(rows)
