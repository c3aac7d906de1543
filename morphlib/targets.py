"""Target classes chosen by a stated policy, for the evaluation and the ``morph`` command.

* ``random``: a class other than the source's, uniformly, from a seeded generator;
* ``runner-up``: the class the model ranks highest after the source's (its second
  choice when it classifies the image correctly), the nearest target.

Examples
--------
>>> import numpy as np, torch
>>> logits = torch.tensor([0.1, 3.0, 2.0, -1.0])
>>> pick_target("runner-up", logits, label=1)
2
>>> pick_target("random", logits, label=1, rng=np.random.default_rng(0)) != 1
True
"""

from __future__ import annotations

import numpy as np
import torch

POLICIES = ("random", "runner-up")


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
