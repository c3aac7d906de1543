"""A zoo manifest (``zoo.yaml``, or your own): the list of classifiers, read and checked.

Every entry is validated when the manifest is read: an unknown key, a missing
field, a duplicate id or a bad value raises :class:`ManifestError`, naming the
entry and the field.  Paths in a manifest (a ``local`` model's folder, a labels
file) are relative to the manifest's own folder and may not leave it.

The manifest read by default is the one the environment variable ``MORPHLIB_ZOO``
names, else the repository's ``zoo.yaml``.

Examples
--------
>>> entries = read_manifest()
>>> entries["shapes-cnn"].dataset, entries["shapes-cnn"].input_size
('shapes', (64, 64))

Your own model, saved by ``timm.models.save_for_hf`` or transformers' ``save_pretrained``
into ``my-models/pets/`` beside ``my-zoo.yaml``, needs no more than::

    models:
      - id: pets
        source: local
        weights: pets                  # the folder, relative to this file
        labels: [cat, dog, fish]       # or a file with one name a line: labels: pets.txt
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from morphlib import data
from morphlib.zoo.checks import check_input_size, check_normalisation, inside
from morphlib.zoo.entry import ZooEntry
from morphlib.zoo.hub_models import folder_entry

_CHECKOUT = Path(__file__).resolve().parents[2]
_IN_CHECKOUT = (_CHECKOUT / "zoo.yaml").is_file() and (_CHECKOUT / "pyproject.toml").is_file()
#: Where an installed package carries ``zoo.yaml`` and ``assets/<model>/`` (setup.py copies them).
BUNDLED_ROOT = Path(__file__).resolve().parents[1] / "_bundled"
#: Root against which bundled weight folders are resolved: the repository checkout
#: (top-level ``zoo.yaml`` beside ``pyproject.toml``) if there is one, else the installed data.
REPO_ROOT = _CHECKOUT if _IN_CHECKOUT else BUNDLED_ROOT
#: The repository's manifest: ``REPO_ROOT / "zoo.yaml"``.
DEFAULT_MANIFEST = REPO_ROOT / "zoo.yaml"
#: The environment variable naming the manifest read by default instead of :data:`DEFAULT_MANIFEST`.
MANIFEST_VARIABLE = "MORPHLIB_ZOO"

SOURCES = ("bundled", "hf-hub", "local", "package")
FORMATS = ("timm", "transformers", "robustness-ckpt", "ordered-state-dict")
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
OPTIONAL = ("metrics", "labels", "differentiable", "view")
#: What a ``local`` entry must say; the rest its folder's config gives or has a default.
REQUIRED_LOCAL = ("id", "source", "weights")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_REPO = r"[A-Za-z0-9][\w.-]*/[\w.-]+"
_PACKAGE_FILE = r"[A-Za-z_]\w*/[\w./-]+\.(pth|pt)"


class ManifestError(ValueError):
    """A manifest is malformed; the message names the entry and the field."""


def manifest_path(path: str | Path | None = None) -> Path:
    """``path``, else the manifest ``MORPHLIB_ZOO`` names, else the repository's ``zoo.yaml``."""
    if path is not None:
        return Path(path)
    return (
        Path(os.environ[MANIFEST_VARIABLE]).expanduser()
        if os.environ.get(MANIFEST_VARIABLE)
        else DEFAULT_MANIFEST
    )


def read_manifest(path: str | Path | None = None) -> dict[str, ZooEntry]:
    """Read and validate a manifest (default: see :func:`manifest_path`).

    Returns
    -------
    dict
        Entries by id, in file order.

    Raises
    ------
    ManifestError
        On any malformed entry.
    """
    path = manifest_path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ManifestError(f"zoo manifest not found: {path}") from err
    except yaml.YAMLError as err:
        raise ManifestError(f"{path.name}: not valid YAML: {err}") from err
    return parse_manifest(document, origin=path.name, base=path.resolve().parent)


def parse_manifest(document: Any, origin: str = "zoo.yaml", base: Path | None = None) -> dict[str, ZooEntry]:
    """Validate an already-parsed manifest ``{"models": [entry, ...]}``.

    ``base`` is the folder that paths of ``local`` entries and labels files are relative to
    (the manifest's folder; default the repository's).
    """
    if (
        not isinstance(document, dict)
        or set(document) != {"models"}
        or not isinstance(document["models"], list)
    ):
        raise ManifestError(f"{origin}: expected a top-level 'models:' list and nothing else")
    entries: dict[str, ZooEntry] = {}
    for index, raw in enumerate(document["models"]):
        entry = parse_entry(raw, where=f"{origin}: entry #{index + 1}", base=base)
        if entry.id in entries:
            raise ManifestError(f"{origin}: entry #{index + 1} {entry.id!r}: field 'id': duplicate id")
        entries[entry.id] = entry
    return entries


class _Fields:
    """One raw manifest entry, read field by field; errors name the entry and the field."""

    def __init__(self, raw: dict, where: str) -> None:
        self.raw, self.where = raw, where

    def fail(self, key: str, problem: str) -> ManifestError:
        return ManifestError(f"{self.where}: field {key!r}: {problem}")

    def text(self, key: str, pattern: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self.raw[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}; got {value!r}")
        if pattern and not re.fullmatch(pattern, value):
            raise self.fail(key, f"bad value {value!r}")
        return value

    def checked(self, key: str, check: Callable, *args: Any) -> Any:
        """``check(*args, where)`` (a :mod:`morphlib.zoo.checks` function), its error naming ``key``."""
        try:
            return check(*args, "must be valid")
        except ValueError as err:
            raise self.fail(key, str(err).removeprefix("must be valid: ")) from err


def parse_entry(raw: Any, where: str = "entry", base: Path | None = None) -> ZooEntry:
    """Validate one manifest entry and build its :class:`ZooEntry` (``base``: see :func:`parse_manifest`)."""
    base = base if base is not None else REPO_ROOT
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: expected a mapping of fields, got {type(raw).__name__}")
    fields = _Fields(raw, f"{where} {raw['id']!r}" if isinstance(raw.get("id"), str) else where)
    for key in raw:
        if key not in REQUIRED and key not in OPTIONAL:
            raise fields.fail(key, f"unknown key (allowed: {', '.join(REQUIRED + OPTIONAL)})")
    for key in REQUIRED_LOCAL if raw.get("source") == "local" else REQUIRED:
        if key not in raw and not (key == "dataset" and "labels" in raw):
            raise fields.fail(key, "missing" + (" (or give labels)" if key == "dataset" else ""))
    if "dataset" in raw and "labels" in raw:
        raise fields.fail("labels", "give either dataset (a known label set) or labels (your own), not both")

    stated = _stated(fields, base)
    source = fields.text("source", choices=SOURCES)
    if source == "local":
        return _local_entry(fields, stated, base)
    weights = _weights(fields, source, stated["format"])
    return ZooEntry(source=source, weights=weights, robust=stated.pop("robust", False), **stated)


def _stated(fields: _Fields, base: Path) -> dict[str, Any]:
    """The :class:`ZooEntry` fields the entry states (all but source and weights), checked."""
    raw = fields.raw
    entry_id = fields.text("id", pattern=_ID.pattern)
    stated: dict[str, Any] = {"id": entry_id}
    for key in ("name", "licence", "description", "view"):
        if key in raw:
            stated[key] = fields.text(key)
    if "format" in raw:
        stated["format"] = fields.text("format", choices=FORMATS)
    if "architecture" in raw:
        stated["architecture"] = fields.text("architecture", pattern=r"[\w.]+")
    if "dataset" in raw:
        stated["dataset"] = fields.text("dataset", choices=LABEL_SETS)
    if "input_size" in raw:
        stated["input_size"] = fields.checked("input_size", check_input_size, raw["input_size"])
    if "normalisation" in raw:
        norm = raw["normalisation"]
        if not isinstance(norm, dict) or set(norm) != {"mean", "std"}:
            raise fields.fail("normalisation", f"must be {{mean: [r, g, b], std: [r, g, b]}}, got {norm!r}")
        stated["mean"], stated["std"] = fields.checked(
            "normalisation", check_normalisation, norm["mean"], norm["std"]
        )
    if "robust" in raw:
        stated.update(_robust(raw["robust"], fields.fail))
    if "differentiable" in raw:
        if not isinstance(raw["differentiable"], bool):
            raise fields.fail("differentiable", f"must be true or false, got {raw['differentiable']!r}")
        stated["differentiable"] = raw["differentiable"]
    if "metrics" in raw:
        if not isinstance(raw["metrics"], dict):
            raise fields.fail("metrics", f"must be a mapping, got {raw['metrics']!r}")
        stated["metrics"] = dict(raw["metrics"])
    if "labels" in raw:
        stated["labels"] = stated["label_ids"] = _labels(raw["labels"], base, fields.fail)
        stated["dataset"] = entry_id
    return stated


def _local_entry(fields: _Fields, stated: dict[str, Any], base: Path) -> ZooEntry:
    """A ``local`` entry: what its folder's config says, overridden by what the entry states."""
    folder = fields.checked("weights", inside, base, fields.text("weights"))
    if not (folder / "config.json").is_file():
        raise fields.fail(
            "weights",
            f"{folder} has no config.json (save the model there with "
            "timm.models.save_for_hf or transformers' save_pretrained)",
        )
    try:
        found = folder_entry(stated["id"], folder)
    except ValueError as err:
        raise fields.fail("weights", str(err)) from err
    for key in ("format", "architecture"):
        if key in stated and stated[key] != getattr(found, key):
            raise fields.fail(key, f"{stated[key]!r}, but {folder}/config.json says {getattr(found, key)!r}")
    if "labels" in stated and found.labels and len(found.labels) != len(stated["labels"]):
        raise fields.fail(
            "labels",
            f"{len(stated['labels'])} names, but {folder}/config.json has {len(found.labels)} classes",
        )
    defaults = {
        "name": stated["id"],
        "licence": "unknown",
        "description": f"{found.architecture} in {folder}",
    }
    return dataclasses.replace(found, **{**defaults, **stated})


def _weights(fields: _Fields, source: str, fmt: str) -> str:
    """The ``weights`` of a bundled, package or Hub entry, checked against its source and format."""
    if source == "bundled":
        if fmt != "timm":
            raise fields.fail("format", "bundled models are stored as timm folders: use 'timm'")
        weights = fields.text("weights", pattern=r"assets/[\w./-]+")
        fields.checked("weights", inside, REPO_ROOT, weights)
    elif source == "package":
        if fmt != "ordered-state-dict":
            raise fields.fail("format", "a file in a package is read as 'ordered-state-dict'")
        weights = fields.text("weights", pattern=_PACKAGE_FILE)
    elif fmt in ("timm", "transformers"):
        weights = fields.text("weights", pattern=_REPO)
    elif fmt == "robustness-ckpt":
        weights = fields.text("weights", pattern=_REPO + r"/[\w./-]+\.(ckpt|pt|pth)")
    else:
        raise fields.fail("format", f"{fmt!r} files come from an installed package: use source 'package'")
    if ".." in Path(weights).parts:
        raise fields.fail("weights", f"{weights!r} may not hold '..'")
    return weights


def _robust(robust: Any, fail) -> dict[str, Any]:
    if robust is False:
        return {"robust": False}
    if not isinstance(robust, dict):
        raise fail("robust", f"must be false or a mapping {{norm, eps, method}}, got {robust!r}")
    if set(robust) - {"norm", "eps", "method"} or not {"norm", "eps"} <= set(robust):
        raise fail("robust", f"must be false or {{norm: l2|linf, eps: number, method: text}}, got {robust!r}")
    if robust["norm"] not in NORMS:
        raise fail("robust", f"norm must be one of {', '.join(NORMS)}, got {robust['norm']!r}")
    eps = robust["eps"]
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < float("inf"):
        raise fail("robust", f"eps must be a positive number, got {eps!r}")
    return {
        "robust": True,
        "robust_norm": robust["norm"],
        "robust_eps": float(eps),
        "robust_method": str(robust.get("method", "adversarial training")),
    }


def _labels(value: Any, base: Path, fail) -> tuple[str, ...]:
    """Class names: a list, or a text file beside the manifest with one name a line."""
    if isinstance(value, str):
        try:
            path = inside(base, value, "must be valid")
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except (ValueError, OSError) as err:
            raise fail("labels", f"cannot read the labels file {value!r}: {err}") from err
    elif isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        names = [str(v).strip() for v in value]
    else:
        raise fail("labels", f"must be a list of class names or a file name, got {value!r}")
    if not names or not all(names):
        raise fail("labels", "needs at least one class name, none empty")
    if len(set(names)) != len(names):
        raise fail("labels", "names must be distinct (targets are picked by name)")
    return tuple(names)
