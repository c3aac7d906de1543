"""The models the app offers: the zoo (and models registered in code), loaded on demand and kept
in a small LRU cache, with their status (bundled, cached, to download) and a description."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from morphlib.zoo import ModelUnavailableError, ZooEntry, list_models, load, read_manifest

log = logging.getLogger("morphlib.app")

#: Preferred default models, first available wins: the paper's robust ImageNet ResNet-50 when it
#: loads without a download (cached, or preloaded on a Space), else the best bundled model.
DEFAULT_MODELS = (
    "resnet50-l2-eps3",
    "mnist-cnn-robust-eps3",
    "mnist-cnn-robust",
    "digits-cnn-robust",
    "orientation-cnn-robust",
    "shapes-cnn-robust",
    "digits-cnn",
)


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
        """Every model that can drive a morph, with its current status (checked now: weights may
        appear while serving); judges without a gradient (``differentiable: false``) are left out."""
        out = [
            ModelChoice(
                mid,
                str(getattr(getattr(m, "entry", None), "name", mid)),
                "extra",
                True,
                getattr(m, "entry", None),
            )
            for mid, m in self.extra.items()
            if getattr(m, "differentiable", True) is not False
        ]
        for status in list_models(self.entries):
            e = status.entry
            if e.differentiable:
                out.append(ModelChoice(e.id, e.name, status.location, status.available, e))
        return out

    def choice(self, model_id: str) -> ModelChoice:
        """The status of ``model_id``; ValueError for an unknown id or a judge without a gradient."""
        model_id = str(model_id or "").strip()
        judge = self.entries.get(model_id)
        if model_id not in self.extra and judge is not None and not judge.differentiable:
            raise ValueError(
                f"{model_id!r} is a judge without a gradient (it cannot drive a morph); pick another model"
            )
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
        except ModelUnavailableError as err:  # the zoo says what is wrong; the app, what to do
            raise ModelUnavailableError(f"{err}; pick another model") from err

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
        if not e.robust and e.dataset.startswith("imagenet"):
            text += (
                "\n\nℹ A standard model: its gradients are not perceptually aligned, so its morphs tend to "
                "look like adversarial noise. An adversarially robust model's look like the object being "
                "redrawn (the paper's point): pick the robust ResNet-50 where it can be downloaded."
            )
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
