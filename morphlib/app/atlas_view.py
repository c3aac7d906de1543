"""The app's Atlas tab without Gradio: an atlas and a plane of the image, rendered for the page.

:func:`atlas_view` runs :func:`morphlib.atlas.atlas` on the prepared image with the page's
settings (family, regime, smoothing, pyramid; the cap is the auto strength's), then the plane
toward two classes: the ones given, else the chosen target (or the nearest class) and the nearest
other one.  It returns what the tab shows: the ranked distances as a table for a bar chart, the
last frames (enlarged PNGs) with captions, the plane's map (PNG), a JSON summary and a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from PIL import Image

from morphlib.atlas import GRID, atlas, plane
from morphlib.config import AUTO_MAX_RMS
from morphlib.imaging import to_uint8
from morphlib.labels import resolve_class
from morphlib.render import MIN_VIDEO_SIDE

from .engine import morph_config
from .settings import Settings

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["AtlasOutput", "atlas_view", "plane_pair"]

#: The plane's grid in the app: 11 x 11 (121 forward passes) answers at once on a CPU Space.
APP_GRID = min(GRID, 11)


@dataclass
class AtlasOutput:
    """What the Atlas tab shows: ``chart`` (columns ``class``, ``L2``, ranked), ``frames`` (PNG, caption)
    per class nearest first, ``ranked`` (their labels), the plane's PNG, a summary and a message."""

    chart: pd.DataFrame
    frames: list[tuple[str, str]]
    ranked: list[str]
    plane: Path
    summary: dict
    message: str


def plane_pair(text: str, labels: list[str], ranked: list[str], target: str = "") -> tuple[int, int]:
    """The plane's two classes: ``text`` as ``A,B``; if empty, ``target`` (or the nearest class) and the
    nearest class other than it.

    >>> plane_pair("", ["0", "1", "2"], ["2", "1"]), plane_pair("1, 0", ["0", "1", "2"], ["2"])
    ((2, 1), (1, 0))
    """
    if text.strip():
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"give the plane's two classes as A,B (e.g. 3,8), got {text!r}")
        a, b = (resolve_class(p, labels) for p in parts)
    else:
        a = resolve_class(target, labels) if target else resolve_class(ranked[0], labels)
        b = next(resolve_class(r, labels) for r in ranked if resolve_class(r, labels) != a)
    if a == b:
        raise ValueError(f"the plane needs two different classes, got {labels[a]!r} twice")
    return a, b


def atlas_view(
    engine: Engine, image: Any, settings: Settings, plane_text: str = "", progress: Any = None
) -> AtlasOutput:
    """The atlas and the plane of ``image`` with ``settings`` (see the module notes)."""
    progress = progress or (lambda fraction, desc: None)
    s = settings.validated()
    progress(0.02, "loading the model and the image")
    p = engine.prepare(image, s.model)
    config = morph_config(s)
    cap_rms = s.strength if s.mode == "auto" and 0 < s.strength <= 1 else AUTO_MAX_RMS
    progress(0.1, "walking toward every class at once")
    found = atlas(p.model, p.image, config=config, cap_rms=cap_rms)
    ranked = found.ranked()
    a, b = plane_pair(
        plane_text, found.labels, [r.label for r in ranked if r.target != found.source], s.target
    )
    progress(0.7, f"the plane toward {found.labels[a]} and {found.labels[b]}")
    mapped = plane(p.model, p.image, a, b, n=APP_GRID, config=config, cap_rms=cap_rms)
    progress(0.85, "drawing")
    out = engine.outputs.new("atlas")
    frames = []
    for k, r in enumerate(ranked):
        path = out / f"{k:02d}.png"
        array = to_uint8(r.last)
        tile = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
        scale = max(1, MIN_VIDEO_SIDE // 2 // max(tile.size))
        tile.resize((tile.width * scale, tile.height * scale), Image.NEAREST).save(path)
        frames.append((str(path), f"{r.label}: L2 {r.distance:.2f}" if r.reached else f"{r.label}: > cap"))
    paths = mapped.save(out)
    chart = pd.DataFrame(
        {
            "class": [r.label for r in ranked],
            "L2": [r.distance if r.reached else found.cap for r in ranked],
        }
    )
    beyond = [r.label for r in ranked if not r.reached]
    near = ranked[0]
    lines = [
        f"From **{found.labels[found.source]}**: nearest **{near.label}** at L2 {near.distance:.3g}"
        if near.reached
        else f"From **{found.labels[found.source]}**: no class becomes top-1 within the cap",
        f"({config.family}, {config.regime}, top-1 goal, cap L2 {found.cap:.3g}; "
        f"all {len(ranked)} classes walked in one batch).",
    ]
    if beyond:
        lines.append(f"Beyond the cap (drawn at the cap): {', '.join(beyond)}.")
    lines.append(
        f"Plane toward **{found.labels[a]}** (→) and **{found.labels[b]}** (↑), {mapped.n}×{mapped.n}: "
        "a linear slice of the edit parameters, not pixels. Click a frame to open its morph."
    )
    summary = dict(found.summary(), plane=mapped.summary(), model=p.model_id, settings=s.as_dict())
    progress(1.0, "done")
    return AtlasOutput(chart, frames, [r.label for r in ranked], paths["plane"], summary, " ".join(lines))
