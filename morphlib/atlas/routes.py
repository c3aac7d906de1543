"""The atlas: how far the image lies from every other class, each walked toward in one batch.

:func:`atlas` repeats the image once per target class and walks all the rows in lockstep
along the config's path (one forward and one backward pass per step for the whole batch,
:func:`morphlib.engine.paths.iterate`), each row stopping at the first frame whose top-1 is its
target: the auto strength with a top-1 goal, ``Strength.auto(goal=None, cap_rms=...)``, that a
single :func:`morphlib.morph` takes.  A row's *distance* is the L2 distance of that frame from
the image (``math.inf`` when the class does not become top-1 within the cap).  On the frozen
regime each row's distance is :func:`morphlib.engine.auto_strength`'s (no backward pass beyond
the first).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from morphlib.config import AUTO_MAX_RMS, RECOMMENDED, MorphConfig, Strength
from morphlib.engine import auto_strength, first_gradient, prepare_image
from morphlib.engine.auto import STEPS, Stopper, meets
from morphlib.engine.classifier import check_model, device_dtype, eval_mode, probabilities
from morphlib.engine.paths import Path as Walked
from morphlib.engine.paths import frozen, iterate
from morphlib.labels import class_names, resolve_class

#: Above this many classes, the atlas defaults to the driver's runner-ups rather than every class.
MAX_ALL_CLASSES = 20
#: How many runner-ups (the classes the driver ranks next after its top-1) a large label set gets.
RUNNERS_UP = 8

__all__ = ["MAX_ALL_CLASSES", "RUNNERS_UP", "Atlas", "Route", "atlas", "atlases", "default_targets"]


@dataclass
class Route:
    """The walk toward one class.

    Attributes
    ----------
    target : int
    label : str
    distance : float
        L2 distance from the image of the first frame whose top-1 is ``target``; ``math.inf``
        when no frame within the cap is (``saturated``: the edit stopped growing first).
    l2 : Tensor
        ``(K,)`` L2 distance of each frame of the walk from the image.
    probs : Tensor
        ``(K, N)`` class probabilities of each frame.
    last : Tensor
        ``(C, H, W)`` the walk's last frame: where the class became top-1, or the cap.
    saturated : bool
    """

    target: int
    label: str
    distance: float
    l2: Tensor
    probs: Tensor
    last: Tensor
    saturated: bool = False

    @property
    def reached(self) -> bool:
        return math.isfinite(self.distance)

    @property
    def target_probs(self) -> Tensor:
        """``(K,)`` the target's probability along the walk."""
        return self.probs[:, self.target]


@dataclass
class Atlas:
    """The image's distance to each class (see :func:`atlas`).

    Attributes
    ----------
    image : Tensor
        ``(C, H, W)`` the input.
    probs : Tensor
        ``(N,)`` its class probabilities.
    labels : list of str
    source : int
        The driver's top-1 on the image.
    routes : list of Route
        One per target, in the order asked for.
    config : MorphConfig
    cap : float
        The search cap, as an L2 distance; ``step`` is one step of an iterative walk (``cap / STEPS``).
    """

    image: Tensor
    probs: Tensor
    labels: list[str]
    source: int
    routes: list[Route]
    config: MorphConfig
    cap: float
    cap_rms: float
    params: dict = field(default_factory=dict)

    @property
    def step(self) -> float:
        """The L2 resolution of an iterative walk (a frozen one is refined further)."""
        return self.cap / STEPS

    @property
    def distances(self) -> dict[str, float]:
        """Label -> distance, in the order asked for (``math.inf``: not within the cap)."""
        return {r.label: r.distance for r in self.routes}

    def ranked(self) -> list[Route]:
        """The routes, nearest class first (unreached last, by their best target probability)."""
        return sorted(self.routes, key=lambda r: (r.distance, -float(r.target_probs.max())))

    def route(self, target: int | str) -> Route:
        """The route toward ``target`` (index or label)."""
        index = resolve_class(target, self.labels)
        for r in self.routes:
            if r.target == index:
                return r
        raise ValueError(f"the atlas has no route toward {self.labels[index]!r}")

    @property
    def last_frames(self) -> Tensor:
        """``(T, C, H, W)`` each route's last frame, in the order asked for."""
        return torch.stack([r.last for r in self.routes])

    def table(self) -> str:
        """The ranked distances as text."""
        head = f"{'rank':>4}  {'class':<16} {'L2':>8} {'RMS':>7} {'p(last)':>8}"
        values = self.image.numel()
        lines = [head]
        for k, r in enumerate(self.ranked(), start=1):
            where = (
                f"{r.distance:>8.3f} {r.distance / math.sqrt(values):>7.3f}"
                if r.reached
                else (f"{'> cap':>8} {'':>7}" + ("  (saturates)" if r.saturated else ""))
            )
            lines.append(f"{k:>4}  {r.label[:16]:<16} {where} {float(r.target_probs[-1]):>8.3f}")
        return "\n".join(lines)

    def summary(self) -> dict:
        """JSON-ready: the settings, the source, and each class's distance (``null``: beyond the cap)."""
        return dict(
            source=dict(index=self.source, label=self.labels[self.source], p=float(self.probs[self.source])),
            config=dict(self.config.record(), regime=self.config.regime),
            goal="top-1",
            cap_l2=self.cap,
            cap_rms=self.cap_rms,
            step_l2=self.step,
            **self.params,
            classes=[
                dict(
                    rank=k,
                    index=r.target,
                    label=r.label,
                    distance=r.distance if r.reached else None,
                    saturated=r.saturated,
                    p_last=float(r.target_probs[-1]),
                    top1_last=self.labels[int(r.probs[-1].argmax())],
                    frames=len(r.l2),
                )
                for k, r in enumerate(self.ranked(), start=1)
            ],
        )

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``distances.png`` (ranked bar chart), ``frames.png`` (the last frames) and ``atlas.json``."""
        from .figures import save_atlas

        return save_atlas(self, Path(out))


def default_targets(probs: Tensor, source: int, runners_up: int = RUNNERS_UP) -> list[int]:
    """Every class but ``source``; above :data:`MAX_ALL_CLASSES` classes, the ``runners_up`` most probable.

    >>> default_targets(torch.tensor([0.1, 0.6, 0.3]), 1)
    [0, 2]
    >>> default_targets(torch.arange(30.0).softmax(0), 29, runners_up=3)
    [28, 27, 26]
    """
    n = probs.numel()
    if n <= MAX_ALL_CLASSES:
        return [c for c in range(n) if c != source]
    order = [int(c) for c in torch.argsort(probs, descending=True) if int(c) != source]
    return order[:runners_up]


def atlas(
    model: nn.Module,
    image: Any,
    targets: Sequence[int | str] | None = None,
    config: MorphConfig | None = None,
    *,
    cap_rms: float = AUTO_MAX_RMS,
    runners_up: int = RUNNERS_UP,
    progress: Callable[[int, int], None] | None = None,
) -> Atlas:
    """Walk from ``image`` toward every other class at once and measure where each becomes top-1.

    Parameters
    ----------
    model : nn.Module
        A ZooModel, or any module mapping ``[0, 1]`` images to logits.
    image : Tensor, PIL image or numpy array
        One image, as :func:`morphlib.morph` takes it.
    targets : sequence of int or str, optional
        The classes to walk toward (indices or names); default: every class but the driver's
        top-1, or with more than :data:`MAX_ALL_CLASSES` classes its ``runners_up`` next choices.
    config : MorphConfig, optional
        The path's settings (default :data:`~morphlib.config.RECOMMENDED`).
    cap_rms : float
        The search cap, an RMS change per value (as ``Strength.auto``'s).
    progress : callable, optional
        ``fn(done, total)`` after each step of an iterative walk.

    Returns
    -------
    Atlas
        Each distance is what ``morph(model, image, target, config, Strength.auto(None, cap_rms))``
        finds, to within one step of the path (``atlas.step``).

    Examples
    --------
    >>> from morphlib.zoo import load
    >>> from morphlib.data import load as load_data
    >>> images, _, _ = load_data("digits", split="test", n=1, seed=0)
    >>> a = atlas(load("digits-cnn-robust"), images[0], targets=["4", "9"])
    >>> a.labels[a.source], sorted(a.distances)
    ('6', ['4', '9'])
    """
    (found,) = atlases(
        model, [image], targets, config, cap_rms=cap_rms, runners_up=runners_up, progress=progress
    )
    return found


def atlases(
    model: nn.Module,
    images: Sequence[Any] | Tensor,
    targets: Sequence[int | str] | None = None,
    config: MorphConfig | None = None,
    *,
    cap_rms: float = AUTO_MAX_RMS,
    runners_up: int = RUNNERS_UP,
    progress: Callable[[int, int], None] | None = None,
) -> list[Atlas]:
    """The :func:`atlas` of each of ``images`` (all of one size, all grey or all colour), every row of
    every image walked in one batch; ``targets`` (if given) apply to each image."""
    config = config or RECOMMENDED
    if not isinstance(config, MorphConfig):
        raise TypeError(f"config must be a MorphConfig, got {type(config).__name__}")
    strength = Strength.auto(goal=None, cap_rms=cap_rms)
    check_model(model)
    device, dtype = device_dtype(model)
    xs = torch.cat([prepare_image(image, dtype=dtype, device=device) for image in images])
    with eval_mode(model):
        probs = probabilities(model, xs)
        labels = class_names(model, probs.shape[1])
        sources = [int(p.argmax()) for p in probs]
        wanted = None if targets is None else list(dict.fromkeys(resolve_class(t, labels) for t in targets))
        if wanted == []:
            raise ValueError("no target class to walk toward: give at least one class")
        chosen = [wanted or default_targets(p, s, runners_up) for p, s in zip(probs, sources, strict=True)]
        rows = [(i, t) for i, c in enumerate(chosen) for t in c if t != sources[i]]
        found = _walk(model, xs, rows, sources, labels, config, strength, progress) if rows else {}
    out = []
    for i, (x, p, source) in enumerate(zip(xs, probs, sources, strict=True)):
        routes = []
        for t in chosen[i]:
            if t == source:  # already there
                zero = torch.zeros(1, dtype=torch.float64)
                routes.append(Route(t, labels[t], 0.0, zero, p[None], x.detach().float().cpu()))
            else:
                routes.append(found[(i, t)])
        cap = strength.cap_l2(x.numel())
        out.append(Atlas(x.detach().cpu(), p, labels, source, routes, config, cap, strength.cap_rms))
    return out


def _walk(
    model: nn.Module,
    xs: Tensor,
    rows: list[tuple[int, int]],
    sources: list[int],
    labels: list[str],
    config: MorphConfig,
    strength: Strength,
    progress: Callable[[int, int], None] | None,
) -> dict[tuple[int, int], Route]:
    """One batch, a row per (image, target), walked to each row's first top-1."""
    n = len(rows)
    x = xs[[i for i, _ in rows]]
    targets = [t for _, t in rows]
    grad = first_gradient(model, x, targets, [sources[i] for i, _ in rows], config, allow_zero=True)
    config = grad.config  # a colour image through a grey model: its luma only
    cap = strength.cap_l2(x[0].numel())
    if config.regime == "frozen":
        found = [auto_strength(grad.row(j), strength) for j in range(n)]
        paths = frozen(grad, [f.alpha for f in found], STEPS + 1)
    else:
        report = (lambda done: progress(done, STEPS)) if progress is not None else (lambda done: None)
        stop = Stopper(strength, grad.probs, targets, cap / STEPS)  # the engine's auto walk's own stop
        paths = iterate(grad, STEPS + 1, budget=cap, stop=stop, report=report)
    out = {}
    for j, (row, path) in enumerate(zip(rows, paths, strict=True)):
        if not isinstance(path, Walked):
            raise AssertionError("an auto walk ends where it stops, never in an error")
        t = row[1]
        l2 = (path.images - x[j]).flatten(1).norm(dim=1).double().cpu()
        reached = bool(meets(strength, path.probs[-1:], t)[0])
        if config.regime == "frozen":
            saturated = not reached and found[j].saturated_at is not None
        else:
            saturated = not reached and len(path.images) < STEPS + 1
        distance = float(l2[-1]) if reached else math.inf
        last = path.images[-1].detach().float().cpu()
        out[row] = Route(t, labels[t], distance, l2, path.probs.float().cpu(), last, saturated)
    return out
