"""``zoo.yaml``: the list of classifiers, read and checked.

Every entry is validated when the manifest is read: an unknown key, a missing
field, a duplicate id or a bad value raises :class:`ManifestError`, naming the
entry and the field.

Examples
--------
>>> entries = read_manifest()
>>> entries["shapes-cnn"].dataset, entries["shapes-cnn"].input_size
('shapes', (64, 64))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from morphlib import data

_CHECKOUT = Path(__file__).resolve().parents[2]
_IN_CHECKOUT = (_CHECKOUT / "zoo.yaml").is_file() and (_CHECKOUT / "pyproject.toml").is_file()
#: Where an installed package carries ``zoo.yaml`` and ``assets/<model>/`` (setup.py copies them).
BUNDLED_ROOT = Path(__file__).resolve().parents[1] / "_bundled"
#: Root against which bundled weight folders are resolved: the repository checkout
#: (top-level ``zoo.yaml`` beside ``pyproject.toml``) if there is one, else the installed data.
REPO_ROOT = _CHECKOUT if _IN_CHECKOUT else BUNDLED_ROOT
#: The manifest read by default: ``REPO_ROOT / "zoo.yaml"``.
DEFAULT_MANIFEST = REPO_ROOT / "zoo.yaml"

SOURCES = ("bundled", "hf-hub")
FORMATS = ("timm", "robustness-ckpt")
LABEL_SETS = (*data.DATASETS, "imagenet-1k")
NORMS = ("l2", "linf")
REQUIRED = (
    "id",
    "name",
    "source",
    "format",
    "architecture",
    "weights",
    "dataset",
    "input_size",
    "normalisation",
    "robust",
    "licence",
    "description",
)
OPTIONAL = ("metrics",)
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_REPO = r"[A-Za-z0-9][\w.-]*/[\w.-]+"


class ManifestError(ValueError):
    """``zoo.yaml`` is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo, as ``zoo.yaml`` describes it.

    Attributes
    ----------
    id, name : str
        Short identifier (``load(id)``) and display name.
    source : {"bundled", "hf-hub"}
        Shipped under ``assets/``, or downloaded from the Hugging Face Hub.
    format : {"timm", "robustness-ckpt"}
        A timm Hugging Face folder (``config.json`` + ``model.safetensors``), or a
        checkpoint file of the Madry lab ``robustness`` library.
    architecture : str
        The timm architecture name.
    weights : str
        ``assets/...`` folder (bundled), ``org/repo`` (Hub, timm) or
        ``org/repo/file.ckpt`` (Hub, checkpoint).
    dataset : str
        The label set: a :mod:`morphlib.data` set or ``imagenet-1k``.
    input_size : (int, int)
        ``(H, W)`` the network expects; other sizes are resized in the model.
    mean, std : tuple of floats
        Per-channel normalisation applied to ``[0, 1]`` pixels: 3 values for an RGB
        network, 1 for a grey one (their length is :attr:`channels`).
    robust : bool
        Adversarially trained or not; if so ``robust_norm``/``robust_eps`` say
        against what and ``robust_method`` how.
    licence, description : str
    metrics : dict
        Measured numbers (e.g. clean and robust accuracy), if any.
    labels, label_ids : tuple of str
        Class names and the label set's own ids (WordNet ids for ImageNet) that the
        model's config gives (Hub models by id); empty: those of :attr:`dataset`.
    """

    id: str
    name: str
    source: str
    format: str
    architecture: str
    weights: str
    dataset: str
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    robust: bool
    licence: str
    description: str
    robust_norm: str | None = None
    robust_eps: float | None = None
    robust_method: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    label_ids: tuple[str, ...] = ()

    @property
    def channels(self) -> int:
        """How many channels the network takes (1: grey, 3: RGB)."""
        return len(self.mean)

    @property
    def hub_repo(self) -> str:
        """The Hub repository (``org/name``) of a Hub model."""
        return "/".join(self.weights.split("/")[:2])

    @property
    def hub_filename(self) -> str | None:
        """The file inside :attr:`hub_repo` for checkpoint models (else ``None``)."""
        parts = self.weights.split("/")
        return "/".join(parts[2:]) or None


def read_manifest(path: str | Path | None = None) -> dict[str, ZooEntry]:
    """Read and validate a manifest (default: the repository's ``zoo.yaml``).

    Returns
    -------
    dict
        Entries by id, in file order.

    Raises
    ------
    ManifestError
        On any malformed entry.
    """
    path = Path(path) if path is not None else DEFAULT_MANIFEST
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ManifestError(f"zoo manifest not found: {path}") from err
    except yaml.YAMLError as err:
        raise ManifestError(f"{path.name}: not valid YAML: {err}") from err
    return parse_manifest(document, origin=path.name)


def parse_manifest(document: Any, origin: str = "zoo.yaml") -> dict[str, ZooEntry]:
    """Validate an already-parsed manifest ``{"models": [entry, ...]}``."""
    if (
        not isinstance(document, dict)
        or set(document) != {"models"}
        or not isinstance(document["models"], list)
    ):
        raise ManifestError(f"{origin}: expected a top-level 'models:' list and nothing else")
    entries: dict[str, ZooEntry] = {}
    for index, raw in enumerate(document["models"]):
        entry = parse_entry(raw, where=f"{origin}: entry #{index + 1}")
        if entry.id in entries:
            raise ManifestError(f"{origin}: entry #{index + 1} {entry.id!r}: field 'id': duplicate id")
        entries[entry.id] = entry
    return entries


def parse_entry(raw: Any, where: str = "entry") -> ZooEntry:
    """Validate one manifest entry and build its :class:`ZooEntry`."""
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: expected a mapping of fields, got {type(raw).__name__}")
    if isinstance(raw.get("id"), str):
        where = f"{where} {raw['id']!r}"

    def fail(key: str, problem: str) -> ManifestError:
        return ManifestError(f"{where}: field {key!r}: {problem}")

    for key in raw:
        if key not in REQUIRED and key not in OPTIONAL:
            raise fail(key, f"unknown key (allowed: {', '.join(REQUIRED + OPTIONAL)})")
    for key in REQUIRED:
        if key not in raw:
            raise fail(key, "missing")

    def text(key: str, pattern: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = raw[key]
        if not isinstance(value, str) or not value.strip():
            raise fail(key, f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise fail(key, f"must be one of {', '.join(choices)}; got {value!r}")
        if pattern and not re.fullmatch(pattern, value):
            raise fail(key, f"bad value {value!r}")
        return value

    def numbers(value: Any, key: str, count: int, kind: type, positive: bool) -> tuple:
        ok = isinstance(value, list) and len(value) == count
        ok = ok and all(isinstance(v, kind | int) and not isinstance(v, bool) for v in value)
        if not ok or (positive and any(v <= 0 for v in value)):
            sign = "positive " if positive else ""
            raise fail(key, f"must be a list of {count} {sign}{kind.__name__}s, got {value!r}")
        return tuple(kind(v) for v in value)

    entry_id = text("id", pattern=_ID.pattern)
    source = text("source", choices=SOURCES)
    fmt = text("format", choices=FORMATS)
    if source == "bundled":
        if fmt != "timm":
            raise fail("format", "bundled models are stored as timm folders: use 'timm'")
        weights = text("weights", pattern=r"assets/[\w./-]+")
    elif fmt == "timm":
        weights = text("weights", pattern=_REPO)
    else:
        weights = text("weights", pattern=_REPO + r"/[\w./-]+\.(ckpt|pt|pth)")

    norm = raw["normalisation"]
    if not isinstance(norm, dict) or set(norm) != {"mean", "std"}:
        raise fail("normalisation", f"must be {{mean: [r, g, b], std: [r, g, b]}}, got {norm!r}")
    # One value per channel the network takes: three for RGB, one for grey.
    channels = 1 if isinstance(norm["mean"], list) and len(norm["mean"]) == 1 else 3
    mean = numbers(norm["mean"], "normalisation", channels, float, positive=False)
    std = numbers(norm["std"], "normalisation", channels, float, positive=True)

    robust = raw["robust"]
    robust_fields: dict[str, Any] = {}
    if isinstance(robust, dict):
        if set(robust) - {"norm", "eps", "method"} or not {"norm", "eps"} <= set(robust):
            raise fail(
                "robust", f"must be false or {{norm: l2|linf, eps: number, method: text}}, got {robust!r}"
            )
        if robust["norm"] not in NORMS:
            raise fail("robust", f"norm must be one of {', '.join(NORMS)}, got {robust['norm']!r}")
        eps = robust["eps"]
        if isinstance(eps, bool) or not isinstance(eps, int | float) or eps <= 0:
            raise fail("robust", f"eps must be a positive number, got {eps!r}")
        robust_fields = {
            "robust_norm": robust["norm"],
            "robust_eps": float(eps),
            "robust_method": str(robust.get("method", "adversarial training")),
        }
    elif robust is not False:
        raise fail("robust", f"must be false or a mapping {{norm, eps, method}}, got {robust!r}")

    metrics = raw.get("metrics", {})
    if not isinstance(metrics, dict):
        raise fail("metrics", f"must be a mapping, got {metrics!r}")

    return ZooEntry(
        id=entry_id,
        name=text("name"),
        source=source,
        format=fmt,
        architecture=text("architecture", pattern=r"[\w.]+"),
        weights=weights,
        dataset=text("dataset", choices=LABEL_SETS),
        input_size=numbers(raw["input_size"], "input_size", 2, int, positive=True),
        mean=mean,
        std=std,
        robust=bool(robust_fields),
        licence=text("licence"),
        description=text("description"),
        metrics=dict(metrics),
        **robust_fields,
    )
