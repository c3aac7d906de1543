"""The example images under ``assets/examples`` (listed in ``examples.yaml``).

An uploaded file is recognised as an example by its content (SHA-256), so that a
permalink can name the example instead of carrying the image.

Examples
--------
>>> examples = load_examples()
>>> digit = next(e for e in examples if e.name == "digit-3")
>>> digit.model, digit.file.suffix
('digits-cnn-robust', '.png')
>>> find_example(digit.file, examples).name
'digit-3'
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from morphlib.zoo.manifest import REPO_ROOT

EXAMPLES_DIR = REPO_ROOT / "assets" / "examples"

__all__ = ["EXAMPLES_DIR", "Example", "find_example", "load_examples"]


@dataclass(frozen=True)
class Example:
    """One example image: its name (used in permalinks), file, zoo model, caption and licence."""

    name: str
    file: Path
    model: str
    caption: str
    licence: str

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of the file's content."""
        return _digest(self.file)


def _digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@functools.cache
def load_examples(folder: Path = EXAMPLES_DIR) -> tuple[Example, ...]:
    """Every example listed in ``folder/examples.yaml`` whose file exists, in file order."""
    index = folder / "examples.yaml"
    if not index.is_file():
        return ()
    entries = yaml.safe_load(index.read_text()).get("examples", [])
    found = []
    for raw in entries:
        path = folder / raw["file"]
        if path.is_file():
            found.append(
                Example(
                    raw["name"], path, raw["model"], str(raw.get("caption", "")), str(raw.get("licence", ""))
                )
            )
    return tuple(found)


def example_by_name(name: str, examples: tuple[Example, ...] | None = None) -> Example:
    """The example called ``name``; ValueError listing the known names otherwise."""
    examples = load_examples() if examples is None else examples
    for example in examples:
        if example.name == name:
            return example
    raise ValueError(f"unknown example {name!r}; examples: {', '.join(e.name for e in examples)}")


def find_example(path: str | Path | None, examples: tuple[Example, ...] | None = None) -> Example | None:
    """The example whose file has the same content as ``path``, or ``None``. Only a file of the
    size of an example is read (and hashed): the app asks this of every upload, on every change
    of a setting."""
    if path is None or not Path(path).is_file():
        return None
    examples = load_examples() if examples is None else examples
    size = Path(path).stat().st_size
    same_size = [e for e in examples if e.file.stat().st_size == size]
    if not same_size:
        return None
    digest = _digest(path)
    return next((e for e in same_size if e.digest == digest), None)
