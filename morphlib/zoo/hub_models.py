"""Any timm or transformers image classifier of the Hugging Face Hub by id
(``hf-hub:timm/convnext_small.fb_in1k``, ``hf-hub:google/vit-base-patch16-224``), or in a
local folder, with no manifest entry: its :class:`ZooEntry` is made from its own files.

The format is told from ``config.json``: timm's has ``architecture``, transformers'
``architectures`` / ``model_type`` (see :mod:`morphlib.zoo.transformers_models`).
A timm model's entry is made from the ``config.json`` that timm writes beside the weights
(:func:`timm.models.push_to_hf_hub` / :func:`timm.models.save_for_hf`): ``architecture``,
``num_classes``, ``pretrained_cfg`` (``input_size``, ``mean``, ``std``, ``license``) and,
if present, ``label_names`` / ``label_descriptions``.  Without label names, a class count
that timm knows as an ImageNet subset (1000: ``imagenet-1k``) takes timm's ImageNet labels;
any other count is labelled by index.

Examples
--------
>>> config = {"architecture": "resnet18", "num_classes": 1000,
...           "pretrained_cfg": {"input_size": [3, 224, 224], "mean": [0.485, 0.456, 0.406],
...                              "std": [0.229, 0.224, 0.225]}}
>>> entry = entry_from_config("hf-hub:timm/resnet18.a1_in1k", config)
>>> entry.dataset, entry.input_size, entry.hub_repo
('imagenet-1k', (224, 224), 'timm/resnet18.a1_in1k')
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, ImageNetInfo, infer_imagenet_subset

from morphlib.zoo.checks import check_input_size, check_normalisation
from morphlib.zoo.entry import ZooEntry
from morphlib.zoo.hub import fetch
from morphlib.zoo.transformers_models import entry_from_transformers, is_transformers_config

#: How a Hub model is named wherever a zoo id is accepted (timm's own prefix).
PREFIX = "hf-hub:"
_REPO = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_hub_id(model_id: str) -> bool:
    return model_id.startswith(PREFIX)


def hub_entry(model_id: str) -> ZooEntry:
    """The entry of ``hf-hub:org/name``, from its ``config.json`` (local Hub cache first).

    Raises
    ------
    ValueError
        A malformed id, or a ``config.json`` that is neither timm's nor transformers'.
    ModelUnavailableError
        Not cached, and the Hub cannot be reached now.
    """
    repo = model_id[len(PREFIX) :]
    if not _REPO.fullmatch(repo):
        raise ValueError(
            f"expected hf-hub:ORG/NAME (e.g. hf-hub:timm/convnext_small.fb_in1k), got {model_id!r}"
        )
    return described_entry(
        model_id, lambda name: fetch(repo, name, model_id), "hf-hub", repo, "from the Hugging Face Hub"
    )


def folder_entry(model_id: str, folder: Path) -> ZooEntry:
    """The entry of a timm or transformers model saved in ``folder`` (``config.json`` and beside it)."""
    return described_entry(model_id, lambda name: folder / name, "local", str(folder), f"in {folder}")


def described_entry(
    model_id: str, path_of: Callable[[str], Path], source: str, weights: str, where: str
) -> ZooEntry:
    """The entry of a model described by its ``config.json`` (and ``preprocessor_config.json`` for
    transformers), whose local paths ``path_of(name)`` gives (fetching them if need be)."""
    config = _read_json(model_id, path_of("config.json"))
    if is_transformers_config(config):
        processor = _read_json(model_id, path_of("preprocessor_config.json"))
        description = f"transformers model {model_id.removeprefix(PREFIX)} {where}"
        return entry_from_transformers(model_id, config, processor, source, weights, description)
    return entry_from_config(model_id, config, source, weights, f"timm model {weights} {where}")


def _read_json(model_id: str, path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ValueError(f"{model_id}: {path.name} is missing ({path})") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{model_id}: {path.name} is not readable JSON ({err})") from err


def entry_from_config(
    model_id: str, config: Any, source: str = "hf-hub", weights: str | None = None, description: str = ""
) -> ZooEntry:
    """A :class:`ZooEntry` from a timm ``config.json`` already parsed (see the module docstring)."""
    repo = model_id.removeprefix(PREFIX)
    weights = weights or repo
    if not isinstance(config, dict) or not isinstance(config.get("architecture"), str):
        raise ValueError(
            f"{model_id}: config.json is not a timm model config (no 'architecture') "
            "nor a transformers one (no 'architectures' or 'model_type')"
        )
    pretrained = config.get("pretrained_cfg") or {}
    num_classes = config.get("num_classes", pretrained.get("num_classes"))
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{model_id}: config.json gives no class count ('num_classes'), got {num_classes!r}")
    shape = pretrained.get("input_size", (3, 224, 224))
    if not isinstance(shape, list | tuple) or len(shape) != 3:
        raise ValueError(
            f"{model_id}: config.json: input_size must be [channels, height, width], got {shape!r}"
        )
    channels = shape[0]
    height, width = check_input_size(tuple(shape[1:]), model_id)
    mean, std = check_normalisation(
        pretrained.get("mean", IMAGENET_DEFAULT_MEAN), pretrained.get("std", IMAGENET_DEFAULT_STD), model_id
    )
    if len(mean) != channels:
        raise ValueError(f"{model_id}: {channels} input channels but mean {mean} and std {std}")

    labels, ids = _labels(model_id, config, num_classes)
    dataset = model_id if ids else infer_imagenet_subset({"num_classes": num_classes}) or model_id
    if dataset == model_id and not ids:  # no names and no known label set: classes by index
        ids = labels = tuple(str(i) for i in range(num_classes))
    return ZooEntry(
        id=model_id,
        name=repo,
        source=source,
        format="timm",
        architecture=config["architecture"],
        weights=weights,
        dataset=dataset,
        input_size=(height, width),
        mean=mean,
        std=std,
        robust=False,  # unknown: a config.json does not say how the weights were trained
        licence=str(pretrained.get("license", "see the Hub repository")),
        description=description or f"timm model {repo} from the Hugging Face Hub (by id, not in zoo.yaml)",
        labels=labels,
        label_ids=ids,
    )


def _labels(model_id: str, config: dict, num_classes: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(labels, ids)`` from ``label_names`` (list, or dict index -> name) and ``label_descriptions``."""
    names = config.get("label_names")
    if not names:
        return (), ()
    if isinstance(names, dict):
        names = [names.get(str(i), names.get(i, str(i))) for i in range(num_classes)]
    if not isinstance(names, list) or len(names) != num_classes:
        raise ValueError(f"{model_id}: config.json has {len(names)} label_names for {num_classes} classes")
    ids = tuple(str(n) for n in names)
    descriptions = config.get("label_descriptions") or _imagenet_descriptions(num_classes)
    return tuple(str(descriptions.get(n, n)) for n in ids), ids


def _imagenet_descriptions(num_classes: int) -> dict[str, str]:
    """WordNet id -> description for an ImageNet subset of that many classes (timm's files), else ``{}``."""
    subset = infer_imagenet_subset({"num_classes": num_classes})
    if subset is None:
        return {}
    info = ImageNetInfo(subset)
    return dict(zip(info.label_names(), info.label_descriptions(), strict=True))
