"""Class names: a model's labels, a class given by name or index, and target policies.

* ``random``: a class other than the source's, uniformly, from a seeded generator;
* ``runner-up``: the class the model ranks highest after the source's (its second
  choice when it classifies the image correctly), the nearest target.

Examples
--------
>>> import numpy as np, torch
>>> resolve_class("Cat", ["dog", "cat"]), resolve_class(0, ["dog", "cat"])
(1, 0)
>>> logits = torch.tensor([0.1, 3.0, 2.0, -1.0])
>>> pick_target("runner-up", logits, label=1)
2
>>> pick_target("random", logits, label=1, rng=np.random.default_rng(0)) != 1
True
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

#: Target policies, for the evaluation and the ``morph`` command.
POLICIES = ("random", "runner-up")

__all__ = ["POLICIES", "class_names", "is_label", "pick_target", "resolve_class"]


def class_names(model: nn.Module, n_classes: int) -> list[str]:
    """Label names from ``model.labels`` when it has ``n_classes`` of them, else the indices as strings."""
    labels = getattr(model, "labels", None)
    if labels is not None and len(labels) == n_classes:
        return [str(name) for name in labels]
    return [str(i) for i in range(n_classes)]


def is_label(model: nn.Module, text: str) -> bool:
    """Whether ``text`` is one of the model's label names (case ignored)."""
    labels = getattr(model, "labels", None) or []
    return text.strip().lower() in (str(name).lower() for name in labels)


def resolve_class(target: int | str, labels: Sequence[str]) -> int:
    """The index of class ``target`` (an index, or a label name matched case-insensitively).

    Raises ValueError for an unknown name or an index out of range (naming close labels),
    TypeError for anything that is neither an index nor a name.
    """
    n = len(labels)
    if isinstance(target, bool) or not isinstance(target, int | np.integer | str):
        raise TypeError(f"a class must be an index or a label name, got {type(target).__name__}")
    if isinstance(target, int | np.integer):
        if not 0 <= int(target) < n:
            raise ValueError(
                f"class index {int(target)} is out of range; the model has {n} classes (0..{n - 1})"
            )
        return int(target)
    lowered = [name.lower() for name in labels]
    key = target.strip().lower()
    if key in lowered:
        return lowered.index(key)
    if key.lstrip("-").isascii() and key.lstrip("-").isdecimal():
        return resolve_class(int(key), labels)
    close = difflib.get_close_matches(key, lowered, n=5, cutoff=0.5)
    hint = f"close names: {', '.join(labels[lowered.index(c)] for c in close)}" if close else ""
    if not hint:
        hint = f"e.g. {', '.join(labels[:5])}"
    raise ValueError(f"unknown class {target!r}; give a label name or an index 0..{n - 1} ({hint})")


def pick_target(policy: str, logits: torch.Tensor, label: int, rng: np.random.Generator | None = None) -> int:
    """The target class for an image of class ``label`` whose logits are ``logits`` ``(K,)``.

    ``rng`` (needed for ``random``) is drawn once per call, so a run's targets depend on
    its seed and the order of its sources only.
    """
    n_classes = int(logits.shape[-1])
    if n_classes < 2:
        raise ValueError("a target other than the source needs at least two classes")
    if policy == "runner-up":
        ranked = logits.detach().flatten().argsort(descending=True).tolist()
        return next(c for c in ranked if c != label)
    if policy == "random":
        if rng is None:
            raise ValueError("the random target policy needs a seeded generator (rng)")
        target = int(rng.integers(0, n_classes - 1))
        return target + (target >= label)  # every class but the label, equally likely
    raise ValueError(f"unknown target policy {policy!r}; choose from {', '.join(POLICIES)}")
