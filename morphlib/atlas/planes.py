"""The plane: the classifier's top-1 class over a 2-D slice of the edit space through the image.

:func:`plane` takes the class gradients toward two classes ``a`` and ``b`` at the image (one
batched forward and backward pass), each normalised to unit length in the edit parameters,
and classifies the images whose parameters are ``u·d_a + v·d_b`` on an ``n × n`` grid centred
on the image (``u = v = 0``).  Everything after the two gradients is batched synthesis and
batched forward passes: no backward pass.

What the plane is and is not: a *linear* slice, in the *edit parameters* (phases and
log-amplitudes of the pyramid for ``csp-*``; not pixels), of a curved landscape.  Its axes are
the frozen directions toward ``a`` and ``b`` at the image, so the straight lines drawn on it are
frozen paths; an iterative (persistent, step-local) path bends away from the plane after its
first step, and the atlas's distances are measured along those bent paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from morphlib.config import AUTO_MAX_RMS, RECOMMENDED, MorphConfig
from morphlib.edits import Params
from morphlib.engine import BudgetUnreachable, Gradient, gradients
from morphlib.engine.classifier import BATCH, eval_mode, probabilities
from morphlib.labels import resolve_class

#: Default grid size (odd, so that the image itself is the centre point).
GRID = 15

__all__ = ["GRID", "Plane", "plane"]


@dataclass
class Plane:
    """The top-1 class over the plane spanned by the directions toward ``a`` and ``b``.

    Attributes
    ----------
    classes : Tensor
        ``(n, n)`` int, the top-1 class at grid point ``[j, i]`` (row ``j``: ``v``, column ``i``: ``u``).
    confidence : Tensor
        ``(n, n)`` the top-1 class's probability there.
    u, v : Tensor
        ``(n,)`` the coordinates along the axes toward ``a`` and ``b``: lengths in the edit
        parameters (the directions have unit L2 norm there).
    a, b, source : int
    labels : list of str
    reach : tuple of float
        Per axis, the length at which the frozen path toward ``a`` (``b``) reaches the cap's L2
        distance from the image (or where its edit saturates).
    images : dict
        ``(j, i) -> (C, H, W)`` the images at the chosen grid points: the centre, the ends of
        the axes and the corners.
    """

    classes: Tensor
    confidence: Tensor
    u: Tensor
    v: Tensor
    a: int
    b: int
    source: int
    labels: list[str]
    reach: tuple[float, float]
    images: dict[tuple[int, int], Tensor] = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.u)

    @property
    def centre(self) -> int:
        """The top-1 class at the centre: the image's own."""
        return int(self.classes[self.n // 2, self.n // 2])

    def first_along(self, axis: str) -> float:
        """The smallest positive coordinate along axis ``"a"`` or ``"b"`` whose top-1 is that axis's
        class (``math.inf`` if none on the grid)."""
        mid = self.n // 2
        if axis == "a":
            line, cls, coords = self.classes[mid, mid:], self.a, self.u
        else:
            line, cls, coords = self.classes[mid:, mid], self.b, self.v
        hits = torch.nonzero(line == cls).flatten()
        return float(coords[mid + int(hits[0])]) if len(hits) else math.inf

    def regions(self) -> dict[str, int]:
        """Label -> how many grid points it holds (largest first)."""
        counts = torch.bincount(self.classes.flatten(), minlength=len(self.labels))
        order = torch.argsort(counts, descending=True)
        return {self.labels[int(c)]: int(counts[c]) for c in order if counts[c] > 0}

    def summary(self) -> dict:
        return dict(
            a=self.labels[self.a],
            b=self.labels[self.b],
            source=self.labels[self.source],
            n=self.n,
            extent=[float(self.u[-1]), float(self.v[-1])],
            reach=list(self.reach),
            first_a=self.first_along("a"),
            first_b=self.first_along("b"),
            regions=self.regions(),
            classes=[[self.labels[int(c)] for c in row] for row in self.classes],
            **self.params,
        )

    def figure(self) -> Any:
        """A matplotlib figure: the map of decision regions, the two axes' paths, images at the corners."""
        from .figures import plane_figure

        return plane_figure(self)

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``plane.png`` and ``plane.json`` to ``out``."""
        from .figures import save_plane

        return save_plane(self, Path(out))


def _unit(direction: Params) -> tuple[Params, float]:
    norm = math.sqrt(sum(float(d.double().pow(2).sum()) for d in direction))
    return tuple(d / norm for d in direction), norm


def _reach(grad: Gradient, cap: float) -> float:
    """The amplification at which ``grad``'s frozen path reaches L2 ``cap`` (or saturates)."""
    try:
        return grad.alpha_for_budget(cap)
    except BudgetUnreachable:  # a bounded (phase) edit: the amplification of its farthest frame
        guess = cap / max(grad.l2(1e-3) / 1e-3, 1e-12)
        alphas = guess * 2.0 ** (torch.arange(-8, 17, dtype=torch.float64) / 2)
        l2 = (grad.render(alphas) - grad.image).flatten(1).norm(dim=1)
        return float(alphas[int(l2.argmax())])


def plane(
    model: nn.Module,
    image: Any,
    a: int | str,
    b: int | str,
    n: int = GRID,
    config: MorphConfig | None = None,
    *,
    cap_rms: float = AUTO_MAX_RMS,
    extent: float | None = None,
) -> Plane:
    """The ``n × n`` map of the classifier's top-1 class over the plane toward classes ``a`` and ``b``.

    Parameters
    ----------
    model, image
        As :func:`morphlib.morph` takes them.
    a, b : int or str
        The two classes whose gradient directions span the plane (index or name; distinct).
    n : int
        Grid points per side, odd (the image is the centre point), at least 3.
    config : MorphConfig, optional
        Edit family, loss, colour handling, smoothing, pyramid (the regime plays no part: the axes
        are the frozen directions). Default :data:`~morphlib.config.RECOMMENDED`.
    cap_rms : float
        The grid reaches, along each axis, the length at which that axis's frozen path has
        changed the image by this RMS per value (L2 ``cap_rms * sqrt(C*H*W)``).
    extent : float, optional
        The grid's half-width along both axes, in edit-parameter length, instead.

    Examples
    --------
    >>> from morphlib.zoo import load
    >>> from morphlib.data import load as load_data
    >>> images, _, _ = load_data("digits", split="test", n=1, seed=0)
    >>> p = plane(load("digits-cnn-robust"), images[0], "4", "9", n=5)
    >>> p.classes.shape, p.labels[p.centre]
    (torch.Size([5, 5]), '6')
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 3 or n % 2 == 0:
        raise ValueError(f"n must be an odd integer >= 3 (the image is the centre point), got {n!r}")
    config = config or RECOMMENDED
    grads = gradients(model, [image, image], [a, b], config.replace(regime="frozen"))
    ga, gb = grads
    labels = ga.labels
    ia, ib = resolve_class(a, labels), resolve_class(b, labels)
    if ia == ib:
        raise ValueError(f"the plane needs two different classes, got {labels[ia]!r} twice")
    x0 = ga.image
    cap = cap_rms * math.sqrt(x0[0].numel())
    (da, norm_a), (db, norm_b) = (
        _unit(tuple(-d for d in ga.direction)),
        _unit(tuple(-d for d in gb.direction)),
    )
    reach = (_reach(ga, cap) * norm_a, _reach(gb, cap) * norm_b)
    halves = (float(extent),) * 2 if extent is not None else reach
    if not all(math.isfinite(h) and h > 0 for h in halves):
        raise ValueError(f"the plane's extent must be a finite number > 0, got {extent}")
    u_axis = torch.linspace(-halves[0], halves[0], n, dtype=torch.float64)
    v_axis = torch.linspace(-halves[1], halves[1], n, dtype=torch.float64)
    u_axis[n // 2] = v_axis[n // 2] = 0.0  # the image itself, exactly
    vv, uu = torch.meshgrid(v_axis, u_axis, indexing="ij")  # [j, i]: v = v_axis[j], u = u_axis[i]
    us, vs = uu.flatten().to(x0.dtype).to(x0.device), vv.flatten().to(x0.dtype).to(x0.device)
    space = ga.space
    classes, confidence, chosen = [], [], {}
    corners = {0, n // 2, n - 1}
    with eval_mode(model), torch.no_grad():
        for start in range(0, n * n, BATCH):
            u, v = us[start : start + BATCH], vs[start : start + BATCH]
            params = tuple(
                u.view(-1, *[1] * (pa.ndim - 1)) * pa + v.view(-1, *[1] * (pb.ndim - 1)) * pb
                for pa, pb in zip(da, db, strict=True)
            )
            frames = space.clip(space.images(space.cap_phase(params, config.phase_cap)))
            probs = probabilities(model, frames)
            best, top = probs.max(dim=1)
            classes.append(top)
            confidence.append(best)
            for k in range(len(u)):
                j, i = divmod(start + k, n)
                if j in corners and i in corners:
                    chosen[(j, i)] = frames[k].detach().float().cpu()
    grid_classes = torch.cat(classes).view(n, n)
    grid_conf = torch.cat(confidence).view(n, n)
    source = int(ga.probs[0].argmax())
    return Plane(
        grid_classes.long(),
        grid_conf,
        u_axis,
        v_axis,
        ia,
        ib,
        source,
        labels,
        reach,
        chosen,
        dict(config=dict(config.record()), cap_l2=cap, cap_rms=cap_rms),
    )
