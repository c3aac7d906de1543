"""Packaging: a wheel, installed outside the checkout, is a working library with its zoo.

The wheel is built from a copy of the source tree (as ``pip install git+URL`` builds
from a clone), with no network (``--no-build-isolation``), and installed with
``--no-deps`` into a fresh virtual environment that sees this interpreter's packages
through a ``.pth`` file; everything then runs from a directory outside the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml
from PIL import Image

import morphlib

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache")


def _requirements(path: Path) -> set[str]:
    """Requirement lines of ``path`` (comments, blank lines and ``-r`` includes dropped), normalised."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {_normalise(line) for line in lines if line and not line.startswith("-")}


def _normalise(requirement: str) -> str:
    name, rest = re.match(r"([A-Za-z0-9._-]+)(.*)", requirement.replace(" ", "")).groups()
    specs = ",".join(sorted(rest.split(","))) if rest else ""
    return re.sub(r"[-_.]+", "-", name).lower() + specs


def test_requirements_files_agree_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    library = {_normalise(r) for r in project["dependencies"]}
    assert _requirements(ROOT / "requirements.txt") == library | {_normalise(r) for r in extras["app"]}
    assert _requirements(ROOT / "requirements-dev.txt") == {_normalise(r) for r in extras["dev"]}
    pinned = {"torch==2.14.1", "torchvision==0.29.1", "gradio==6.31.0"}
    assert pinned <= _requirements(ROOT / "requirements.txt")
    assert _normalise("ray==2.60.0") in {_normalise(r) for r in extras["ray"]}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment holding the built wheel; returns its ``bin`` folder."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE, "out", "reports"))
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*build, "-q", "-w", str(work / "wheels"), str(source)], check=True, cwd=work)
    (wheel,) = (work / "wheels").glob("morphlib-*.whl")

    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # This environment's packages (torch, timm, ...) and pip, after the venv's own site-packages.
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "_outer_env.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in sorted(outer))
    )
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
        check=True,
        cwd=work,
    )
    return venv / "bin"


def _run(args: list, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env |= {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_installed_wheel_loads_bundled_models_outside_the_checkout(installed, tmp_path):
    script = (
        "import morphlib, torch\n"
        "from morphlib import zoo\n"
        "from morphlib.zoo import manifest\n"
        "model = zoo.load('digits-cnn')\n"
        "assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10)\n"
        "bundled = [s.entry.id for s in zoo.list_models() if s.location == 'bundled']\n"
        "print(morphlib.__file__, morphlib.__version__, manifest.DEFAULT_MANIFEST, sep='\\n')\n"
        "print(','.join(bundled))\n"
    )
    location, version, manifest, bundled = _run([installed / "python", "-c", script], tmp_path).splitlines()
    assert not Path(location).resolve().is_relative_to(ROOT)
    assert Path(location).resolve().is_relative_to(installed.parent)
    assert Path(manifest).parent.name == "_bundled" and Path(manifest).is_file()
    assert version == morphlib.__version__
    models = yaml.safe_load((ROOT / "zoo.yaml").read_text())["models"]
    in_zoo = [m["id"] for m in models if m["source"] == "bundled"]
    assert bundled.split(",") == in_zoo  # every bundled model of zoo.yaml came along, weights and all


def test_installed_morphlib_command_writes_a_gif(installed, tmp_path):
    assert _run([installed / "morphlib", "--version"], tmp_path).split() == ["morphlib", morphlib.__version__]
    out = tmp_path / "renders"
    command = [installed / "morphlib", "morph", "data:digits:0", "--model", "digits-cnn", "--target", "3"]
    text = _run([*command, "--frames", "4", "--budget", "2", "--no-video", "--out", out], tmp_path)
    assert text.startswith("digits-cnn: ")
    with Image.open(out / "morph.gif") as gif:
        assert gif.n_frames >= 4
