"""Models, cached gradients and one call per UI action, with the files the UI shows.

:class:`Engine` is the whole app minus Gradio: ``predict`` (top-5 and a suggested
target), ``morph`` (video, GIF, probability plot, change map, summary) and
``compare`` (the four edit families side by side at one L2 budget).  Gradients are
cached per (image, model, target, family, settings), so a new strength or frame count
renders frames again without a backward pass.  Output files go to per-request folders
under one temporary root, pruned as new ones are made and removed at exit.

Examples
--------
>>> from morphlib.app.examples import example_by_name
>>> engine = Engine()
>>> image = example_by_name("digit-3").file
>>> engine.predict(image, "digits-cnn-robust").top[0][0]
'3'
>>> out = engine.morph(image, Settings(model="digits-cnn-robust", target="9", mode="budget", frames=4))
>>> out.result.frames.shape, out.video.suffix, out.cached
(torch.Size([4, 3, 32, 32]), '.mp4', False)
>>> engine.morph(image, Settings(model="digits-cnn-robust", target="9", mode="budget", frames=6)).cached
True
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from morphlib.config import MorphConfig, PyramidConfig, Strength
from morphlib.engine import AutoStrength, Gradient, MorphResult, gradient, morph
from morphlib.imaging import fit_to_size, load_image
from morphlib.labels import class_names, resolve_class
from morphlib.render import (
    MIN_VIDEO_SIDE,
    annotated_frames,
    change_map,
    message_tile,
    open_mp4,
    ping_pong,
    side_by_side,
    write_gif,
    write_mp4,
)

from .cache import GradientCache, revive_gradient
from .outputs import OutputDirs
from .registry import ModelChoice, ModelRegistry, device_problem
from .settings import Settings

#: The families of the "compare families" view, in display order.
COMPARE_FAMILIES = ("pixel", "fourier-phase", "csp-phase", "csp-joint")
FPS = 8.0
#: x264 preset of the app's videos: the fastest (see :func:`morphlib.render.write_mp4`).
VIDEO_PRESET = "ultrafast"

Progress = Callable[[float, str], None]
#: Least seconds between two step updates of an iterative path passed on to the UI: each is a
#: message to the browser and a redraw there, and on a 32 px step-local morph (15 steps in about
#: 0.1 s) they cost half as much again as the steps (click to outputs shown: 0.41 s with every
#: update, 0.35 s with none).  Phase changes ("encoding the video", ...) always pass.
PROGRESS_INTERVAL = 0.25
#: Models whose input has at most this many pixels run on one CPU thread.  Gradio runs each
#: request in one of its worker threads, and every thread that runs torch's parallel CPU ops
#: keeps an OpenMP team of its own; once their threads outnumber the cores, OpenMP stops
#: spin-waiting between parallel regions, and each of the thousands of tiny ops of a morph on
#: a 32 px model pays a thread wake-up (a step-local morph on digits: 0.10 s in the main
#: thread, 0.24 s in a worker thread on 2 torch threads, 0.075 s there on one).
SMALL_INPUT_PIXELS = 96 * 96
log = logging.getLogger("morphlib.app")

__all__ = [
    "COMPARE_FAMILIES",
    "CompareOutput",
    "Engine",
    "GradientCache",
    "ModelChoice",
    "ModelRegistry",
    "MorphOutput",
    "OutputDirs",
    "Prediction",
    "Settings",
    "device_problem",
    "video_side",
]


def _no_progress(fraction: float, desc: str) -> None:
    return None


def _throttled(progress: Progress, interval: float = PROGRESS_INTERVAL) -> Progress:
    """``progress``, passing on the first update and then at most one every ``interval`` seconds
    (always the last, ``fraction >= 1``)."""
    last = -math.inf

    def update(fraction: float, desc: str) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last >= interval or fraction >= 1.0:
            last = now
            progress(fraction, desc)

    return update


def _threads_by_model(method: Callable) -> Callable:
    """An :class:`Engine` method ``(image, model id or Settings, ...)`` run under
    :meth:`Engine.cpu_threads` for its model."""

    @functools.wraps(method)
    def run(self: Engine, image: Any, spec: str | Settings, *args: Any, **kwargs: Any) -> Any:
        with self.cpu_threads(spec.model if isinstance(spec, Settings) else spec):
            return method(self, image, spec, *args, **kwargs)

    return run


# ---------------------------------------------------------------------- results
@dataclass
class Prediction:
    """Top-k of the model on the (fitted) image, its labels, and a suggested target (the runner-up)."""

    model: str
    top: list[tuple[str, float]]
    labels: list[str]
    suggestion: str
    notes: list[str] = field(default_factory=list)


@dataclass
class MorphOutput:
    """A morph and its renders.

    ``frames`` (every frame enlarged, probabilities drawn under it: drawn once, for the
    video and the scrubber alike), ``video`` (looping MP4 of them, forward and back),
    ``curves`` (source and target probability along the morph, one row per frame and class,
    for a plot), ``change`` (heat map of where the last frame differs from the input);
    ``summary`` is JSON-ready. ``gif`` is written only when asked for (:meth:`Engine.gif`).
    """

    result: MorphResult
    frames: np.ndarray
    video: Path
    curves: pd.DataFrame
    change: Path
    summary: dict
    message: str
    cached: bool
    auto: AutoStrength | None = None
    gif: Path | None = None


@dataclass
class CompareOutput:
    """The compare-families view: side-by-side video and one row per family."""

    video: Path
    rows: list[list[Any]]
    budget: float
    message: str
    results: dict[str, MorphResult]


@dataclass
class _Prepared:
    model: nn.Module
    model_id: str
    image: torch.Tensor  # (1, 3, H, W)
    digest: str
    notes: list[str]


def morph_config(s: Settings, family: str | None = None) -> MorphConfig:
    """The :class:`~morphlib.config.MorphConfig` that ``s`` sets (with ``family`` instead of its own, for
    the compare view): what the app's morph is, as a library call."""
    pyramid = PyramidConfig(bandwidth=s.bandwidth, orientations=s.orientations or None)
    return MorphConfig(
        family=family or s.family,
        regime=s.regime,
        luma_only=s.luma_only,
        phase_cap=s.phase_cap or None,
        smooth_sigma=s.smooth_sigma or None,
        pyramid=pyramid,
    )


def morph_strength(s: Settings, values: int) -> Strength:
    """The :class:`~morphlib.config.Strength` that ``s`` sets for an image of ``values`` (C*H*W) values;
    a strength of 0 is the default of its mode."""
    if s.mode == "auto":
        return Strength.auto(goal=s.goal, cap_rms=s.strength or Strength.auto().cap_rms)
    if s.mode == "budget":
        return Strength.budget(s.strength) if s.strength else Strength.default_budget(values)
    if s.strength <= 0:
        raise ValueError(
            "amplification mode needs a strength > 0 (the largest parameter change: radians "
            "of phase, or pixel values for the pixel family)"
        )
    return Strength.amplification(s.strength)


class Engine:
    """The app's actions, independent of the UI.

    Parameters
    ----------
    registry : ModelRegistry, optional
    cache : GradientCache, optional
    outputs : OutputDirs, optional
    fps : float
        Frames per second of the videos and GIFs.
    """

    def __init__(
        self,
        registry: ModelRegistry | None = None,
        cache: GradientCache | None = None,
        outputs: OutputDirs | None = None,
        fps: float = FPS,
    ) -> None:
        self.registry = registry or ModelRegistry()
        self.cache = cache if cache is not None else GradientCache()
        self.outputs = outputs or OutputDirs()
        self.fps = fps

    @contextlib.contextmanager
    def cpu_threads(self, model_id: str) -> Iterator[None]:
        """One torch thread in this thread while it works for a model of small input on the CPU
        (:data:`SMALL_INPUT_PIXELS`); the thread's count as it was afterwards."""
        try:
            entry = self.registry.choice(model_id).entry
        except ValueError:  # the call itself says what is wrong with the model
            entry = None
        pixels = math.prod(entry.input_size) if entry is not None else math.inf
        if pixels > SMALL_INPUT_PIXELS or self.registry.device_for().type != "cpu":
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    # ------------------------------------------------------------------ inputs
    def prepare(self, image: Any, model_id: str) -> _Prepared:
        """Load the model, decode the image and fit it to the model's input size."""
        if image is None or (isinstance(image, str) and not image.strip()):
            raise ValueError("no image: upload one, paste one, use the webcam or pick an example")
        choice = self.registry.choice(model_id)
        model = self.registry.load(choice.id)
        size = tuple(choice.entry.input_size) if choice.entry is not None else _input_size(model)
        loaded = load_image(image, fit_to=size)  # a large image is decoded reduced, never at full size
        notes = list(loaded.notes)
        domain = model.domain_note(loaded.image) if hasattr(model, "domain_note") else None
        if domain:
            notes.insert(0, f"⚠ Outside what this model knows: {domain}; read its answer with care.")
        fitted, note = fit_to_size(loaded.image, size)
        if note:
            notes.append(note)
        x = fitted[None].to(self.registry.device_for())
        digest = hashlib.sha1(fitted.numpy().tobytes()).hexdigest()
        return _Prepared(model, choice.id, x, digest, notes)

    @_threads_by_model
    @torch.no_grad()
    def predict(self, image: Any, model_id: str, k: int = 5) -> Prediction:
        """The model's top-``k`` on ``image`` and a suggested target (its runner-up)."""
        p = self.prepare(image, model_id)
        probs = torch.softmax(p.model(p.image).float(), dim=-1)[0].cpu()
        labels = class_names(p.model, probs.numel())
        values, indices = probs.topk(min(k, len(labels)))
        top = [(labels[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]
        suggestion = top[1][0] if len(top) > 1 else top[0][0]
        return Prediction(p.model_id, top, labels, suggestion, p.notes)

    def _gradient(self, p: _Prepared, target: int, config: MorphConfig) -> tuple[Gradient, bool]:
        key = (p.digest, p.model_id, str(p.image.device), target, repr(config.replace(regime="frozen")))
        return self.cache.get(
            key,
            lambda: gradient(p.model, p.image, target, config),
            revive=lambda data: revive_gradient(data, p.model, p.image.device),
        )

    def _target(self, p: _Prepared, s: Settings) -> int:
        with torch.no_grad():
            probs = torch.softmax(p.model(p.image).float(), dim=-1)[0].cpu()
        labels = class_names(p.model, probs.numel())
        if not s.target:
            return int(probs.topk(2).indices[1]) if len(labels) > 1 else 0
        return resolve_class(s.target, labels)

    # ------------------------------------------------------------------ actions
    @_threads_by_model
    def morph(self, image: Any, settings: Settings, progress: Progress | None = None) -> MorphOutput:
        """Morph ``image`` as ``settings`` say and render it (see :class:`MorphOutput`)."""
        progress = progress or _no_progress
        step_progress = _throttled(progress)
        started = time.perf_counter()
        s = settings.validated()
        progress(0.02, "loading the model and the image")
        p = self.prepare(image, s.model)
        target = self._target(p, s)
        progress(0.1, "class gradient (one backward pass)")
        config, strength = morph_config(s), morph_strength(s, p.image[0].numel())
        grad, cached = self._gradient(p, target, config)
        notes = list(p.notes)

        def step(done: int, total: int) -> None:
            step_progress(0.35 + 0.35 * done / max(total, 1), f"{s.regime} steps {done}/{total}")

        progress(0.35, f"{strength.describe()} along the {s.regime} path")
        result = morph(p.model, p.image, target, config, strength, frames=s.frames, grad=grad, progress=step)
        found = result.auto
        computed, cpu = time.perf_counter(), _render_cpu()
        progress(0.75, "encoding the video")
        out = self.outputs.new("morph")
        side = video_side(result)
        first = annotated_frames(result, min_side=side, indices=[0])  # fixes the video's size
        encoder = open_mp4(out / "morph.mp4", first.shape[1:3], fps=self.fps, preset=VIDEO_PRESET)
        rest = annotated_frames(result, min_side=side, indices=range(1, len(result.frames)))
        frames = np.concatenate([first, rest])  # drawn while ffmpeg starts
        video = encoder.finish(ping_pong(frames))
        change = out / "change.png"
        Image.fromarray(change_map(result, min_side=side)).save(change, compress_level=1)
        summary = result.summary()
        summary.update(
            model=p.model_id,
            settings=s.as_dict(),
            gradient_cached=cached,
            auto=asdict(found) if found is not None else None,
            notes=notes,
            # where this request's time went, measured here (not counting serving or transfer)
            seconds={
                "morph": round(computed - started, 4),
                "render": round(time.perf_counter() - computed, 4),
                # CPU seconds the render used (this thread and ffmpeg): what it costs on a quiet
                # machine, whatever else shares the cores
                "render_cpu": round(_render_cpu() - cpu, 4),
            },
        )
        message = _morph_message(result, found, cached, notes)
        progress(1.0, "done")
        return MorphOutput(result, frames, video, curves(result), change, summary, message, cached, found)

    def gif(self, out: MorphOutput) -> Path:
        """The morph's looping GIF (the video's frames), written next to its video on first use."""
        if out.gif is None or not out.gif.is_file():
            out.video.parent.mkdir(parents=True, exist_ok=True)  # its folder may have been pruned
            out.gif = write_gif(out.frames, out.video.parent / "morph.gif", fps=self.fps)
        return out.gif

    def frame(self, out: MorphOutput, k: int) -> Path:
        """Frame ``k`` (counted from 1) of a morph as a PNG next to its video, written on first use.

        The app hands Gradio this file rather than the array: Gradio writes an array into a cache
        file named by its content, in place, so two sessions shown the same frame could truncate
        each other's download; a file is copied into that cache atomically.
        """
        path = out.video.parent / f"frame-{k:03d}.png"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)  # its folder may have been pruned
            staging = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}")
            Image.fromarray(out.frames[k - 1]).save(staging, format="PNG", compress_level=1)
            os.replace(staging, path)
        return path

    @_threads_by_model
    def compare(
        self, image: Any, settings: Settings, budget: float | None = None, progress: Progress | None = None
    ) -> CompareOutput:
        """Morph with each of :data:`COMPARE_FAMILIES` at the same L2 ``budget`` (default: RMS 0.05).

        A family that cannot reach the budget (phase edits are bounded) gets a grey tile
        saying so instead of a video.
        """
        progress = progress or _no_progress
        s = settings.validated()
        progress(0.02, "loading the model and the image")
        p = self.prepare(image, s.model)
        target = self._target(p, s)
        if budget is not None and (not math.isfinite(float(budget)) or budget < 0):
            raise ValueError(f"the L2 budget must be a number >= 0 (0: default), got {budget}")
        strength = Strength.budget(float(budget)) if budget else Strength.default_budget(p.image[0].numel())
        budget = strength.value
        videos, titles, rows, results = [], [], [], {}
        failed: dict[str, str] = {}
        for i, family in enumerate(COMPARE_FAMILIES):
            progress(0.05 + 0.8 * i / len(COMPARE_FAMILIES), f"{family}: gradient and frames")
            try:
                config = morph_config(s, family)
                grad, _ = self._gradient(p, target, config)
                r = morph(
                    p.model, p.image, target, config, strength, frames=s.frames, grad=grad, progress=False
                )
            except ValueError as err:
                failed[family] = str(err)
                rows.append([family, None, None, None, None, str(err)])
                continue
            results[family] = r
            videos.append((family, annotated_frames(r, min_side=video_side(r))))
            rows.append(
                [
                    family,
                    round(float(r.l2[-1]), 4),
                    round(float(r.source_probs[-1]), 4),
                    round(float(r.target_probs[-1]), 4),
                    r.top1[-1],
                    "",
                ]
            )
        if not videos:
            raise ValueError(
                "no family could reach this budget: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
            )
        shape = videos[0][1].shape
        tiles = dict(videos)
        ordered = []
        for family in COMPARE_FAMILIES:
            if family in tiles:
                ordered.append(tiles[family])
            else:
                tile = message_tile(shape[1], shape[2], f"{family}: {failed[family]}")
                ordered.append(np.broadcast_to(tile, (shape[0], *tile.shape)))
            titles.append(family)
        progress(0.9, "encoding the video")
        out = self.outputs.new("compare")
        video = write_mp4(
            # two by two: four in a row are shown at half the size, their captions too small to read
            side_by_side(ordered, titles, columns=2),
            out / "compare.mp4",
            fps=self.fps,
            preset=VIDEO_PRESET,
        )
        label = next(iter(results.values())).labels[target]
        lines = [f"All families at L2 budget **{budget:.3g}**, toward **{label}**."]
        lines += [f"- {family}: {msg}" for family, msg in failed.items()]
        progress(1.0, "done")
        return CompareOutput(video, rows, budget, "\n".join(lines), results)


def curves(result: MorphResult) -> pd.DataFrame:
    """Source and target probability at each frame's amplification, long-form (columns ``α``,
    ``probability``, ``class``), as a line plot takes them."""
    alphas = result.alphas.numpy().astype(float).round(5)
    rows = {
        f"source: {result.labels[result.source]}": result.source_probs,
        f"target: {result.labels[result.target]}": result.target_probs,
    }
    return pd.concat(
        pd.DataFrame({"α": alphas, "probability": probs.numpy().astype(float), "class": name})
        for name, probs in rows.items()
    )


#: :func:`curves` of no morph: what a cleared plot shows.
NO_CURVES = pd.DataFrame({"α": pd.Series(dtype=float), "probability": pd.Series(dtype=float), "class": ""})


def _render_cpu() -> float:
    """CPU seconds of this thread plus those of finished child processes (the ffmpeg encoders)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.thread_time() + children.ru_utime + children.ru_stime


def video_side(result: MorphResult) -> int:
    """Smallest side of the rendered video: small images are enlarged to 256 px (crisp pixels,
    legible captions); images of 128 px and more are shown at their own size (cheaper)."""
    side = min(result.frames.shape[-2:])
    return MIN_VIDEO_SIDE if side < 128 else side


def _input_size(model: nn.Module) -> tuple[int, int]:
    pre = getattr(model, "preprocess", None)
    return tuple(getattr(pre, "input_size", (224, 224)))


def _morph_message(result: MorphResult, found: AutoStrength | None, cached: bool, notes: list[str]) -> str:
    src, tgt = result.labels[result.source], result.labels[result.target]
    p0, p1 = float(result.target_probs[0]), float(result.target_probs[-1])
    lines = [
        f"**{src} → {tgt}**: p({tgt}) {p0:.3f} → {p1:.3f}, last frame's top-1 **{result.top1[-1]}**, "
        f"L2 from the input {float(result.l2[-1]):.3g} (α = {float(result.alphas[-1]):.3g})."
    ]
    if found is not None:
        flipped = found.reached or result.top1[-1] == tgt  # the target won, if short of a stricter goal
        lines.append(("✓ " if flipped else "⚠ ") + f"Auto strength: {found.message}")
    walked = result.params["regime"] != "frozen" and (found is None or found.budget > 0)
    if not walked:  # one gradient: the frozen regime, or a path that had nothing to walk
        lines.append("Gradient " + ("reused from the cache." if cached else "computed (one backward pass)."))
    else:  # an iterative path takes a fresh gradient at every step after the first
        first = "reused from the cache" if cached else "computed here"
        lines.append(f"One gradient (backward pass) per step of the path, the first one {first}.")
    lines += [f"- {note}" for note in notes]
    return "\n\n".join(lines[:3]) + ("\n\n" + "\n".join(lines[3:]) if len(lines) > 3 else "")
