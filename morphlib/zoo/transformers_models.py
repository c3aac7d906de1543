"""transformers image classifiers: a folder (or Hub repository) holding ``config.json``,
``preprocessor_config.json`` and ``model.safetensors``, as ``save_pretrained`` writes them.

The ``transformers`` package is imported only when such a network is built (the
``transformers`` extra: ``pip install 'morphlib[transformers]'``).  The image processor's
steps are folded into the zoo's own differentiable :class:`~morphlib.zoo.Preprocess`, so
gradients are taken with respect to ``[0, 1]`` pixels: the input size is the processor's
crop (or resize) size, and rescaling (``rescale_factor`` on 0-255 pixels) and normalisation
(``image_mean``, ``image_std``) become one ``(x - mean) / std``.

Examples
--------
>>> preprocessing({"size": {"height": 32, "width": 32}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
...                "do_rescale": True, "rescale_factor": 1 / 255}, "x")
((32, 32), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
>>> preprocessing({"size": {"shortest_edge": 224}, "do_rescale": False, "do_normalize": False}, "x")
((224, 224), (0.0, 0.0, 0.0), (0.00392156862745098, 0.00392156862745098, 0.00392156862745098))
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from torch import nn

from morphlib.zoo.checks import check_input_size, check_normalisation
from morphlib.zoo.entry import ZooEntry
from morphlib.zoo.hub import ModelUnavailableError

#: The files of a transformers model folder, in the order they are needed.
FILES = ("config.json", "preprocessor_config.json", "model.safetensors")
_DEFAULT_LABEL = re.compile(r"LABEL_(\d+)")


def is_transformers_config(config: Any) -> bool:
    """Whether a parsed ``config.json`` is transformers' (``architectures``/``model_type``), not timm's."""
    return (
        isinstance(config, dict)
        and "architecture" not in config
        and ("architectures" in config or "model_type" in config)
    )


def preprocessing(processor: Any, where: str) -> tuple[tuple[int, int], tuple[float, ...], tuple[float, ...]]:
    """``(input_size, mean, std)`` on ``[0, 1]`` pixels from a parsed ``preprocessor_config.json``."""
    if not isinstance(processor, dict):
        raise ValueError(f"{where}: preprocessor_config.json is not a JSON object")
    size = processor.get("crop_size") if processor.get("do_center_crop") else None
    size = size or processor.get("size")
    if isinstance(size, int):
        size = {"shortest_edge": size}
    if not isinstance(size, dict):
        raise ValueError(f"{where}: preprocessor_config.json gives no input size ('size'), got {size!r}")
    if "height" in size and "width" in size:
        input_size = (size["height"], size["width"])
    elif "shortest_edge" in size:
        input_size = (size["shortest_edge"], size["shortest_edge"])
    else:
        raise ValueError(
            f"{where}: preprocessor_config.json: size {size!r} has no height/width or shortest_edge"
        )
    # the network sees (pixels_0_255 * rescale - mean) / std, i.e. ([0, 1] pixels - mean') / std'
    scale = (
        255.0 * float(processor.get("rescale_factor", 1 / 255))
        if processor.get("do_rescale", True)
        else 255.0
    )
    if processor.get("do_normalize", True):
        if "image_mean" not in processor or "image_std" not in processor:
            raise ValueError(
                f"{where}: preprocessor_config.json normalises but gives no image_mean/image_std"
            )
        mean, std = processor["image_mean"], processor["image_std"]
    else:
        mean, std = [0.0] * 3, [1.0] * 3
    mean, std = check_normalisation(mean, std, where)
    if not scale > 0:
        raise ValueError(f"{where}: preprocessor_config.json: rescale_factor must be positive")
    mean, std = tuple(m / scale for m in mean), tuple(s / scale for s in std)
    return check_input_size(input_size, where), *check_normalisation(mean, std, where)


def labels_of(config: dict, where: str) -> tuple[str, ...]:
    """Class names from ``id2label`` in index order (transformers' default ``LABEL_i``: the index)."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        count = config.get("num_labels")
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"{where}: config.json gives no classes (id2label or num_labels)")
        return tuple(str(i) for i in range(count))
    try:
        by_index = {int(k): str(v) for k, v in id2label.items()}
    except ValueError as err:
        raise ValueError(f"{where}: config.json: id2label keys must be class indices ({err})") from err
    if sorted(by_index) != list(range(len(by_index))):
        raise ValueError(f"{where}: config.json: id2label must number the classes 0 to {len(by_index) - 1}")
    names = [by_index[i] for i in range(len(by_index))]
    return tuple(m.group(1) if (m := _DEFAULT_LABEL.fullmatch(n)) else n for n in names)


def entry_from_transformers(
    model_id: str, config: Any, processor: Any, source: str, weights: str, description: str
) -> ZooEntry:
    """A :class:`ZooEntry` from a transformers ``config.json`` and ``preprocessor_config.json``."""
    if not is_transformers_config(config):
        raise ValueError(f"{model_id}: config.json is not a transformers model config")
    architectures = config.get("architectures") or [config.get("model_type")]
    input_size, mean, std = preprocessing(processor, model_id)
    channels = int(config.get("num_channels", 3))
    if channels == 1 and len(mean) == 3 and len(set(mean)) == 1 and len(set(std)) == 1:
        mean, std = mean[:1], std[:1]  # a grey network whose processor repeats one value
    if len(mean) != channels:
        raise ValueError(
            f"{model_id}: the network takes {channels} channels but the processor normalises {len(mean)}"
        )
    labels = labels_of(config, model_id)
    labels, ids, dataset = _imagenet_ids(labels) or (labels, labels, model_id)
    return ZooEntry(
        id=model_id,
        name=model_id.removeprefix("hf-hub:"),
        source=source,
        format="transformers",
        architecture=str(architectures[0]),
        weights=weights,
        dataset=dataset,
        input_size=input_size,
        mean=mean,
        std=std,
        robust=False,  # unknown: a config.json does not say how the weights were trained
        licence="see the model card",
        description=description,
        labels=labels,
        label_ids=ids,
    )


def _imagenet_ids(labels: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], str] | None:
    """ImageNet-1k's names, WordNet ids and name, when ``labels`` are timm's ImageNet-1k descriptions."""
    if len(labels) != 1000:
        return None
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    if tuple(info.label_descriptions()) != labels:
        return None
    return labels, tuple(info.label_names()), "imagenet-1k"


def load_transformers_folder(folder: Path, num_classes: int) -> nn.Module:
    """The network of a transformers folder, every weight read from its ``model.safetensors``.

    Raises
    ------
    ModelUnavailableError
        The ``transformers`` package is not installed.
    ValueError
        Weights missing from the file or of other shapes than the config makes (e.g. a config
        with 7 classes beside a classifier for 10): transformers would initialise them at random.
    """
    try:
        import transformers
    except ImportError as err:
        raise ModelUnavailableError(
            f"{folder} holds a transformers model: install the transformers package "
            "(pip install 'morphlib[transformers]')"
        ) from err
    with _quiet(transformers):
        try:
            net, info = transformers.AutoModelForImageClassification.from_pretrained(
                str(folder), use_safetensors=True, output_loading_info=True, ignore_mismatched_sizes=True
            )
        except (ValueError, KeyError, OSError) as err:
            detail = " ".join(str(err).split())[:300]
            raise ValueError(f"{folder}: transformers cannot build this image classifier ({detail})") from err
    mismatched = sorted(
        f"{k} {tuple(saved)} in the file, {tuple(made)} in the config"
        for k, saved, made in info.get("mismatched_keys", ())
    )
    if mismatched:
        raise ValueError(f"{folder}: the weights do not fit config.json: {'; '.join(mismatched[:3])}")
    if info.get("missing_keys"):
        raise ValueError(f"{folder}: model.safetensors lacks {sorted(info['missing_keys'])[:5]}")
    if net.config.num_labels != num_classes:
        raise ValueError(
            f"{folder} holds a {net.config.num_labels}-class model, but its labels name {num_classes} classes"
        )
    return net


@contextlib.contextmanager
def _quiet(transformers):
    """transformers' load report and progress bars off while loading."""
    before = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(before)
        transformers.logging.enable_progress_bar()
