"""The engine's entry points: :func:`morph` (one image), :func:`morph_batch` and :func:`gradient`.

Every front end builds a :class:`~morphlib.config.MorphConfig` and a
:class:`~morphlib.config.Strength` and calls one of these; a single morph is a batch of one,
walked by the same paths (:mod:`morphlib.engine.paths`).  The keyword arguments of earlier
versions (``family=``, ``regime=``, ``budget=``, ``alpha=``, ...) still work, with a
:class:`DeprecationWarning` saying what to use.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from morphlib.config import MorphConfig, Strength
from morphlib.edits import EditSpace
from morphlib.imaging import grey_rows
from morphlib.labels import class_names, resolve_class

from .auto import STEPS, AutoStrength, Stopper, auto_strength, meets, report
from .classifier import check_model, device_dtype, eval_mode
from .gradient import Gradient, Resolver, class_gradient
from .inputs import prepare_image
from .paths import Path, frozen, iterate
from .result import MorphResult
from .search import BudgetUnreachable

#: A progress argument: ``None`` (a tqdm bar for iterative paths of :func:`morph`), ``False`` (none),
#: ``True`` (a bar) or a callback ``fn(done, total)``.
ProgressArg = bool | Callable[[int, int], None] | None
#: The keywords of earlier versions that are now fields of MorphConfig.
_CONFIG_KEYWORDS = ("family", "regime", "loss", "luma_only", "phase_cap", "smooth_sigma", "pyramid")

__all__ = ["ProgressArg", "config_for", "gradient", "gradients", "morph", "morph_batch"]


# ---------------------------------------------------------------------- arguments
def _arguments(
    config: MorphConfig | None, strength: Strength | None, legacy: dict[str, Any], where: str
) -> tuple[MorphConfig | None, Strength | None]:
    """``config`` and ``strength``, or the ones the old keywords in ``legacy`` describe (with a warning)."""
    unknown = sorted(set(legacy) - set(_CONFIG_KEYWORDS) - {"budget", "alpha"})
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword arguments {unknown}")
    if config is not None and not isinstance(config, MorphConfig):
        raise TypeError(f"config must be a MorphConfig, got {type(config).__name__}")
    if strength is not None and not isinstance(strength, Strength):
        raise TypeError(
            f"strength must be a Strength (Strength.budget(...), ...), got {type(strength).__name__}"
        )
    old_config = {k: legacy[k] for k in _CONFIG_KEYWORDS if k in legacy}
    old_strength = {k: legacy[k] for k in ("budget", "alpha") if legacy.get(k) is not None}
    if old_config:
        if config is not None:
            raise TypeError(f"give config= or the keywords {sorted(old_config)}, not both")
        warnings.warn(
            f"{where}({', '.join(f'{k}=...' for k in old_config)}) is deprecated: pass "
            "config=MorphConfig(...) (morphlib.config)",
            DeprecationWarning,
            stacklevel=3,
        )
        config = MorphConfig(**old_config)
    if old_strength:
        if strength is not None or len(old_strength) > 1:
            raise ValueError("give one strength: strength=, budget= or alpha=")
        kind, value = next(iter(old_strength.items()))
        warnings.warn(
            f"{where}({kind}=...) is deprecated: pass strength=Strength."
            f"{'budget' if kind == 'budget' else 'amplification'}(...)",
            DeprecationWarning,
            stacklevel=3,
        )
        strength = Strength.budget(value) if kind == "budget" else Strength.amplification(value)
    return config, strength


def _check_frames(frames: Any) -> int:
    if isinstance(frames, bool) or not isinstance(frames, int | np.integer):
        raise TypeError(f"frames must be an integer >= 2, got {type(frames).__name__}")
    if frames < 2:
        raise ValueError(f"frames must be an integer >= 2, got {frames!r}")
    return int(frames)


def _reporter(progress: ProgressArg, total: int, desc: str) -> Callable[[int], None]:
    """A per-step callback: a tqdm bar (None or True), the user's callback, or nothing (False)."""
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


# ---------------------------------------------------------------------- gradients
def _resolver(
    model: nn.Module, target: int | str, source: int | str | None, labels_out: list[str]
) -> Resolver:
    """Resolve target and source once the number of classes is known (from the first forward)."""

    def resolve(probs: Tensor) -> tuple[int, int]:
        labels = class_names(model, probs.numel())
        labels_out[:] = labels
        t = resolve_class(target, labels)
        if source is not None:
            return t, resolve_class(source, labels)
        order = torch.argsort(probs, descending=True)
        return t, int(order[0]) if int(order[0]) != t else int(order[1])

    return resolve


def first_gradient(
    model: nn.Module,
    x: Tensor,
    targets: Sequence[int | str],
    sources: Sequence[int | str | None],
    config: MorphConfig,
    *,
    allow_zero: bool = False,
) -> Gradient:
    """The first gradient of the images ``x`` ``(B, C, H, W)`` (all grey or all colour, one size)
    toward ``targets`` (a row each), in the edit space ``config`` gives them (a colour image sent
    to a one-channel model: its luma, :func:`config_for`).

    A row whose gradient is zero cannot be morphed: ``ValueError`` says why, unless
    ``allow_zero`` (the atlas, whose other rows walk on; that row never moves).
    """
    config = config_for(model, x, config)
    space = EditSpace(config.family, x, config.luma_only, config.pyramid.build())
    labels: list[str] = []
    resolve = [_resolver(model, t, s, labels) for t, s in zip(targets, sources, strict=True)]
    n = len(targets)
    with eval_mode(model):
        step = class_gradient(
            model, space, space.zeros(n), [0] * n, [0] * n, config, clip=False, resolve=resolve
        )
    for scale, target in zip(step.scales.tolist(), step.targets, strict=True):
        if scale == 0 and not allow_zero:
            raise ValueError(
                f"the gradient toward {labels[target]!r} is zero for this image: the model is saturated "
                f"(try the margin loss or another target), or the image has nothing for a {config.family} "
                "edit to act on (a blank image?)"
            )
    return Gradient(model, space, step, labels, config)


def config_for(model: nn.Module, x: Tensor, config: MorphConfig) -> MorphConfig:
    """``config`` as it applies to colour images ``x`` sent to ``model``: a one-channel model sees
    their luma only, so only the luma is edited (a chroma edit would paint colour the model never
    asked for; the image keeps its own colours)."""
    channels = getattr(getattr(model, "preprocess", None), "channels", None)
    if x.shape[1] == 3 and channels == 1 and not config.luma_only:
        return config.replace(luma_only=True)
    return config


def _grouped(
    model: nn.Module,
    images: Sequence[Any] | Tensor,
    targets: Sequence[int | str],
    sources: Sequence[int | str | None] | None,
    config: MorphConfig,
) -> list[tuple[list[int], Gradient]]:
    """The first gradients of ``images``, one :class:`Gradient` per group of images that share an edit
    space (one size; grey or colour), with the indices of its images."""
    check_model(model)
    images = list(images)
    sources = [None] * len(images) if sources is None else list(sources)
    if not len(targets) == len(sources) == len(images):
        raise ValueError(
            f"give one target (and source) per image: {len(images)} images, {len(targets)} targets, "
            f"{len(sources)} sources"
        )
    device, dtype = device_dtype(model)
    xs = [prepare_image(image, dtype=dtype, device=device) for image in images]
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(xs):
        groups.setdefault((tuple(x.shape), bool(grey_rows(x)[0])), []).append(i)
    return [
        (
            rows,
            first_gradient(
                model,
                torch.cat([xs[i] for i in rows]),
                [targets[i] for i in rows],
                [sources[i] for i in rows],
                config,
            ),
        )
        for rows in groups.values()
    ]


def gradient(
    model: nn.Module,
    image: Any,
    target: int | str,
    config: MorphConfig | None = None,
    *,
    source: int | str | None = None,
    **legacy: Any,
) -> Gradient:
    """The class gradient of the frozen regime at ``image`` (one forward and one backward pass).

    Parameters are those of :func:`morph`.  The result renders any amplification
    (:meth:`Gradient.render`), finds a budget's amplification (:meth:`Gradient.alpha_for_budget`)
    and serves :func:`morph` (``grad=``) with the same settings, or another regime.
    """
    config, _ = _arguments(config, None, legacy, "gradient")
    ((_, grad),) = _grouped(model, [image], [target], [source], config or MorphConfig())
    return grad


def gradients(
    model: nn.Module,
    images: Sequence[Any] | Tensor,
    targets: Sequence[int | str],
    config: MorphConfig | None = None,
    *,
    sources: Sequence[int | str | None] | None = None,
) -> list[Gradient]:
    """One gradient per image, computed in batches (one forward and backward pass per group of
    images of one size); see :func:`gradient`."""
    out: list[Gradient | None] = [None] * len(list(images))
    for rows, grad in _grouped(model, images, targets, sources, config or MorphConfig()):
        for j, i in enumerate(rows):
            out[i] = grad.row(j)
    return [g for g in out if g is not None]


# ---------------------------------------------------------------------- morphs
def morph(
    model: nn.Module,
    image: Any,
    target: int | str,
    config: MorphConfig | None = None,
    strength: Strength | None = None,
    *,
    frames: int = 16,
    source: int | str | None = None,
    progress: ProgressArg = None,
    grad: Gradient | None = None,
    **legacy: Any,
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
    config : MorphConfig, optional
        Edit family, regime, loss, colour handling, phase cap, smoothing, pyramid
        (default ``MorphConfig()``: the paper's csp-phase, frozen; ``morphlib.config.RECOMMENDED``
        is what the app uses).
    strength : Strength, optional
        ``Strength.budget(l2)``, ``Strength.amplification(alpha)`` or ``Strength.auto(goal, cap_rms)``;
        default: a budget of RMS 0.05 per value.
    frames : int
        Number of frames, at least 2; frame 0 is the input.  With an auto strength on an iterative
        path the frames are those of the path to where the walk stopped, in equal L2 steps.
    source : int or str, optional
        The class moved away from (contrast loss, reports); default: the model's top-1
        on the input (its runner-up if that is the target).
    progress : bool or callable, optional
        Iterative regimes: a tqdm bar by default, ``False`` for none, or ``fn(done, total)``.
    grad : Gradient, optional
        A :func:`gradient` of the same image and target, with the same settings (its regime may
        differ): the frozen regime then takes no backward pass at all.  Other settings: ValueError.

    Returns
    -------
    MorphResult
        With an auto strength, ``result.auto`` says what the search found.

    Raises
    ------
    BudgetUnreachable
        The budget lies beyond what this edit can reach (phase edits are bounded).

    Examples
    --------
    >>> import torch
    >>> from morphlib import MorphConfig, Strength
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3)).eval()
    >>> r = morph(net, torch.rand(3, 16, 16), 2, MorphConfig(family="pixel"), Strength.budget(1.0), frames=3)
    >>> r.frames.shape, round(float(r.l2[-1]), 1)
    (torch.Size([3, 3, 16, 16]), 1.0)
    """
    config, strength = _arguments(config, strength, legacy, "morph")
    frames = _check_frames(frames)
    if grad is None:
        grad = gradient(model, image, target, config or MorphConfig(), source=source)
    else:
        grad = _reused(grad, model, image, target, config)
    (result,) = _run(grad, strength, frames, progress)
    if isinstance(result, BudgetUnreachable):
        raise result
    return result


def _reused(
    grad: Gradient, model: nn.Module, image: Any, target: int | str, config: MorphConfig | None
) -> Gradient:
    """``grad`` for a morph of ``image`` toward ``target`` with ``config``; ValueError if it is another's."""
    if not isinstance(grad, Gradient):
        raise TypeError(f"grad must be a Gradient (from morphlib.gradient), got {type(grad).__name__}")
    if len(grad) != 1:
        raise ValueError(f"grad holds {len(grad)} images; morph takes the gradient of one")
    if grad.model is not model:
        raise ValueError("grad was computed with another model")
    if resolve_class(target, grad.labels) != grad.target:
        raise ValueError(f"grad was computed toward {grad.labels[grad.target]!r}, not {target!r}")
    x = prepare_image(image, dtype=grad.image.dtype, device=grad.image.device)
    if x.shape != grad.image.shape or not torch.equal(x, grad.image):
        raise ValueError("grad was computed for another image")
    return grad if config is None else grad.reconfigured(config_for(model, x, config))


def morph_batch(
    model: nn.Module,
    images: Sequence[Any] | Tensor,
    targets: Sequence[int | str],
    config: MorphConfig | None = None,
    strength: Strength | None = None,
    *,
    frames: int = 16,
    sources: Sequence[int | str | None] | None = None,
    progress: ProgressArg = False,
    **legacy: Any,
) -> list[MorphResult | BudgetUnreachable]:
    """Morph each of ``images`` toward its ``targets`` entry, as a batch.

    Each image gets what :func:`morph` gives it alone, to float tolerance (a batch may round
    differently in the network's kernels): the same gradients, frames and scores.  Images of
    different sizes, or grey and colour images, are batched separately.

    Returns
    -------
    list of MorphResult or BudgetUnreachable
        One entry per image, in order; an image whose budget is out of reach gets the error.

    Examples
    --------
    >>> import torch
    >>> from morphlib import MorphConfig
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3)).eval()
    >>> results = morph_batch(net, torch.rand(2, 3, 16, 16), [1, 2], MorphConfig(family="pixel"), frames=3)
    >>> [r.target for r in results]
    [1, 2]
    """
    config, strength = _arguments(config, strength, legacy, "morph_batch")
    frames = _check_frames(frames)
    out: list[MorphResult | BudgetUnreachable | None] = [None] * len(list(images))
    for rows, grad in _grouped(model, images, targets, sources, config or MorphConfig()):
        for i, result in zip(rows, _run(grad, strength, frames, progress), strict=True):
            out[i] = result
    return [r for r in out if r is not None]


def _run(
    grad: Gradient, strength: Strength | None, frames: int, progress: ProgressArg
) -> list[MorphResult | BudgetUnreachable]:
    """Walk every image of ``grad`` as ``strength`` says: the one place that reads the strength."""
    config = grad.config
    strength = strength or Strength.default_budget(grad.image[0].numel())
    with eval_mode(grad.model):
        if strength.kind == "auto":
            return _auto(grad, strength, frames, progress)
        value = float(strength.value or 0.0)  # a budget or an amplification always has one
        budget = value if strength.kind == "budget" else None
        alpha = value if strength.kind == "amplification" else None
        if config.regime == "frozen":
            alpha_max: list[float | BudgetUnreachable]
            alpha_max = grad.alphas_for_budget(value) if budget is not None else [value] * len(grad)
            paths = frozen(grad, alpha_max, frames)
        else:
            step = _reporter(progress, frames - 1, f"{config.regime} morph")
            paths = iterate(grad, frames, budget=budget, alpha=alpha, report=step)
    run = dict(frames=frames, budget=budget, alpha=alpha)
    return [p if isinstance(p, BudgetUnreachable) else _result(grad, i, p, run) for i, p in enumerate(paths)]


def _auto(
    grad: Gradient, strength: Strength, frames: int, progress: ProgressArg
) -> list[MorphResult | BudgetUnreachable]:
    """Auto strength: each image's path ends where its stopping rule says (or at the cap)."""
    config, x0 = grad.config, grad.image
    cap = strength.cap_l2(x0[0].numel())
    run = dict(frames=frames, budget=None, alpha=None)
    out: list[MorphResult | BudgetUnreachable | None] = [None] * len(grad)
    already = meets(strength, grad.probs, grad.targets).tolist()
    for i in (i for i, done in enumerate(already) if done):  # nothing to walk
        p = float(grad.probs[i, grad.targets[i]])
        found = report(
            strength,
            grad.labels[grad.targets[i]],
            reached=True,
            alpha=0.0,
            l2=0.0,
            prob=p,
            best=p,
            cap=cap,
            saturated_at=None,
        )
        still = Path(
            x0[i].expand(frames, *x0.shape[1:]).clone(),
            torch.zeros(frames, dtype=torch.float64),
            grad.probs[i].expand(frames, -1).clone(),
        )
        out[i] = _result(grad, i, still, run, found)
    todo = [i for i, done in enumerate(already) if not done]
    if config.regime == "frozen":
        for i in todo:
            one = grad.row(i) if len(grad) > 1 else grad
            found = auto_strength(one, strength)
            (path,) = frozen(one, [found.alpha], frames)
            assert isinstance(path, Path)
            out[i] = _result(grad, i, path, run, found)
    elif todo:
        walking = grad.rows(todo)
        step = _reporter(progress, STEPS, f"{config.regime} morph (auto strength)")
        stop = Stopper(strength, walking.probs, walking.targets, cap / STEPS)
        walked = iterate(walking, STEPS + 1, budget=cap, stop=stop, report=step)
        shown = _shown_frames(walking, walked, frames, strength)
        for j, (path, view) in enumerate(zip(walked, shown, strict=True)):
            i = todo[j]
            assert isinstance(path, Path)
            target = grad.targets[i]
            reached = bool(meets(strength, view.probs[-1:], target)[0])
            l2, p = float((view.images[-1] - x0[i]).norm()), float(view.probs[-1, target])
            saturated = l2 if not reached and len(path.images) < STEPS + 1 else None
            found = report(
                strength,
                grad.labels[target],
                reached=reached,
                alpha=float(view.alphas[-1]),
                l2=l2,
                prob=p,
                best=float(torch.cat([path.probs, view.probs])[:, target].max()),
                cap=cap,
                saturated_at=saturated,
                path=config.regime,
                top1=int(view.probs[-1].argmax()) == target,
            )
            out[i] = _result(grad, i, view, run, found)
    return [r for r in out if r is not None]


def _shown_frames(
    grad: Gradient, walked: list[Path | BudgetUnreachable], frames: int, strength: Strength
) -> list[Path]:
    """The ``frames`` frames each auto walk shows: the whole path from the input to where the walk
    stopped, in ``frames`` steps of equal L2 (the path walked again at that budget when the walk took
    fewer steps than that); a walk the second path does not end like (its goal no longer met, or its
    budget out of reach) is shown as walked, its frames evenly thinned, or held where it has fewer."""
    paths = [p for p in walked if isinstance(p, Path)]
    if len(paths) != len(walked):
        raise AssertionError("an auto walk ends where it stops, never in an error")
    x0 = grad.image
    again = [j for j, p in enumerate(paths) if len(p.images) < frames and len(p.images) > 1]
    budgets = [float((paths[j].images[-1] - x0[j]).norm()) for j in again]
    redone = iterate(grad.rows(again), frames, budget=budgets) if again else []
    shown = []
    for j, path in enumerate(paths):
        if j in again:
            new = redone[again.index(j)]
            met = bool(meets(strength, path.probs[-1:], grad.targets[j])[0])
            if isinstance(new, Path) and (
                not met or bool(meets(strength, new.probs[-1:], grad.targets[j])[0])
            ):
                shown.append(new)
                continue
        # as walked, thinned (or its frames held) to the frames asked for
        keep = torch.linspace(0, len(path.images) - 1, frames).round().long()
        shown.append(Path(path.images[keep], path.alphas[keep], path.probs[keep]))
    return shown


def _result(grad: Gradient, i: int, path: Path, run: dict, auto: AutoStrength | None = None) -> MorphResult:
    """Image ``i``'s :class:`MorphResult` from its path."""
    x0 = grad.image[i : i + 1]
    l2 = (path.images - x0).flatten(1).norm(dim=1).double().cpu()
    params = dict(
        grad.config.record(),
        regime=grad.config.regime,
        **run,
        alpha_max=float(path.alphas[-1]),
        gradient_scale=float(grad.scales[i]),
        target=grad.targets[i],
        source=grad.sources[i],
    )
    params["frames"] = len(path.images)
    return MorphResult(
        frames=path.images.detach().float().cpu(),
        alphas=path.alphas.double().cpu(),
        l2=l2,
        probs=path.probs.float().cpu(),
        labels=grad.labels,
        target=grad.targets[i],
        source=grad.sources[i],
        params=params,
        auto=auto,
    )
