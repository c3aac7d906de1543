"""Bring your own classifier: any ``nn.Module`` as a zoo model that all of morphlib accepts.

Examples
--------
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
>>> model = wrap(net, labels=["cat", "dog"], mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25],
...              input_size=(32, 32), name="pets")
>>> model(torch.rand(1, 3, 100, 80)).shape         # any size, resized inside, gradients reach pixels
torch.Size([1, 2])
>>> model.entry.id, model.labels
('pets', ['cat', 'dog'])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

from morphlib.zoo.checks import CHANNELS, check_input_size, check_normalisation
from morphlib.zoo.entry import ZooEntry
from morphlib.zoo.labels import label_set
from morphlib.zoo.model import ZooModel, logits_of

#: The input size assumed for a module that does not say its own (ImageNet's).
DEFAULT_INPUT_SIZE = (224, 224)


def wrap(
    module: nn.Module,
    labels: Sequence[str] | None = None,
    mean: float | Sequence[float] = 0.0,
    std: float | Sequence[float] = 1.0,
    input_size: Sequence[int] | None = None,
    channels: int = 3,
    name: str | None = None,
    description: str | None = None,
    dataset: str | None = None,
) -> ZooModel:
    """Make ``module`` a :class:`ZooModel`: ``[0, 1]`` images in, resized and normalised inside.

    The module is shared, not copied (it is put in eval mode).  It is run once on a blank
    batch to check what it answers.

    Parameters
    ----------
    module : nn.Module
        Takes normalised ``(B, channels, H, W)`` batches; returns logits ``(B, K)``, a tuple
        starting with them, or an object with ``.logits`` (transformers).
    labels : sequence of str, optional
        One name per output, in order; default those of ``dataset``, else the indices
        ``"0"``, ``"1"``, ...
    mean, std : float or sequence of floats
        ``(x - mean) / std`` on ``[0, 1]`` pixels, per channel (a single number: every channel);
        default none (the module takes ``[0, 1]`` pixels).
    input_size : (int, int), optional
        ``(H, W)`` the module was trained on; other sizes are resized to it.  Default: the
        module's own (timm's ``pretrained_cfg``, transformers' ``config.image_size``), else 224 × 224.
    channels : {3, 1}
        RGB or grey; RGB images are given to a grey module as their luma, grey ones to an RGB
        module repeated.
    name, description : str, optional
        For the app and reports; ``name`` is also the model's id.
    dataset : str, optional
        The label set the module was trained on, if a known one (``digits``, ``mnist``,
        ``imagenet-1k``, ...: see :func:`~morphlib.zoo.label_set`): its class names, and an
        evaluation on that data set accepts the model.  Default: the model's own.

    Raises
    ------
    TypeError
        ``module`` is not an ``nn.Module``.
    ValueError
        A channel count, input size or normalisation the module cannot take, labels that do not
        match its outputs; the message says what to pass instead.
    """
    if isinstance(module, ZooModel):
        raise TypeError("this is already a zoo model: use it as it is")
    if not isinstance(module, nn.Module):
        raise TypeError(f"wrap takes a torch.nn.Module, got {type(module).__name__}")
    kind = type(module).__name__
    model_id = name or re.sub(r"[^a-z0-9._-]+", "-", kind.lower())
    where = f"wrapped {kind}"
    if channels not in CHANNELS:
        raise ValueError(
            f"{where}: morphlib feeds grey (channels=1) or RGB (channels=3) images, not {channels} channels; "
            "put a layer that makes your channels from RGB in front of the module"
        )
    first = _first_layer_channels(module)
    if first is not None and first[1] != channels:
        hint = (
            f"pass channels={first[1]}"
            if first[1] in CHANNELS
            else "put a layer that maps RGB to them in front"
        )
        raise ValueError(
            f"{where}: its first layer {first[0]!r} takes {first[1]} channels, not {channels}; {hint}"
        )
    size = check_input_size(tuple(input_size) if input_size is not None else _own_input_size(module), where)
    per_channel = [(v,) * channels if isinstance(v, int | float) else tuple(v) for v in (mean, std)]
    mean, std = check_normalisation(*per_channel, where)
    if len(mean) != channels:
        raise ValueError(f"{where}: mean and std need {channels} values (one per channel), got {len(mean)}")

    classes = _probe(module, channels, size, where)
    if dataset is not None and labels is not None:
        raise ValueError(f"{where}: give labels or dataset (a known label set), not both")
    if dataset is not None:
        names, ids = label_set(dataset)
    else:
        names = [str(i) for i in range(classes)] if labels is None else [str(label) for label in labels]
        ids = names
    if len(names) != classes:
        raise ValueError(
            f"{where}: it answers {classes} classes but labels has {len(names)} names; give one per output"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: labels must be distinct (targets are picked by name)")

    entry = ZooEntry(
        id=model_id,
        name=name or kind,
        source="module",
        format="module",
        architecture=kind,
        weights="",
        dataset=dataset or model_id,
        input_size=size,
        mean=mean,
        std=std,
        robust=False,
        licence="unknown (wrapped in code)",
        description=description or f"A {kind} with {classes} classes, wrapped in code.",
        labels=tuple(names),
        label_ids=tuple(ids),
    )
    model = ZooModel(module, entry, names, ids)
    model.outputs_checked = True  # by the probe: warned there if need be
    return model.to(_device(module))


def _first_layer_channels(module: nn.Module) -> tuple[str, int] | None:
    """Name and input channels of the first convolution or patch embedding, if there is one."""
    for layer_name, layer in module.named_modules():
        if isinstance(layer, nn.Conv2d | nn.Conv1d | nn.Conv3d):
            return layer_name, layer.in_channels
        if isinstance(layer, nn.Linear):
            return None  # an MLP on flattened pixels: no channel count to read
    return None


def _own_input_size(module: nn.Module) -> tuple[int, int]:
    cfg = getattr(module, "pretrained_cfg", None)
    if isinstance(cfg, dict) and len(cfg.get("input_size") or ()) == 3:
        return tuple(int(v) for v in cfg["input_size"][1:])
    size = getattr(getattr(module, "config", None), "image_size", None)
    if isinstance(size, int):
        return size, size
    if isinstance(size, list | tuple) and len(size) == 2:
        return int(size[0]), int(size[1])
    return DEFAULT_INPUT_SIZE


def _device(module: nn.Module) -> torch.device:
    tensor = next(module.parameters(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _probe(module: nn.Module, channels: int, size: tuple[int, int], where: str) -> int:
    """How many classes ``module`` answers on one blank batch; a clear error if it fails."""
    module.eval()
    batch = torch.full((1, channels, *size), 0.5, device=_device(module))
    try:
        with torch.no_grad():
            out = logits_of(module(batch))
    except (RuntimeError, ValueError, TypeError) as err:
        detail = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        raise ValueError(
            f"{where} fails on a (1, {channels}, {size[0]}, {size[1]}) batch ({detail}); "
            "pass the input_size=(H, W) and channels= it was trained on"
        ) from err
    return int(out.shape[1])
