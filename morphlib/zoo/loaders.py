"""Build a network from the weights a manifest entry points at.

Two weight formats, whatever the source:

* ``timm``: a folder in timm's Hugging Face layout (``config.json`` +
  ``model.safetensors``), as :func:`timm.models.save_for_hf` writes it: the
  bundled models under ``assets/`` and the ``timm/...`` Hub repositories;
* ``robustness-ckpt``: a checkpoint of the Madry lab ``robustness`` library
  (``madrylab/robust-imagenet-models``): the network's state dict under
  ``"model"``, keys prefixed ``module.model.``, beside the normaliser's
  (``module.normalizer.*``) and the attacker's (``module.attacker.*``) copies.
  It is read with ``torch.load(weights_only=True)``: tensors and plain
  containers only, never arbitrary pickled objects.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from morphlib.zoo.hub import cached_file, fetch
from morphlib.zoo.manifest import REPO_ROOT, ZooEntry

TIMM_FILES = ("config.json", "model.safetensors")
NETWORK_PREFIX = "module.model."


def load_timm_folder(folder: Path, num_classes: int) -> nn.Module:
    """A timm network from a ``config.json`` + ``model.safetensors`` folder."""
    net = timm.create_model(f"local-dir:{folder}", pretrained=True)
    if net.num_classes != num_classes:
        raise ValueError(f"{folder} holds a {net.num_classes}-class model; its label set has {num_classes}")
    return net


def robustness_state_dict(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The network's weights from a ``robustness`` checkpoint, with timm/torchvision key names.

    Examples
    --------
    >>> ckpt = {"model": {"module.model.fc.bias": torch.zeros(2),
    ...                   "module.attacker.model.fc.bias": torch.zeros(2),
    ...                   "module.normalizer.new_mean": torch.zeros(3, 1, 1)}, "epoch": 3}
    >>> list(robustness_state_dict(ckpt))
    ['fc.bias']
    """
    state = checkpoint.get("model", checkpoint.get("state_dict")) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError("not a robustness-library checkpoint: no 'model' (or 'state_dict') dictionary")
    weights = {k[len(NETWORK_PREFIX) :]: v for k, v in state.items() if k.startswith(NETWORK_PREFIX)}
    if not weights:
        raise ValueError(f"not a robustness-library checkpoint: no key starts with {NETWORK_PREFIX!r}")
    return weights


def load_robustness_checkpoint(path: Path, architecture: str, num_classes: int) -> nn.Module:
    """A timm ``architecture`` carrying the weights of a ``robustness`` checkpoint file."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # anything unpicklable without arbitrary code is refused
        raise ValueError(f"{path} cannot be read as a checkpoint of plain tensors: {err}") from err
    net = timm.create_model(architecture, pretrained=False, num_classes=num_classes)
    missing, unexpected = net.load_state_dict(robustness_state_dict(checkpoint), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit {architecture}: "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    return net


def build_network(entry: ZooEntry, num_classes: int) -> nn.Module:
    """The network of ``entry``, its weights read from ``assets/`` or the Hub (cache first)."""
    if entry.source == "bundled":
        folder = REPO_ROOT / entry.weights
        if not all((folder / name).is_file() for name in TIMM_FILES):
            raise ValueError(f"bundled model {entry.id!r}: {folder} lacks {' or '.join(TIMM_FILES)}")
        return load_timm_folder(folder, num_classes)
    if entry.format == "timm":
        paths = [fetch(entry.hub_repo, name, entry.id) for name in TIMM_FILES]
        return load_timm_folder(paths[0].parent, num_classes)
    path = fetch(entry.hub_repo, entry.hub_filename or "", entry.id)
    return load_robustness_checkpoint(path, entry.architecture, num_classes)


def is_available(entry: ZooEntry) -> bool:
    """Whether ``entry`` can be loaded now without a download."""
    if entry.source == "bundled":
        return all((REPO_ROOT / entry.weights / name).is_file() for name in TIMM_FILES)
    files = TIMM_FILES if entry.format == "timm" else (entry.hub_filename or "",)
    return all(cached_file(entry.hub_repo, name) is not None for name in files)
