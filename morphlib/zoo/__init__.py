"""The model zoo: classifiers listed in ``zoo.yaml``, loaded by id.

Examples
--------
>>> from morphlib.zoo import load, list_models
>>> model = load("digits-cnn")
>>> images = torch.rand(2, 3, 32, 32)              # [0, 1] RGB, any size
>>> model(images).shape
torch.Size([2, 10])
>>> label, prob = model.predict(images[0], k=1)[0]
>>> label in model.labels
True
>>> [s.entry.id for s in list_models() if s.location == "bundled"][:2]
['shapes-cnn', 'shapes-cnn-robust']

Any ``nn.Module`` of your own becomes a zoo model with :func:`wrap`; a folder of your own
(timm's ``save_for_hf`` or transformers' ``save_pretrained`` layout) joins a manifest of your
own as a ``source: local`` entry (see :mod:`morphlib.zoo.manifest`), read by default when the
environment variable ``MORPHLIB_ZOO`` names it.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn

from morphlib.zoo.entry import ZooEntry
from morphlib.zoo.hub import ModelUnavailableError
from morphlib.zoo.hub_models import hub_entry, is_hub_id
from morphlib.zoo.judges import independent_judges, is_independent, is_sibling, relation
from morphlib.zoo.labels import label_names, label_set
from morphlib.zoo.loaders import build_network, is_available
from morphlib.zoo.manifest import MANIFEST_VARIABLE, ManifestError, read_manifest
from morphlib.zoo.model import Preprocess, ProbabilitiesWarning, ZooModel
from morphlib.zoo.wrap import wrap

__all__ = [
    "MANIFEST_VARIABLE",
    "ManifestError",
    "ModelStatus",
    "ModelUnavailableError",
    "Preprocess",
    "ProbabilitiesWarning",
    "ZooEntry",
    "ZooModel",
    "entry_for",
    "independent_judges",
    "is_independent",
    "is_sibling",
    "label_names",
    "label_set",
    "list_models",
    "load",
    "read_manifest",
    "register",
    "relation",
    "unregister",
    "wrap",
]

Manifest = str | Path | dict[str, ZooEntry] | None


@dataclass(frozen=True)
class ModelStatus:
    """Whether a zoo model can be loaded now.

    Attributes
    ----------
    entry : ZooEntry
    available : bool
        Loadable without a download.
    location : {"bundled", "cached", "download", "local", "package"}
        Where the weights are: shipped, in the local Hub cache, still to fetch from the Hub,
        in a folder of the user's, or in an installed Python package.
    """

    entry: ZooEntry
    available: bool
    location: str


def _entries(manifest: Manifest) -> dict[str, ZooEntry]:
    return manifest if isinstance(manifest, dict) else read_manifest(manifest)


def list_models(manifest: Manifest = None) -> list[ModelStatus]:
    """Every zoo model, with whether it is available now or needs a download."""
    statuses = []
    for entry in _entries(manifest).values():
        available = is_available(entry)
        hub = "cached" if available else "download"
        location = hub if entry.source == "hf-hub" else entry.source
        statuses.append(ModelStatus(entry, available, location))
    return statuses


#: Models registered in this process (:func:`register`), by id.
_REGISTERED: dict[str, ZooModel] = {}


def register(model: ZooModel) -> str:
    """Make ``model`` (e.g. from :func:`wrap`) loadable by its id in this process, wherever a zoo id
    is taken (:func:`load`, :func:`morphlib.evaluate.evaluate`, ...); returns the id.

    A registered id comes before the manifest's; registering the same id again replaces the model.
    Other processes (Ray workers) do not see it: give them a manifest (``MORPHLIB_ZOO``).
    """
    if not isinstance(model, ZooModel):
        raise TypeError(f"register takes a ZooModel (see wrap), got {type(model).__name__}")
    _REGISTERED[model.entry.id] = model
    return model.entry.id


def unregister(model_id: str) -> None:
    """Forget a model :func:`register` made loadable (nothing happens for an unknown id)."""
    _REGISTERED.pop(model_id, None)


def entry_for(model_id: str, manifest: Manifest = None) -> ZooEntry:
    """The entry of a registered model, a zoo id or an ``hf-hub:`` id (fetching its ``config.json``)."""
    if model_id in _REGISTERED:
        return _REGISTERED[model_id].entry
    if is_hub_id(model_id):
        return hub_entry(model_id)
    entries = _entries(manifest)
    if model_id not in entries:
        raise ValueError(
            f"unknown model {model_id!r}; known models: {', '.join(entries)}, "
            "or any timm or transformers model of the Hub as hf-hub:ORG/NAME"
        )
    return entries[model_id]


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load(model_id: str | ZooModel, device: str | torch.device = "cpu", manifest: Manifest = None) -> ZooModel:
    """Load a zoo model by id, ready for inference and input gradients.

    Parameters
    ----------
    model_id : str or ZooModel
        An id of a model :func:`register` made loadable, of the manifest (see :func:`list_models`),
        or any timm or transformers image classifier of the Hugging Face Hub as ``hf-hub:ORG/NAME`` (e.g.
        ``hf-hub:timm/convnext_small.fb_in1k``), described by its own ``config.json`` (see
        :mod:`morphlib.zoo.hub_models`).  A :class:`ZooModel` (e.g. from :func:`wrap`) is
        returned as it is, on ``device``.
    device : {"cpu", "cuda", "auto"} or torch.device
        Where to put the model; ``"auto"`` picks CUDA when present.
    manifest : path or dict, optional
        Another manifest (file, or entries from :func:`read_manifest`); default the one
        ``MORPHLIB_ZOO`` names, else ``zoo.yaml``.

    Returns
    -------
    ZooModel
        In eval mode; takes ``[0, 1]`` RGB images of any size.

    Raises
    ------
    TypeError
        A network that is not a :class:`ZooModel`: :func:`wrap` it first.
    ValueError
        Unknown id (the message lists the known ones), or a Hub config that is neither timm's
        nor transformers'.
    ModelUnavailableError
        A Hub model that is not cached and cannot be downloaded now; weights that are missing,
        corrupt (NaN), or do not fit the architecture or the label set.
    """
    if isinstance(model_id, ZooModel):
        return model_id.to(_device(device))
    if isinstance(model_id, nn.Module):
        raise TypeError(
            f"load takes a zoo id, not a {type(model_id).__name__}; to use your own network, "
            "morphlib.zoo.wrap(module, labels=[...], mean=[...], std=[...], input_size=(H, W))"
        )
    if not isinstance(model_id, str):
        raise TypeError(f"load takes a zoo id (a string), got {type(model_id).__name__}")
    if model_id in _REGISTERED:
        return _REGISTERED[model_id].to(_device(device))
    entry = entry_for(model_id, manifest)
    labels, ids = label_set(entry)
    try:
        net = build_network(entry, len(labels))
    except ModelUnavailableError:
        raise
    except (ValueError, RuntimeError, OSError, EOFError, pickle.UnpicklingError, SafetensorError) as err:
        detail = " ".join(f"{type(err).__name__}: {err}".split())
        detail = detail if len(detail) <= 300 else detail[:297] + "..."
        raise ModelUnavailableError(
            f"model {entry.id!r} cannot be loaded: its weights are corrupt or incompatible with its "
            f"architecture or labels ({detail}); fix or replace them"
        ) from err
    model = ZooModel(net.float(), entry, labels, ids).to(_device(device))
    for p in model.parameters():
        p.requires_grad_(False)  # gradients are taken with respect to images, not weights
    return model
