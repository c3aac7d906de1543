"""The Atlas tab's handlers (the page's other handlers are in :mod:`morphlib.app.handlers`): the
``/atlas`` endpoint, its failure, and a click on a frame, which opens that class's morph."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .atlas_view import atlas_view
from .handlers import engine, on_gpu
from .settings import Settings
from .ui import failed, friendly, takes_settings

__all__ = ["CLEARED_ATLAS", "atlas_failed", "open_in_morph", "run_atlas"]


def _atlas_call(image: Any, settings: Settings, plane: str, progress: Any) -> Any:
    eng = engine()
    with eng.cpu_threads(settings.model):
        return atlas_view(eng, image, settings, plane, progress=lambda f, d: progress(f, desc=d))


_run_atlas = on_gpu(_atlas_call)
#: What the Atlas tab shows, cleared: chart, frames, plane map, summary, the ranked labels (state).
CLEARED_ATLAS = (None, None, None, None, None)


@friendly
@takes_settings(extra=("plane",))
def run_atlas(
    image: str | bytes | None, s: Settings, plane: str, request: gr.Request, progress: Any
) -> tuple:
    """The decision-boundary atlas: the image walked toward every other class in one batch.

    ``plane`` is ``A,B`` (two classes), or empty: the target (or the nearest class) and the nearest
    other one. Returns the ranked distances (a table: class, L2; classes beyond the cap are drawn
    at the cap), the last frame toward each class (nearest first, captioned), the plane's map of
    decision regions (PNG), a JSON summary, a message and the ranked labels.
    """
    if image is None:
        raise gr.Error("no image: upload one, paste one, use the webcam or pick an example")
    if not isinstance(plane, str | type(None)) or len(plane or "") > 200:
        raise gr.Error("plane must be a short text: two classes as A,B, or empty")
    out = _run_atlas(image, s, plane or "", progress)
    return out.chart, out.frames, str(out.plane), out.summary, out.message, out.ranked


def atlas_failed(request: gr.Request) -> tuple:
    return (*CLEARED_ATLAS[:4], failed("The atlas", request), None)


def open_in_morph(ranked: list[str] | None, evt: gr.SelectData) -> tuple:
    """A frame of the atlas clicked: its class becomes the target, and the Morph tab opens."""
    index = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
    if not ranked or not 0 <= index < len(ranked):
        return gr.skip(), gr.skip()
    return gr.update(value=ranked[index]), gr.Tabs(selected="morph")
