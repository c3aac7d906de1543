"""Drawings of an atlas (ranked distances, last frames) and of a plane (the map of decision regions)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

if TYPE_CHECKING:
    from .planes import Plane
    from .routes import Atlas

__all__ = ["atlas_chart", "frames_grid", "plane_figure", "save_atlas", "save_plane"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pixels(image: Tensor) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] as an ``(H, W, 3)`` array for ``imshow``."""
    array = image.detach().float().clamp(0, 1).permute(1, 2, 0).numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def atlas_chart(atlas: Atlas) -> Any:
    """Horizontal bars, nearest class on top: the L2 at which each class becomes top-1 (hatched to
    the cap where it does not)."""
    plt = _pyplot()
    ranked = atlas.ranked()
    fig, ax = plt.subplots(figsize=(6.0, 0.9 + 0.32 * len(ranked)))
    ys = np.arange(len(ranked))[::-1]
    for y, r in zip(ys, ranked, strict=True):
        if r.reached:
            ax.barh(y, r.distance, color="#2563eb")
            ax.text(r.distance, y, f" {r.distance:.2f}", va="center", fontsize=8)
        else:
            ax.barh(y, atlas.cap, color="none", edgecolor="#9ca3af", hatch="//")
            ax.text(atlas.cap, y, " > cap", va="center", fontsize=8, color="#6b7280")
    ax.set_yticks(ys, [r.label for r in ranked])
    ax.axvline(atlas.cap, color="#9ca3af", lw=0.8, ls="--")
    ax.set_xlim(0, atlas.cap * 1.18)
    ax.set_xlabel("L2 distance where the class becomes top-1")
    ax.set_title(
        f"From {atlas.labels[atlas.source]!r}: {atlas.config.family}, {atlas.config.regime}", fontsize=10
    )
    fig.tight_layout()
    return fig


def frames_grid(atlas: Atlas, columns: int = 5) -> Any:
    """The image, then each class's last frame, nearest first, captioned with its distance."""
    plt = _pyplot()
    tiles = [(atlas.image, f"input: {atlas.labels[atlas.source]}")] + [
        (r.last, f"{r.label}: " + (f"{r.distance:.2f}" if r.reached else "> cap")) for r in atlas.ranked()
    ]
    rows = math.ceil(len(tiles) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.7 * columns, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (image, caption) in zip(axes.flat, tiles, strict=False):
        ax.imshow(_pixels(image), interpolation="nearest")
        ax.set_title(caption[:22], fontsize=8)
    fig.tight_layout()
    return fig


def save_atlas(atlas: Atlas, out: Path) -> dict[str, Path]:
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    paths = {"chart": out / "distances.png", "frames": out / "frames.png", "summary": out / "atlas.json"}
    for key, make in (("chart", atlas_chart), ("frames", frames_grid)):
        fig = make(atlas)
        fig.savefig(paths[key], dpi=110)
        plt.close(fig)
    paths["summary"].write_text(json.dumps(atlas.summary(), indent=2))
    return paths


def plane_figure(plane: Plane) -> Any:
    """The map of decision regions (one colour per class), the frozen paths toward ``a`` and ``b``
    (the axes), and the images at the corners, the axes' ends and the centre."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    present = sorted({int(c) for c in plane.classes.flatten()})
    palette = plt.get_cmap("tab20" if len(plane.labels) > 10 else "tab10")
    colour = {c: palette(k % palette.N) for k, c in enumerate(present)}
    index = {c: k for k, c in enumerate(present)}
    mapped = np.vectorize(index.get)(plane.classes.numpy())
    hu, hv = float(plane.u[-1]), float(plane.v[-1])
    fig = plt.figure(figsize=(11.0, 5.4))
    ax = fig.add_axes((0.07, 0.1, 0.45, 0.8))
    ax.imshow(
        mapped,
        origin="lower",
        extent=(-hu, hu, -hv, hv),
        aspect="auto",
        cmap=ListedColormap([colour[c] for c in present]),
        vmin=-0.5,
        vmax=len(present) - 0.5,
        interpolation="nearest",
        alpha=0.35 + 0.65 * plane.confidence.numpy(),
    )
    for axis, (dx, dy) in (("a", (1, 0)), ("b", (0, 1))):
        cls = plane.a if axis == "a" else plane.b
        ax.annotate(
            "",
            xy=(dx * hu * 0.97, dy * hv * 0.97),
            xytext=(0, 0),
            arrowprops=dict(arrowstyle="->", lw=1.8, color="black"),
        )
        first = plane.first_along(axis)
        if math.isfinite(first):
            ax.plot(dx * first, dy * first, "o", mfc="white", mec="black")
        ax.text(dx * hu * 0.45, dy * hv * 0.45 + 0.03 * hv, f"toward {plane.labels[cls]}", fontsize=8)
    ax.plot(0, 0, "k*", ms=12)
    ax.set_xlabel(f"u: toward {plane.labels[plane.a]!r} (edit-parameter length)")
    ax.set_ylabel(f"v: toward {plane.labels[plane.b]!r}")
    ax.set_title("Top-1 class over the plane (★ the image; arrows: frozen paths)", fontsize=9)
    ax.legend(
        handles=[Patch(color=colour[c], label=plane.labels[c]) for c in present],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title="top-1",
    )
    n, width, height = plane.n, 0.1, 0.2  # square insets on an 11 x 5.4 inch figure
    for (j, i), image in plane.images.items():
        col, row = [0, n // 2, n - 1].index(i), [0, n // 2, n - 1].index(j)
        inset = fig.add_axes((0.65 + col * (width + 0.01), 0.1 + row * (height + 0.07), width, height))
        inset.imshow(_pixels(image), interpolation="nearest")
        inset.set_title(plane.labels[int(plane.classes[j, i])][:10], fontsize=7)
        inset.axis("off")
    return fig


def save_plane(plane: Plane, out: Path) -> dict[str, Path]:
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    paths = {"plane": out / "plane.png", "plane_summary": out / "plane.json"}
    fig = plane_figure(plane)
    fig.savefig(paths["plane"], dpi=100)
    plt.close(fig)
    paths["plane_summary"].write_text(json.dumps(plane.summary(), indent=2))
    return paths
