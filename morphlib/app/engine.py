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

import atexit
import contextlib
import functools
import hashlib
import logging
import math
import os
import pickle
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from safetensors import SafetensorError
from torch import nn

from morphlib.imaging import fit_to_size, load_image
from morphlib.morph import Gradient, MorphResult, default_budget, gradient, morph, resolve_class
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
from morphlib.strength import AutoStrength, auto_morph, auto_strength
from morphlib.zoo import ModelUnavailableError, ZooEntry, list_models, load, read_manifest

from .settings import Settings

#: Preferred default models, first available wins: the paper's robust ImageNet ResNet-50 when it
#: loads without a download (cached, or preloaded on a Space), else the best bundled model.
DEFAULT_MODELS = (
    "resnet50-l2-eps3",
    "mnist-cnn-robust",
    "digits-cnn-robust",
    "orientation-cnn-robust",
    "shapes-cnn-robust",
    "digits-cnn",
)
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


# ---------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelChoice:
    """A model of the picker: its id, where its weights are, and whether it loads now.

    ``location`` is ``"bundled"``, ``"cached"`` (in the local Hub cache), ``"download"``
    (fetched from the Hub on first use) or ``"extra"`` (registered in code).
    """

    id: str
    name: str
    location: str
    available: bool
    entry: ZooEntry | None

    @property
    def label(self) -> str:
        """Display name with its status, for the model picker."""
        if self.available:
            status = {"bundled": "ready, bundled", "cached": "ready, cached"}.get(self.location, "ready")
        elif self.location == "download":
            status = "downloads on first use"
        else:
            status = "weights missing"
        return f"{self.name} — {status}"


class ModelRegistry:
    """The zoo (and models registered in code), loaded on demand and kept in a small LRU cache.

    Parameters
    ----------
    manifest : path, optional
        A zoo manifest other than the repository's ``zoo.yaml``.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    capacity : int
        How many loaded models to keep.
    extra : dict, optional
        ``{id: model}`` of ready models (e.g. a ``ZooModel`` built in code) to offer too.
    """

    def __init__(
        self,
        manifest: str | Path | None = None,
        device: str = "auto",
        capacity: int = 3,
        extra: dict[str, nn.Module] | None = None,
    ) -> None:
        self.manifest = Path(manifest) if manifest is not None else None
        self.entries = read_manifest(self.manifest)
        self.device = device
        self.capacity = capacity
        self.extra = dict(extra or {})
        self._loaded: OrderedDict[tuple[str, str], nn.Module] = OrderedDict()
        self._pinned: set[tuple[str, str]] = set()  # preloaded: never evicted
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}

    def choices(self) -> list[ModelChoice]:
        """Every model with its current status (checked now: weights may appear while serving)."""
        out = [
            ModelChoice(
                mid,
                str(getattr(getattr(m, "entry", None), "name", mid)),
                "extra",
                True,
                getattr(m, "entry", None),
            )
            for mid, m in self.extra.items()
        ]
        for status in list_models(self.entries):
            e = status.entry
            out.append(ModelChoice(e.id, e.name, status.location, status.available, e))
        return out

    def choice(self, model_id: str) -> ModelChoice:
        """The status of ``model_id``; ValueError for an unknown id."""
        model_id = str(model_id or "").strip()
        for c in self.choices():
            if c.id == model_id:
                return c
        known = ", ".join(c.id for c in self.choices())
        raise ValueError(f"unknown model {model_id!r}; pick one of: {known}")

    def default(self) -> str:
        """The first available of :data:`DEFAULT_MODELS`, else the first available model."""
        choices = {c.id: c for c in self.choices()}
        for mid in DEFAULT_MODELS:
            if mid in choices and choices[mid].available:
                return mid
        ready = [c.id for c in choices.values() if c.available]
        return ready[0] if ready else next(iter(choices))

    def device_for(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def load(self, model_id: str) -> nn.Module:
        """The model, loaded once (bundled, from the Hub cache, or downloaded).

        Raises
        ------
        ValueError
            Unknown id.
        ModelUnavailableError
            Weights missing, corrupt or incompatible with the model's architecture, or a Hub
            model that cannot be downloaded now; the message says what to do.
        """
        choice = self.choice(model_id)
        device = self.device_for()
        key = (choice.id, str(device))
        # the registry's lock only guards the cache; a model's own lock is held while it is looked
        # up and loaded, so a slow load (a download) delays requests for that model only, and a
        # model is loaded once however many requests ask for it at the same time
        with self._lock:
            model_lock = self._loading.setdefault(key, threading.Lock())
        with model_lock:
            with self._lock:
                if key in self._loaded:
                    self._loaded.move_to_end(key)
                    return self._loaded[key]
            model = self._load(choice, device)
            log.info("loaded %s on %s in process %d", choice.id, device, os.getpid())
            with self._lock:
                self._loaded[key] = model
                evictable = [k for k in self._loaded if k not in self._pinned]
                for old in evictable[: max(0, len(evictable) - self.capacity)]:
                    del self._loaded[old]
            return model

    def preload(self) -> list[str]:
        """Load every model that loads without a download, on this registry's device, and keep them
        (never evicted). On a ZeroGPU Space this runs in the main process at start: a model loaded
        inside a ``@spaces.GPU`` call (a forked process) would be gone when the call returns."""
        ready = [c.id for c in self.choices() if c.available]
        for model_id in ready:
            self.load(model_id)
            with self._lock:
                self._pinned.add((model_id, str(self.device_for())))
        return ready

    def _load(self, choice: ModelChoice, device: torch.device) -> nn.Module:
        if choice.location == "extra":
            return self.extra[choice.id].to(device).eval()
        if choice.location == "bundled" and not choice.available:
            raise ModelUnavailableError(
                f"the bundled model {choice.id!r} has no weights in this copy of the app yet "
                f"({choice.entry.weights} is missing); pick another model"
            )
        try:
            return load(choice.id, device=device, manifest=self.entries)
        except ModelUnavailableError:
            raise
        except (ValueError, OSError, RuntimeError, EOFError, pickle.UnpicklingError, SafetensorError) as err:
            detail = " ".join(f"{type(err).__name__}: {err}".split())
            detail = detail if len(detail) <= 300 else detail[:297] + "..."
            raise ModelUnavailableError(
                f"the model {choice.id!r} could not be loaded: its weights are corrupt or incompatible "
                f"with its architecture ({detail}); pick another model"
            ) from err

    def describe(self, model_id: str) -> str:
        """A short Markdown description of the model and of what loading it takes."""
        c = self.choice(model_id)
        e = c.entry
        if e is None:
            return f"**{c.name}** (registered in code)."
        h, w = e.input_size
        robust = (
            f"adversarially robust (L2, ε = {e.robust_eps:g})"
            if e.robust_norm == "l2"
            else (f"adversarially robust (L∞, ε = {e.robust_eps:.3g})" if e.robust else "standard training")
        )
        text = f"**{e.name}** — {e.description} Input {w}×{h}, {robust}; licence {e.licence}."
        if c.location == "download":
            source = f"`{e.hub_repo}`" + (f" (file `{e.hub_filename}`)" if e.hub_filename else "")
            text += (
                f"\n\n⬇ Not on this machine yet: it is downloaded from the Hugging Face Hub, {source}, "
                "the first time it is used (once; then it is cached). Without network access "
                "(or with `HF_HUB_OFFLINE=1`) you get a message instead: pick a bundled model."
            )
        elif c.location == "bundled" and not c.available:
            text += "\n\n✗ Its weights are not in this copy of the app yet; pick another model."
        return text


def device_problem(device: str) -> str | None:
    """Why ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) cannot be used here, or None.

    >>> device_problem("cpu") is None, device_problem("gpu")
    (True, "unknown device 'gpu'; use auto, cpu or cuda (cuda:N for one GPU)")
    """
    if str(device) == "auto":
        return None
    try:
        dev = torch.device(str(device))
    except (RuntimeError, ValueError):
        return f"unknown device {device!r}; use auto, cpu or cuda (cuda:N for one GPU)"
    if dev.type == "cpu":
        return None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return f"device {device!r} was asked for, but CUDA is not available here; use cpu or auto"
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)"
        return None
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        return None if mps is not None and mps.is_available() else "device 'mps' is not available here"
    return f"unsupported device {device!r}; use auto, cpu or cuda"


# ---------------------------------------------------------------------- caches and files
class GradientCache:
    """A small thread-safe LRU cache of :class:`~morphlib.morph.Gradient` objects.

    ``capacity`` defaults to ``$MORPHLIB_APP_GRADIENT_CACHE`` or 16; 0 disables the cache
    (every call computes, as benchmarks against the direct library call need).
    """

    def __init__(self, capacity: int | None = None) -> None:
        if capacity is None:
            capacity = int(os.environ.get("MORPHLIB_APP_GRADIENT_CACHE", "16"))
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, Gradient | bytes] = OrderedDict()
        self._new: list[Hashable] = []  # computed here since the last export()
        self._lock = threading.Lock()

    def get(
        self,
        key: Hashable,
        compute: Callable[[], Gradient],
        revive: Callable[[bytes], Gradient] | None = None,
    ) -> tuple[Gradient, bool]:
        """The cached gradient for ``key`` (and True), or ``compute()`` stored (and False).

        An entry brought from another process (:meth:`add_exported`) is bytes until ``revive``
        turns it into a gradient again, which then replaces it.
        """
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                self.hits += 1
        if item is not None:
            if isinstance(item, bytes):
                item = revive(item) if revive is not None else _revive(item)
                self._store(key, item)
            return item, True
        value = compute()
        with self._lock:
            self.misses += 1
        self._store(key, value)
        with self._lock:
            self._new.append(key)
        return value, False

    def _store(self, key: Hashable, value: Gradient | bytes) -> None:
        with self._lock:
            if self.capacity > 0:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)

    def export(self) -> list[tuple[Hashable, bytes]]:
        """The gradients computed in this process since the last export, as bytes a process without
        the model or the device can keep: tensors on the CPU, the model left out (a ZeroGPU call
        runs in a forked process, whose own cache is gone when it returns)."""
        with self._lock:
            keys, self._new = self._new, []
            items = [(k, self._items[k]) for k in keys if k in self._items]
        return [(k, _portable(g)) for k, g in items if not isinstance(g, bytes)]

    def add_exported(self, entries: list[tuple[Hashable, bytes]]) -> None:
        """Keep gradients another process computed (:meth:`export`); revived on first use."""
        for key, data in entries:
            self._store(key, data)

    def __len__(self) -> int:
        return len(self._items)


def _portable(grad: Gradient) -> bytes:
    import copy
    import io

    light = copy.copy(grad)
    light.model = None  # the process that revives it has the model (preloaded) itself
    buffer = io.BytesIO()
    torch.save(light, buffer)
    return buffer.getvalue()


def _revive(data: bytes, model: nn.Module | None = None, device: torch.device | str = "cpu") -> Gradient:
    import io

    grad = torch.load(io.BytesIO(data), map_location=device, weights_only=False)  # our own bytes
    grad.model = model
    return grad


class OutputDirs:
    """Per-request output folders under one temporary root.

    Each :meth:`new` folder lives until ``keep`` newer ones exist or it is ``max_age_s``
    old; the root is removed at interpreter exit (and by :meth:`cleanup`).
    """

    def __init__(self, root: str | Path | None = None, keep: int = 32, max_age_s: float = 3600.0) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="morphlib-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        atexit.register(self.cleanup)

    def new(self, prefix: str = "run") -> Path:
        """A fresh empty folder; older folders beyond the limits are deleted first."""
        with self._lock:
            self.prune()
            return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.root))

    def prune(self) -> None:
        if not self.root.is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
        folders = sorted((p for p in self.root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        now = time.time()
        excess = len(folders) - (self.keep - 1)
        for i, folder in enumerate(folders):
            if i < excess or now - folder.stat().st_mtime > self.max_age_s:
                shutil.rmtree(folder, ignore_errors=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


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


def gradient_options(s: Settings, family: str) -> dict:
    """The keyword arguments of :func:`morphlib.gradient` (and :func:`morphlib.morph`) that
    ``s`` sets for ``family``: what the app's morph is, as a library call."""
    pyramid = None
    if family.startswith("csp"):
        pyramid = {"bandwidth": s.bandwidth}
        if s.orientations:
            pyramid["orientations"] = s.orientations
    return dict(
        family=family,
        luma_only=s.luma_only,
        phase_cap=s.phase_cap or None,
        smooth_sigma=s.smooth_sigma or None,
        pyramid=pyramid,
    )


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
        loaded = load_image(image)
        notes = list(loaded.notes)
        size = tuple(choice.entry.input_size) if choice.entry is not None else _input_size(model)
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
        labels = _labels(p.model, probs.numel())
        values, indices = probs.topk(min(k, len(labels)))
        top = [(labels[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]
        suggestion = top[1][0] if len(top) > 1 else top[0][0]
        return Prediction(p.model_id, top, labels, suggestion, p.notes)

    def _gradient(self, p: _Prepared, target: int, family: str, s: Settings) -> tuple[Gradient, bool]:
        options = gradient_options(s, family)
        key = (
            p.digest,
            p.model_id,
            str(p.image.device),
            target,
            tuple(sorted((k, repr(v)) for k, v in options.items())),
        )
        return self.cache.get(
            key,
            lambda: gradient(p.model, p.image, target, **options),
            revive=lambda data: _revive(data, p.model, p.image.device),
        )

    def _target(self, p: _Prepared, s: Settings) -> int:
        with torch.no_grad():
            probs = torch.softmax(p.model(p.image).float(), dim=-1)[0].cpu()
        labels = _labels(p.model, probs.numel())
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
        if s.family not in ("pixel", "fourier-phase", "csp-phase", "csp-joint", "csp-amplitude"):
            raise ValueError(f"unknown family {s.family!r}")
        progress(0.02, "loading the model and the image")
        p = self.prepare(image, s.model)
        target = self._target(p, s)
        progress(0.1, "class gradient (one backward pass)")
        grad, cached = self._gradient(p, target, s.family, s)
        notes = list(p.notes)
        budget = alpha = None
        found = None
        if s.mode == "auto":
            if s.regime == "frozen":  # iterative paths search as they walk, below
                progress(0.3, "searching the smallest strength that reaches the target")
                found = auto_strength(grad, min_prob=s.prob or None, max_budget=s.strength or None)
                alpha = found.alpha
        elif s.mode == "budget":
            budget = s.strength or default_budget(p.image)
        else:
            if s.strength <= 0:
                raise ValueError(
                    "amplification mode needs a strength > 0 (the largest parameter change: radians "
                    "of phase, or pixel values for the pixel family)"
                )
            alpha = s.strength

        def step(done: int, total: int) -> None:
            step_progress(0.35 + 0.35 * done / max(total, 1), f"{s.regime} steps {done}/{total}")

        if s.mode == "auto" and s.regime != "frozen":  # walk the path until the target wins
            progress(0.35, f"{s.regime} steps until the target wins")
            result, found = auto_morph(
                p.model,
                p.image,
                target,
                regime=s.regime,
                frames=s.frames,
                min_prob=s.prob or None,
                max_budget=s.strength or None,
                grad=grad,
                progress=step,
            )
        else:
            progress(0.35, "rendering and scoring the frames")
            result = morph(
                p.model,
                p.image,
                target,
                family=s.family,
                regime=s.regime,
                frames=s.frames,
                budget=budget,
                alpha=alpha,
                grad=grad,
                progress=step,
            )
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
        budget = float(budget) if budget else default_budget(p.image)
        videos, titles, rows, results = [], [], [], {}
        failed: dict[str, str] = {}
        for i, family in enumerate(COMPARE_FAMILIES):
            progress(0.05 + 0.8 * i / len(COMPARE_FAMILIES), f"{family}: gradient and frames")
            try:
                grad, _ = self._gradient(p, target, family, s)
                r = morph(
                    p.model,
                    p.image,
                    target,
                    family=family,
                    regime=s.regime,
                    frames=s.frames,
                    budget=budget,
                    grad=grad,
                    progress=False,
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
            side_by_side(ordered, titles), out / "compare.mp4", fps=self.fps, preset=VIDEO_PRESET
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


def _labels(model: nn.Module, n: int) -> list[str]:
    labels = getattr(model, "labels", None)
    return [str(x) for x in labels] if labels is not None and len(labels) == n else [str(i) for i in range(n)]


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
        lines.append(("✓ " if found.reached else "⚠ ") + f"Auto strength: {found.message}")
    walked = result.params["regime"] != "frozen" and (found is None or found.budget > 0)
    if not walked:  # one gradient: the frozen regime, or a path that had nothing to walk
        lines.append("Gradient " + ("reused from the cache." if cached else "computed (one backward pass)."))
    else:  # an iterative path takes a fresh gradient at every step after the first
        first = "reused from the cache" if cached else "computed here"
        lines.append(f"One gradient (backward pass) per step of the path, the first one {first}.")
    lines += [f"- {note}" for note in notes]
    return "\n\n".join(lines[:3]) + ("\n\n" + "\n".join(lines[3:]) if len(lines) > 3 else "")
