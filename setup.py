"""Ship the zoo with the package: ``zoo.yaml`` and every bundled model folder it names.

Everything else lives in ``pyproject.toml``. In the repository ``zoo.yaml`` and
``assets/`` stay at the top; a build copies the manifest and each folder that a
``source: bundled`` entry's ``weights`` points at into ``morphlib/_bundled/``
(keeping the ``assets/<model-id>/`` layout), where ``morphlib.zoo.manifest`` looks
when it is not running from a checkout. No list to keep up to date: a model added
to ``zoo.yaml`` (and ``assets/``) is picked up by the next build.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
MANIFEST = "zoo.yaml"
BUNDLED = Path("morphlib") / "_bundled"


def bundled_files(root: Path = ROOT) -> list[Path]:
    """``zoo.yaml`` and the files of every bundled model folder, relative to ``root``."""
    models = (yaml.safe_load((root / MANIFEST).read_text()) or {}).get("models") or []
    files = [Path(MANIFEST)]
    for entry in models:
        if entry.get("source") != "bundled":
            continue
        folder = root / entry["weights"]
        if not folder.is_dir():
            raise FileNotFoundError(f"{MANIFEST}: bundled model {entry.get('id')!r}: no folder {folder}")
        files += sorted(
            p.relative_to(root) for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
        )
    return files


class BuildWithZoo(build_py):
    """``build_py`` that also copies the zoo into ``<build_lib>/morphlib/_bundled/``."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / BUNDLED
        shutil.rmtree(target, ignore_errors=True)  # no stale models from an earlier build
        for rel in bundled_files():
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        extra = [str(Path(self.build_lib) / BUNDLED / rel) for rel in bundled_files()]
        return super().get_outputs(include_bytecode) + extra


setup(cmdclass={"build_py": BuildWithZoo})
