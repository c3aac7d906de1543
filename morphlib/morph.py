"""The morph engine: class gradients in an edit space, amplified into frames (METHOD.md §4–§6).

Conventions
-----------
Gradient normalisation
    The parameter gradient is divided by its largest absolute value (over every
    parameter of the family), so ``alpha`` is the largest single parameter change of
    a frozen frame: radians of phase for ``fourier-phase``/``csp-phase``, nepers of
    log-amplitude for ``csp-amplitude``, pixel value (``[0, 1]`` scale) for ``pixel``.
    ``csp-joint`` normalises phase and log-amplitude together, keeping the gradient's
    own direction.  The raw scale is kept (:attr:`Gradient.scale`): the paper's raw
    amplification is ``alpha / scale``.
L2 distances
    Always measured between the frames as shown and scored, i.e. clipped to
    ``[0, 1]``, and the input, over all channels: ``‖clip(x_k) − x_0‖₂``.
Default strength
    With neither ``alpha`` nor ``budget``, the budget is ``0.05 · sqrt(C·H·W)``, an RMS
    pixel change of 0.05.
Iterative regimes
    ``persistent`` and ``step-local`` take ``frames − 1`` steps, each along a freshly
    computed, normalised gradient.  With a budget, the step size is chosen (by a
    one-dimensional root search, no extra backward passes) so that frame ``k`` lies at
    L2 distance ``k · budget / (frames − 1)`` from the input: frames are evenly spaced in
    distance and the last one meets the budget.  With ``alpha``, every step has size
    ``alpha / (frames − 1)`` in normalised parameter units.  A frame's ``alpha`` is the
    summed step sizes so far.  Both regimes evaluate the gradient at the clipped frame,
    so each step's forward pass scores the frame it starts from.  ``persistent`` keeps
    the parameters anchored to the source decomposition (a gradient flow in ``δ, η``,
    with the phase cap on the accumulated ``δ``); ``step-local`` re-analyses the current
    frame at every step (the phase cap applies per step).
"""

from __future__ import annotations

import contextlib
import difflib
import math
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .edits import FAMILIES, EditSpace, Params, check_family, params_abs_max, scale_params
from .objectives import check_loss, class_loss
from .transforms import SteerablePyramid
from .transforms.base import CHUNK_VALUES

REGIMES: tuple[str, ...] = ("frozen", "persistent", "step-local")
DEFAULT_RMS_BUDGET = 0.05
BATCH = 16  # frames scored per batch, and the most synthesised at once
PROBE = 1e-3  # the step whose L2 change gives a budget search its first guess
NO_CHANGE = (
    "the edit does not change the image as shown: it is zero here, or it pushes values "
    "already at 0 or 1 out of range (a blank or saturated image?); try another image, "
    "target or family"
)
TOPK = 5

ProgressArg = bool | Callable[[int, int], None] | None

__all__ = [
    "FAMILIES",
    "REGIMES",
    "Gradient",
    "MorphResult",
    "class_names",
    "default_budget",
    "gradient",
    "morph",
    "prepare_image",
    "resolve_class",
]


# ---------------------------------------------------------------------- inputs
def prepare_image(image: Any, dtype: torch.dtype = torch.float32, device: Any = "cpu") -> Tensor:
    """Return ``image`` as a ``(1, C, H, W)`` float tensor in ``[0, 1]``.

    Accepts a tensor ``(C, H, W)`` or ``(1, C, H, W)`` with values in ``[0, 1]``, a PIL
    image, or a numpy array ``(H, W)``/``(H, W, C)`` (``uint8``, or float in ``[0, 1]``);
    PIL images and arrays become RGB.
    """
    if not isinstance(image, Tensor):
        image = _array_to_tensor(image)
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(
            f"expected one image of shape (C, H, W) or (1, C, H, W), got {tuple(image.shape)}; "
            "morph one image at a time"
        )
    if image.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels (C, H, W), got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"expected a float image in [0, 1], got {image.dtype}; use x.float() / 255")
    image = image.detach().to(dtype=dtype, device=device)
    if not torch.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    if image.min() < 0 or image.max() > 1:
        raise ValueError(
            f"image values must lie in [0, 1], got [{image.min().item():.3g}, {image.max().item():.3g}]; "
            "divide 8-bit images by 255"
        )
    if min(image.shape[-2:]) < 16:
        raise ValueError(f"image is {tuple(image.shape[-2:])} pixels; the morph needs at least 16 a side")
    return image


def _array_to_tensor(image: Any) -> Tensor:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        if image.mode in ("I", "F") or image.mode.startswith("I;16"):
            # No scale can be told from the mode alone: 16-bit, 32-bit and float pixels need the caller's.
            raise ValueError(
                f"a PIL image in mode {image.mode!r} has no 8-bit scale; pass a float array in [0, 1] "
                "instead, e.g. np.asarray(image) / 65535 for 16-bit"
            )
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a torch.Tensor, PIL image or numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an array (H, W) or (H, W, C), got shape {image.shape}")
    image = image[..., :3] if image.shape[-1] != 1 else np.repeat(image, 3, axis=-1)
    if image.dtype == np.uint8:
        array = image.astype(np.float32) / 255.0
    elif np.issubdtype(image.dtype, np.floating):
        array = image.astype(np.float32)
    else:
        raise ValueError(f"expected a uint8 or float array, got {image.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


def class_names(model: nn.Module, n_classes: int) -> list[str]:
    """Label names from ``model.labels`` when it has them, else the class indices as strings."""
    labels = getattr(model, "labels", None)
    if labels is not None and len(labels) == n_classes:
        return [str(name) for name in labels]
    return [str(i) for i in range(n_classes)]


def resolve_class(target: int | str, labels: Sequence[str]) -> int:
    """The index of class ``target`` (an index, or a label name matched case-insensitively)."""
    n = len(labels)
    if isinstance(target, bool):
        raise ValueError(f"class must be an index or a label name, got {target!r}")
    if isinstance(target, int | np.integer):
        if not 0 <= int(target) < n:
            raise ValueError(
                f"class index {int(target)} is out of range; the model has {n} classes (0..{n - 1})"
            )
        return int(target)
    if not isinstance(target, str):
        raise ValueError(f"class must be an index or a label name, got {type(target).__name__}")
    lowered = [name.lower() for name in labels]
    key = target.strip().lower()
    if key in lowered:
        return lowered.index(key)
    if key.lstrip("-").isdigit():
        return resolve_class(int(key), labels)
    close = difflib.get_close_matches(key, lowered, n=5, cutoff=0.5)
    hint = f"close names: {', '.join(labels[lowered.index(c)] for c in close)}" if close else ""
    if not hint:
        hint = f"e.g. {', '.join(labels[:5])}"
    raise ValueError(f"unknown class {target!r}; give a label name or an index 0..{n - 1} ({hint})")


def default_budget(image: Tensor) -> float:
    """The default image-space L2 budget: an RMS change of 0.05 per value."""
    return DEFAULT_RMS_BUDGET * math.sqrt(image[0].numel())


_PYRAMIDS: dict[tuple, SteerablePyramid] = {}


def _make_pyramid(pyramid: dict | SteerablePyramid | None) -> SteerablePyramid:
    """A SteerablePyramid from settings; shared per settings so that its filter cache is reused."""
    if isinstance(pyramid, SteerablePyramid):
        return pyramid
    settings = dict(pyramid or {})
    key = tuple(sorted((k, repr(v)) for k, v in settings.items()))
    if key not in _PYRAMIDS:
        try:
            _PYRAMIDS[key] = SteerablePyramid(**settings)
        except TypeError as err:
            raise ValueError(
                f"bad pyramid settings {pyramid!r} ({err}); use keys scales, orientations, bandwidth, "
                "downsample, tight"
            ) from None
    return _PYRAMIDS[key]


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.float32


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Run the model in eval mode (batch statistics of one image are meaningless); restore after.

    A model already in eval mode is left alone: switching walks every submodule, which
    costs as much as a small model's forward pass.
    """
    if not model.training:
        yield
        return
    model.eval()
    try:
        yield
    finally:
        model.train(True)


def _check_positive(name: str, value: float | None, allow_zero: bool = False) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return value


# ---------------------------------------------------------------------- root search
class BudgetUnreachable(ValueError):
    """The edit path never reaches the requested L2 budget (phase edits saturate)."""


def stalled(regime: str, budget: float, current: float, step: int, frames: int) -> BudgetUnreachable:
    """The error of an iterative path that cannot take its ``step``-th step toward ``budget``."""
    return BudgetUnreachable(
        f"the L2 budget {budget:.4g} cannot be reached along the {regime} path: it stalls at "
        f"L2 {current:.4g} (step {step} of {frames - 1}); use a smaller budget, another family, "
        "or no phase cap"
    )


def _solve_increasing(
    fn: Callable[[float], float], goal: float, f0: float, guess: float, rtol: float
) -> float:
    """Find ``s > 0`` with ``fn(s) == goal`` to relative tolerance ``rtol``, for ``fn(0) = f0 < goal``.

    ``fn`` is expected to increase from ``s = 0``, roughly as a power of ``s``.  Until the
    goal is bracketed, each step fits ``fn(s) − f0 ≈ a·s^p`` through the last two points;
    once bracketed, regula falsi guarded by bisection.  Typically 2–4 evaluations.
    Raises BudgetUnreachable when ``goal`` cannot be reached.
    """
    search = _root_search(goal, f0, guess, rtol)
    s = next(search)
    while True:
        try:
            s = search.send(fn(s))
        except StopIteration as found:
            return found.value


def _root_search(goal: float, f0: float, guess: float, rtol: float) -> Generator[float, float, float]:
    """The search of :func:`_solve_increasing` as a generator: it yields each ``s`` to try, is
    sent ``fn(s)``, and returns the root, so that many searches can share one batched ``fn``."""
    tol = rtol * goal
    lo, f_lo = 0.0, f0
    hi = f_hi = None
    prev: tuple[float, float] | None = None
    s = max(guess, 1e-12)
    for _ in range(100):
        f = yield s
        if abs(f - goal) <= tol:
            return s
        if f > goal:
            hi, f_hi = s, f
        else:
            if hi is None and (s > 1e6 or (s > 1e3 and f <= f_lo * (1 + 1e-6))):
                raise BudgetUnreachable(
                    f"the L2 budget {goal:.4g} cannot be reached: this edit saturates at about "
                    f"{f:.4g}; use a smaller budget, another family, or no phase cap"
                )
            lo, f_lo = s, f
        last, prev = prev, (s, f)
        if hi is None:  # not bracketed: power-law extrapolation, at most x8 per step
            power = 1.0
            if last is not None and last[0] != s and last[1] > f0 and f > f0:
                power = math.log((f - f0) / (last[1] - f0)) / math.log(s / last[0])
            power = min(max(power, 0.1), 2.0) if math.isfinite(power) else 1.0
            ratio = (goal - f0) / max(f - f0, 1e-30)
            s = s * min(ratio ** (1.0 / power), 8.0)
            continue
        s = lo + (goal - f_lo) * (hi - lo) / (f_hi - f_lo)
        if not lo + 0.02 * (hi - lo) < s < hi - 0.02 * (hi - lo):
            s = 0.5 * (lo + hi)
    raise BudgetUnreachable(f"could not match the L2 budget {goal:.4g} (the edit path is not monotone here)")


# ---------------------------------------------------------------------- gradient
@dataclass
class _Step:
    """One gradient evaluation: normalised direction, raw scale, logits at the evaluation point."""

    direction: Params
    scale: float
    probs: Tensor  # (N,)


@dataclass
class _Steps:
    """Gradient evaluations of a batch, one row per image (see :class:`_Step`)."""

    direction: Params  # (B, ...) each
    scales: Tensor  # (B,)
    probs: Tensor  # (B, N)
    targets: list[int]
    sources: list[int | None]


def _gradient_rows(
    model: nn.Module,
    space: EditSpace,
    base: Params,
    targets: Sequence[int | None],
    loss: str,
    sources: Sequence[int | None],
    smooth_sigma: float | None,
    clip: bool,
    resolve: Sequence[Callable[[Tensor], tuple[int, int]]] | None = None,
) -> _Steps:
    """Gradient of the loss wrt the edit parameters at ``base`` (a leaf copy), normalised per row.

    Row ``b`` of ``base`` edits image ``b`` of ``space``; the batch takes one forward and one
    backward pass (in eval mode its rows do not interact).  ``resolve[b](probs)`` picks the
    target and source of row ``b`` from its class probabilities.
    """
    params = tuple(p.detach().clone().requires_grad_(True) for p in base)
    x = space.images(params)
    if clip:
        x = x.clamp(0.0, 1.0)
    logits = model(x)
    if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        raise ValueError(f"the model must return logits (B, N); got shape {tuple(logits.shape)}")
    probs = torch.softmax(logits.detach().float(), dim=-1)
    if resolve is not None:
        targets, sources = zip(*(pick(row) for pick, row in zip(resolve, probs, strict=True)), strict=True)
    pairs = enumerate(zip(targets, sources, strict=True))
    value = sum(class_loss(logits[b : b + 1], t, loss, s).sum() for b, (t, s) in pairs)
    grads = torch.autograd.grad(value, params)
    grads = space.smooth_phase(tuple(g.detach() for g in grads), smooth_sigma)
    scales = params_abs_max(grads)
    if not torch.isfinite(scales).all():
        raise ValueError("the class gradient is not finite; check the model")
    divisor = torch.where(scales > 0, scales, torch.ones_like(scales))
    direction = tuple(g / _per_row(divisor, g) for g in grads)
    return _Steps(direction, scales.cpu(), probs.cpu(), list(targets), list(sources))


def _per_row(values: float | Tensor, like: Tensor) -> float | Tensor:
    """A number for every row, or ``(B,)`` values shaped to broadcast over rows of ``like``."""
    if not isinstance(values, Tensor):
        return values
    return values.to(like).view(-1, *([1] * (like.ndim - 1)))


def _gradient_step(
    model: nn.Module,
    space: EditSpace,
    base: Params,
    target: int | None,
    loss: str,
    source: int | None,
    smooth_sigma: float | None,
    clip: bool,
    resolve: Callable[[Tensor], tuple[int, int]] | None = None,
) -> tuple[_Step, int, int]:
    """:func:`_gradient_rows` of one image."""
    resolve_rows = None if resolve is None else [resolve]
    rows = _gradient_rows(model, space, base, [target], loss, [source], smooth_sigma, clip, resolve_rows)
    return _Step(rows.direction, float(rows.scales[0]), rows.probs[0]), rows.targets[0], rows.sources[0]


class Gradient:
    """The one-step class gradient of the frozen regime; renders frames with no new backward pass.

    Build it with :func:`gradient`.  ``direction`` is the normalised gradient ``g`` (largest
    absolute value 1); frame ``α`` has parameters ``−α·g`` (phase increments capped at
    ``phase_cap``), and :meth:`render` returns the clipped frames.

    Attributes
    ----------
    space : EditSpace
        The source decomposition and edit family.
    direction : tuple of Tensor
        Normalised gradient, one ``(1, ...)`` tensor per parameter group.
    scale : float
        Largest absolute value of the raw gradient; raw amplification = ``alpha / scale``.
    target, source : int
        Class indices (the source is the class moved away from, by default the model's top-1).
    labels : list of str
        Class names.
    probs : Tensor
        ``(N,)`` class probabilities of the input.
    """

    def __init__(
        self,
        model: nn.Module,
        space: EditSpace,
        step: _Step,
        target: int,
        source: int,
        labels: list[str],
        settings: dict,
    ):
        self.model = model
        self.space = space
        self.direction = step.direction
        self.scale = step.scale
        self.target = target
        self.source = source
        self.labels = labels
        self.probs = step.probs
        self.settings = settings
        self._l2_cache: dict[float, float] = {}

    @property
    def image(self) -> Tensor:
        """The input ``(1, C, H, W)``."""
        return self.space.image

    @property
    def phase_cap(self) -> float | None:
        return self.settings.get("phase_cap")

    def params(self, alphas: Tensor) -> Params:
        """Edit parameters of the frames at amplifications ``alphas`` ``(F,)``."""
        return self.space.cap_phase(scale_params(self.direction, -alphas), self.phase_cap)

    @torch.no_grad()
    def render(self, alphas: Sequence[float] | Tensor, clip: bool = True) -> Tensor:
        """Frames ``(F, C, H, W)`` at amplifications ``alphas``; ``alpha = 0`` is the input exactly."""
        x0 = self.image
        alphas = torch.as_tensor(alphas, dtype=x0.dtype, device=x0.device).reshape(-1)
        out = x0.expand(len(alphas), *x0.shape[1:]).clone()
        moving = torch.nonzero(alphas != 0).flatten()
        # Edits of 16 frames at 224x224 at once spill the CPU caches (152 vs 81 ms).
        per_chunk = max(1, min(BATCH, CHUNK_VALUES // x0[0].numel()))
        for chunk in moving.split(per_chunk) if len(moving) else ():
            frames = self.space.images(self.params(alphas[chunk]))
            out[chunk] = frames.clamp(0.0, 1.0) if clip else frames
        return out

    def frames(self, alpha_max: float, n: int) -> Tensor:
        """``n`` frames at amplifications evenly spaced from 0 to ``alpha_max``."""
        return self.render(torch.linspace(0.0, float(alpha_max), int(n)))

    def l2(self, alpha: float) -> float:
        """L2 distance of the (clipped) frame at ``alpha`` from the input."""
        key = float(alpha)
        if key not in self._l2_cache:
            self._l2_cache[key] = float((self.render([key]) - self.image).norm())
        return self._l2_cache[key]

    def alpha_for_budget(self, budget: float, rtol: float = 0.01) -> float:
        """The amplification whose frame lies at L2 distance ``budget`` from the input (within ``rtol``)."""
        budget = _check_positive("budget", budget)
        slope = self.l2(PROBE) / PROBE
        if slope == 0:
            raise ValueError(NO_CHANGE)
        return _solve_increasing(self.l2, budget, 0.0, budget / slope, rtol)

    @torch.no_grad()
    def score(self, frames: Tensor, first_probs: Tensor | None = None) -> Tensor:
        """Class probabilities ``(F, N)`` of frames, in batches (``first_probs`` skips frame 0)."""
        rows = [first_probs[None]] if first_probs is not None else []
        rest = frames[1:] if first_probs is not None else frames
        with _eval_mode(self.model):
            rows.append(_probabilities(self.model, rest))
        return torch.cat(rows)


@torch.no_grad()
def _probabilities(model: nn.Module, frames: Tensor) -> Tensor:
    """Class probabilities ``(F, N)`` of ``frames``, scored ``BATCH`` at a time, on the CPU."""
    return torch.cat([torch.softmax(model(chunk).float(), dim=-1).cpu() for chunk in frames.split(BATCH)])


def _setup(
    model: nn.Module,
    image: Any,
    target: int | str,
    family: str,
    loss: str,
    source: int | str | None,
    luma_only: bool,
    phase_cap: float | None,
    smooth_sigma: float | None,
    pyramid: dict | SteerablePyramid | None,
) -> tuple[EditSpace, dict]:
    _check_settings(model, family, loss, phase_cap, smooth_sigma)
    device, dtype = _model_device_dtype(model)
    x0 = prepare_image(image, dtype=dtype, device=device)
    space = EditSpace(family, x0, luma_only=luma_only, pyramid=_make_pyramid(pyramid))
    settings = dict(
        _settings(space, loss, phase_cap, smooth_sigma), requested_target=target, requested_source=source
    )
    return space, settings


def _check_settings(
    model: nn.Module, family: str, loss: str, phase_cap: float | None, smooth_sigma: float | None
) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module (e.g. a ZooModel), got {type(model).__name__}")
    check_family(family)
    check_loss(loss)
    _check_positive("phase_cap", phase_cap)
    _check_positive("smooth_sigma", smooth_sigma, allow_zero=True)


def _settings(space: EditSpace, loss: str, phase_cap: float | None, smooth_sigma: float | None) -> dict:
    """The settings of a morph in ``space`` that its result records."""
    return dict(
        family=space.family,
        loss=loss,
        luma_only=space.luma_only,
        phase_cap=phase_cap,
        smooth_sigma=smooth_sigma,
        pyramid=_pyramid_settings(space.pyramid) if space.family.startswith("csp") else None,
    )


def _pyramid_settings(pyr: SteerablePyramid) -> dict:
    return dict(
        scales=pyr.scales,
        orientations=pyr.orientations,
        bandwidth=pyr.bandwidth,
        downsample=pyr.downsample,
        tight=pyr.tight,
    )


def _resolver(model: nn.Module, target: int | str, source: int | str | None, labels_out: list):
    """Resolve target and source once the number of classes is known (from the first forward)."""

    def resolve(probs: Tensor) -> tuple[int, int]:
        labels = class_names(model, probs.numel())
        labels_out[:] = labels
        t = resolve_class(target, labels)
        if source is not None:
            s = resolve_class(source, labels)
        else:
            order = torch.argsort(probs, descending=True)
            s = int(order[0]) if int(order[0]) != t else int(order[1])
        return t, s

    return resolve


def gradient(
    model: nn.Module,
    image: Any,
    target: int | str,
    *,
    family: str = "csp-phase",
    loss: str = "nll",
    source: int | str | None = None,
    luma_only: bool = False,
    phase_cap: float | None = None,
    smooth_sigma: float | None = None,
    pyramid: dict | SteerablePyramid | None = None,
) -> Gradient:
    """The class gradient of the frozen regime at ``image`` (one forward and one backward pass).

    Parameters are those of :func:`morph`.  The result renders any amplification with
    :meth:`Gradient.render` / :meth:`Gradient.frames` and finds a budget's amplification
    with :meth:`Gradient.alpha_for_budget`.
    """
    space, settings = _setup(
        model, image, target, family, loss, source, luma_only, phase_cap, smooth_sigma, pyramid
    )
    labels: list[str] = []
    with _eval_mode(model):
        step, t, s = _gradient_step(
            model,
            space,
            space.zeros(1),
            None,
            loss,
            None,
            smooth_sigma,
            clip=False,
            resolve=_resolver(model, target, source, labels),
        )
    if step.scale == 0:
        raise _zero_gradient(labels[t], family)
    return Gradient(model, space, step, t, s, labels, settings)


def _zero_gradient(label: str, family: str) -> ValueError:
    return ValueError(
        f"the gradient toward {label!r} is zero for this image: the model is saturated "
        f"(try the margin loss or another target), or the image has nothing for a {family} edit "
        "to act on (a blank image?)"
    )


# ---------------------------------------------------------------------- result
@dataclass
class MorphResult:
    """A morph: frames with their amplification, distance and class probabilities.

    Attributes
    ----------
    frames : Tensor
        ``(F, C, H, W)`` in ``[0, 1]``; frame 0 is the input, exactly.
    alphas : Tensor
        ``(F,)`` amplification of each frame (normalised units, see the module notes).
    l2 : Tensor
        ``(F,)`` L2 distance of each frame from the input.
    probs : Tensor
        ``(F, N)`` class probabilities of each frame.
    labels : list of str
        Class names.
    target, source : int
        Target class and source class (moved away from).
    params : dict
        Every setting used (family, regime, loss, budget, alpha_max, gradient scale, ...).
    """

    frames: Tensor
    alphas: Tensor
    l2: Tensor
    probs: Tensor
    labels: list[str]
    target: int
    source: int
    params: dict = field(default_factory=dict)

    @property
    def target_probs(self) -> Tensor:
        """``(F,)`` probability of the target class per frame."""
        return self.probs[:, self.target]

    @property
    def source_probs(self) -> Tensor:
        """``(F,)`` probability of the source class per frame."""
        return self.probs[:, self.source]

    @property
    def topk(self) -> list[list[tuple[str, float]]]:
        """Per frame, the top-5 ``(label, probability)`` pairs."""
        k = min(TOPK, self.probs.shape[1])
        values, indices = self.probs.topk(k, dim=1)
        return [
            [(self.labels[i], float(v)) for v, i in zip(vs, idx, strict=True)]
            for vs, idx in zip(values.tolist(), indices.tolist(), strict=True)
        ]

    @property
    def top1(self) -> list[str]:
        """Per frame, the predicted label."""
        return [self.labels[i] for i in self.probs.argmax(dim=1).tolist()]

    def table(self) -> str:
        """A per-frame text table: alpha, L2, source and target probability, top-1."""
        src, tgt = self.labels[self.source], self.labels[self.target]
        head = f"{'frame':>5} {'alpha':>9} {'L2':>8} {'p(' + src + ')':>12} {'p(' + tgt + ')':>12}  top-1"
        rows = [head]
        for k in range(len(self.alphas)):
            rows.append(
                f"{k:>5} {float(self.alphas[k]):>9.4g} {float(self.l2[k]):>8.4f} "
                f"{float(self.source_probs[k]):>12.4f} {float(self.target_probs[k]):>12.4f}  {self.top1[k]}"
            )
        return "\n".join(rows)

    def summary(self) -> dict:
        """A JSON-serialisable summary: settings and per-frame numbers."""
        return dict(
            params=self.params,
            source=dict(index=self.source, label=self.labels[self.source]),
            target=dict(index=self.target, label=self.labels[self.target]),
            frames=[
                dict(
                    index=k,
                    alpha=float(self.alphas[k]),
                    l2=float(self.l2[k]),
                    p_source=float(self.source_probs[k]),
                    p_target=float(self.target_probs[k]),
                    top5=[[label, p] for label, p in self.topk[k]],
                )
                for k in range(len(self.alphas))
            ],
        )

    def save(self, out_dir: str | Path, **kwargs: Any) -> dict[str, Path]:
        """Write frames, GIF, MP4, contact sheet, probability plot and JSON summary to ``out_dir``.

        Keyword arguments go to :func:`morphlib.render.save_result`.
        """
        from .render import save_result

        return save_result(self, out_dir, **kwargs)


# ---------------------------------------------------------------------- regimes
def _progress(progress: ProgressArg, total: int, desc: str) -> Callable[[int], None]:
    """A per-step callback: a tqdm bar (default), the user's callback, or nothing."""
    if callable(progress):
        return lambda done: progress(done, total)
    if progress is False:
        return lambda done: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, leave=False)

    def update(done: int) -> None:
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _frozen(grad: Gradient, frames: int, budget: float | None, alpha: float) -> tuple[Tensor, Tensor, float]:
    alpha_max = grad.alpha_for_budget(budget) if budget is not None else alpha
    alphas = torch.linspace(0.0, alpha_max, frames, dtype=torch.float64)
    return grad.render(alphas), alphas, alpha_max


@dataclass
class _Line:
    """The clipped image along ``base − size·direction`` in one edit space."""

    space: EditSpace
    base: Params
    direction: Params
    cap: float | None

    def params(self, size: float | Tensor) -> Params:
        """Parameters ``size`` along the line: one size, or one per row ``(B,)``."""
        moved = tuple(b - _per_row(size, d) * d for b, d in zip(self.base, self.direction, strict=True))
        return self.space.cap_phase(moved, self.cap)

    @torch.no_grad()
    def image(self, size: float | Tensor) -> Tensor:
        return self.space.images(self.params(size)).clamp(0.0, 1.0)


def _iterate(
    model: nn.Module,
    grad: Gradient,
    regime: str,
    frames: int,
    budget: float | None,
    alpha: float | None,
    report: Callable[[int], None],
    stop: Callable[[Tensor], bool] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Persistent or step-local path of ``frames − 1`` normalised gradient steps (see module notes).

    With ``stop`` (a test of a frame's class probabilities) the path ends at the first frame
    that passes it, or where the edit saturates short of the next step's distance: the
    frames so far are returned, and no error is raised.
    """
    s = grad.settings
    x0 = grad.image
    space, base, direction = grad.space, grad.space.zeros(1), grad.direction
    images, probs, alphas = [x0], [grad.probs], [0.0]
    step_l2 = budget / (frames - 1) if budget is not None else None
    guess = None
    for k in range(1, frames):
        if k > 1:  # a fresh gradient at the current frame
            if regime == "step-local":
                space = EditSpace(s["family"], images[-1], luma_only=s["luma_only"], pyramid=space.pyramid)
                base = space.zeros(1)
            step, _, _ = _gradient_step(
                model, space, base, grad.target, s["loss"], grad.source, s["smooth_sigma"], clip=True
            )
            direction = step.direction
            probs[-1] = step.probs  # its forward pass scored the current frame
            if stop is not None and stop(step.probs):
                break
        line = _Line(space, base, direction, s["phase_cap"])
        tried: dict[float, Tensor] = {}  # the last image the search made: usually the one it returns
        if step_l2 is None:
            size = alpha / (frames - 1)
        else:
            current = float((images[-1] - x0).norm())

            def distance(size: float, line: _Line = line, tried: dict = tried) -> float:
                tried.clear()
                tried[size] = line.image(size)
                return float((tried[size] - x0).norm())

            if guess is None:
                slope = (distance(PROBE) - current) / PROBE
                guess = step_l2 / slope if slope > 0 else 1.0
            try:
                size = _solve_increasing(distance, k * step_l2, current, guess, rtol=0.01)
            except BudgetUnreachable as err:
                if stop is None:
                    raise stalled(regime, budget, current, k, frames) from err
                break  # saturated: the path ends here
            guess = size
        images.append(tried[size] if size in tried else line.image(size))
        if regime == "persistent":
            base = line.params(size)
        probs.append(None)
        alphas.append(alphas[-1] + size)
        report(k)
    if probs[-1] is None:
        probs[-1] = grad.score(images[-1])[0]
    return torch.cat(images), torch.tensor(alphas, dtype=torch.float64), torch.stack(probs)


def morph(
    model: nn.Module,
    image: Any,
    target: int | str,
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
    source: int | str | None = None,
    progress: ProgressArg = None,
    grad: Gradient | None = None,
) -> MorphResult:
    """Morph ``image`` toward class ``target`` along the classifier's gradient.

    Parameters
    ----------
    model : nn.Module
        A ZooModel, or any module mapping ``[0, 1]`` images ``(B, C, H, W)`` to logits.
    image : Tensor, PIL image or numpy array
        ``(C, H, W)`` or ``(1, C, H, W)`` in ``[0, 1]``; at least 16 px a side.
    target : int or str
        Target class: an index, or a label name (case-insensitive).
    family : str
        Edit family: ``pixel``, ``fourier-phase``, ``csp-phase``, ``csp-joint``, ``csp-amplitude``.
    regime : str
        ``frozen`` (one gradient, linear extrapolation), ``persistent`` (gradient flow of
        parameters anchored to the source) or ``step-local`` (re-analyse every frame).
    frames : int
        Number of frames, at least 2; frame 0 is the input.
    budget : float, optional
        L2 distance of the last frame from the input (met within 1 %).
    alpha : float, optional
        Raw amplification of the last frame in normalised units (largest parameter change);
        give ``alpha`` or ``budget``, not both.  Default: ``budget = 0.05·sqrt(C·H·W)``.
    loss : str
        ``nll``, ``margin`` or ``contrast``.
    luma_only : bool
        Edit only the YIQ luma, keep the chroma.
    phase_cap : float, optional
        Largest phase increment in radians.
    smooth_sigma : float, optional
        Amplitude-weighted Gaussian smoothing of the phase gradient (pixels of each band).
    pyramid : dict or SteerablePyramid, optional
        Settings of the CSP (``scales``, ``orientations``, ``bandwidth``, ``downsample``, ``tight``).
    source : int or str, optional
        The class moved away from (contrast loss, reports); default: the model's top-1
        on the input (its runner-up if that is the target).
    progress : bool or callable, optional
        Iterative regimes: a tqdm bar by default, ``False`` for none, or ``fn(done, total)``.
    grad : Gradient, optional
        A cached :func:`gradient` of the same image, target and settings (frozen regime:
        no backward pass at all).

    Returns
    -------
    MorphResult
    """
    frames, budget, alpha = _check_run(regime, frames, budget, alpha)
    if grad is None:
        grad = gradient(
            model,
            image,
            target,
            family=family,
            loss=loss,
            source=source,
            luma_only=luma_only,
            phase_cap=phase_cap,
            smooth_sigma=smooth_sigma,
            pyramid=pyramid,
        )
    if budget is None and alpha is None:
        budget = default_budget(grad.image)
    with _eval_mode(model):
        if regime == "frozen":
            images, alphas, alpha_max = _frozen(grad, frames, budget, alpha)
            probs = grad.score(images, first_probs=grad.probs)
        else:
            report = _progress(progress, frames - 1, f"{regime} morph")
            images, alphas, probs = _iterate(model, grad, regime, frames, budget, alpha, report)
            alpha_max = float(alphas[-1])
    return path_result(grad, regime, images, alphas, probs, budget=budget, alpha=alpha, alpha_max=alpha_max)


def path_result(
    grad: Gradient,
    regime: str,
    images: Tensor,
    alphas: Tensor,
    probs: Tensor,
    *,
    budget: float | None,
    alpha: float | None,
    alpha_max: float,
) -> MorphResult:
    """The :class:`MorphResult` of a path of frames from ``grad``'s image (frame 0)."""
    run = dict(regime=regime, frames=len(images), budget=budget, alpha=alpha, alpha_max=float(alpha_max))
    g = grad
    return _result(images, alphas, probs, g.image, g.settings, run, g.labels, g.target, g.source, g.scale)


def _check_run(
    regime: str, frames: Any, budget: float | None, alpha: float | None
) -> tuple[int, float | None, float | None]:
    """Checked ``frames, budget, alpha`` of a morph in ``regime``."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; choose one of {', '.join(REGIMES)}")
    if isinstance(frames, bool) or not isinstance(frames, int | np.integer) or frames < 2:
        raise ValueError(f"frames must be an integer >= 2, got {frames!r}")
    if budget is not None and alpha is not None:
        raise ValueError("give either alpha or budget, not both")
    return int(frames), _check_positive("budget", budget), _check_positive("alpha", alpha, allow_zero=True)


def _result(
    images: Tensor,
    alphas: Tensor,
    probs: Tensor,
    x0: Tensor,
    settings: dict,
    run: dict,
    labels: list[str],
    target: int,
    source: int,
    scale: float,
) -> MorphResult:
    """The :class:`MorphResult` of frames ``images`` of ``x0`` (``run``: regime, frames, budget, ...)."""
    l2 = (images - x0).flatten(1).norm(dim=1).double().cpu()
    params = dict(settings, **run, gradient_scale=scale, target=target, source=source)
    params = {k: v for k, v in params.items() if not k.startswith("requested_")}
    return MorphResult(
        frames=images.detach().float().cpu(),
        alphas=alphas.double().cpu(),
        l2=l2,
        probs=probs.float().cpu(),
        labels=labels,
        target=target,
        source=source,
        params=params,
    )
