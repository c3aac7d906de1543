"""Write docs/quickstart.ipynb: from install to a morph of your own model, in a notebook.

The cells live here as plain text so that they are reviewed as code; ``tests/test_quickstart.py``
runs them in order, as a notebook would.  Regenerate after an edit: ``python scripts/make_quickstart.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "docs" / "quickstart.ipynb"

CELLS: list[tuple[str, str]] = [
    (
        "markdown",
        """# morphlib quickstart

How would a classifier change an image to make it another class? This notebook installs
morphlib, morphs a digit with a bundled robust model, then does the same with a model of your
own: any PyTorch module and a list of class names. See `docs/method.md` for the method.""",
    ),
    (
        "markdown",
        """Install (once, in a terminal or a cell):

```
pip install "morphlib[app] @ git+<repository URL>"   # or, from a checkout: pip install ".[app]"
```""",
    ),
    (
        "code",
        """import torch

from morphlib import RECOMMENDED, RECOMMENDED_STRENGTH, MorphConfig, Strength, morph
from morphlib.data import load as load_data
from morphlib.zoo import load, wrap""",
    ),
    (
        "markdown",
        """## A bundled model

`mnist-cnn-robust-eps3` is an adversarially robust CNN (L2 PGD, eps 3) trained on real MNIST
digits. The recommended settings walk a step-local path of joint phase and amplitude edits until
the target leads the runner-up by a log-odds margin of 3 (or the change reaches its cap).""",
    ),
    (
        "code",
        """model = load("mnist-cnn-robust-eps3")
digits, labels, names = load_data("mnist", split="test", n=1, seed=0)
result = morph(model, digits[0], "8", RECOMMENDED, RECOMMENDED_STRENGTH, frames=8, progress=False)
print(result.auto.message)
result  # a notebook shows the looping morph and the per-frame numbers""",
    ),
    (
        "markdown",
        """## Your own model

Any `nn.Module` that maps images to logits: `wrap` gives it class names, its normalisation and
input size (images are resized inside, so gradients reach the pixels). Here a small network
with random weights stands in for yours.""",
    ),
    (
        "code",
        """net = torch.nn.Sequential(
    torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4),
    torch.nn.Flatten(), torch.nn.Linear(128, 3),
)
mine = wrap(
    net.eval(), labels=["circle", "square", "star"], mean=[0.5], std=[0.25], input_size=(28, 28), channels=1
)
config = MorphConfig(family="pixel", regime="persistent")
pixel = morph(mine, digits[0], "star", config, Strength.budget(2.0), frames=6, progress=False)
pixel.table()""",
    ),
    (
        "markdown",
        """The same model in the app or on the command line: save it (timm's `save_for_hf` or
transformers' `save_pretrained`), list it in a manifest with its labels, and run
`python app.py --zoo my.yaml` or `morphlib morph IMAGE --zoo my.yaml --model ID --target CLASS`
(README, *Your own manifest*).""",
    ),
]


def notebook() -> dict:
    def cell(kind: str, text: str) -> dict:
        source = text.splitlines(keepends=True)
        if kind == "markdown":
            return {"cell_type": "markdown", "metadata": {}, "source": source}
        return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": source}

    return {
        "cells": [cell(kind, text) for kind, text in CELLS],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(notebook(), indent=1) + "\n")
    print(f"wrote {OUT}")
