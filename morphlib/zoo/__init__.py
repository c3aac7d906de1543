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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from morphlib import data
from morphlib.zoo.hub import ModelUnavailableError
from morphlib.zoo.hub_models import hub_entry, is_hub_id
from morphlib.zoo.loaders import build_network, is_available
from morphlib.zoo.manifest import ManifestError, ZooEntry, read_manifest
from morphlib.zoo.model import Preprocess, ZooModel

__all__ = [
    "ManifestError",
    "ModelStatus",
    "ModelUnavailableError",
    "Preprocess",
    "ZooEntry",
    "ZooModel",
    "entry_for",
    "label_names",
    "label_set",
    "list_models",
    "load",
    "read_manifest",
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
    location : {"bundled", "cached", "download"}
        Where the weights are: shipped, in the local Hub cache, or still to fetch.
    """

    entry: ZooEntry
    available: bool
    location: str


def _entries(manifest: Manifest) -> dict[str, ZooEntry]:
    return manifest if isinstance(manifest, dict) else read_manifest(manifest)


def label_names(dataset: str) -> list[str]:
    """Class names of a label set: a :mod:`morphlib.data` set or an ImageNet one (offline, from timm)."""
    return label_set(dataset)[0]


def label_set(dataset: str) -> tuple[list[str], list[str]]:
    """``(names, ids)`` of a label set; ImageNet's ids are WordNet ids (``n01440764``), others the names.

    ``dataset`` is a :mod:`morphlib.data` set or an ImageNet subset timm knows
    (``imagenet-1k``, ``imagenet-22k``, ...).
    """
    if dataset.startswith("imagenet"):
        from timm.data import ImageNetInfo

        info = ImageNetInfo(dataset)
        return list(info.label_descriptions()), list(info.label_names())
    return list(data.LABEL_NAMES[dataset]), list(data.LABEL_NAMES[dataset])


def list_models(manifest: Manifest = None) -> list[ModelStatus]:
    """Every zoo model, with whether it is available now or needs a download."""
    statuses = []
    for entry in _entries(manifest).values():
        available = is_available(entry)
        location = "bundled" if entry.source == "bundled" else "cached" if available else "download"
        statuses.append(ModelStatus(entry, available, location))
    return statuses


def entry_for(model_id: str, manifest: Manifest = None) -> ZooEntry:
    """The entry of a zoo id or of an ``hf-hub:`` id (whose ``config.json`` may be fetched)."""
    if is_hub_id(model_id):
        return hub_entry(model_id)
    entries = _entries(manifest)
    if model_id not in entries:
        raise ValueError(
            f"unknown model {model_id!r}; known models: {', '.join(entries)}, "
            "or any timm model of the Hub as hf-hub:ORG/NAME"
        )
    return entries[model_id]


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load(model_id: str, device: str | torch.device = "cpu", manifest: Manifest = None) -> ZooModel:
    """Load a zoo model by id, ready for inference and input gradients.

    Parameters
    ----------
    model_id : str
        An id of ``zoo.yaml`` (see :func:`list_models`), or any timm model of the
        Hugging Face Hub as ``hf-hub:ORG/NAME`` (e.g. ``hf-hub:timm/convnext_small.fb_in1k``),
        described by its own ``config.json`` (see :mod:`morphlib.zoo.hub_models`).
    device : {"cpu", "cuda", "auto"} or torch.device
        Where to put the model; ``"auto"`` picks CUDA when present.
    manifest : path or dict, optional
        Another manifest (file, or entries from :func:`read_manifest`); default ``zoo.yaml``.

    Returns
    -------
    ZooModel
        In eval mode; takes ``[0, 1]`` RGB images of any size.

    Raises
    ------
    ValueError
        Unknown id (the message lists the known ones), or a Hub config that is not timm's.
    ModelUnavailableError
        A Hub model that is not cached and cannot be downloaded now.
    """
    entry = entry_for(model_id, manifest)
    labels, ids = (entry.labels, entry.label_ids) if entry.labels else label_set(entry.dataset)
    net = build_network(entry, len(labels))
    model = ZooModel(net.float(), entry, labels, ids).to(_device(device))
    for p in model.parameters():
        p.requires_grad_(False)  # gradients are taken with respect to images, not weights
    return model
