"""Class-conditional losses whose gradient drives a morph (docs/method.md §4).

Each loss maps logits ``(B, N)`` to one value per image ``(B,)``; lower means more
of the target class, so a morph steps *down* the gradient.

* ``nll``: ``−log softmax(z)[t]``
* ``margin``: ``−(z_t − max_{k≠t} z_k)``
* ``contrast``: ``−(log p_t − log p_s)`` for a source class ``s``
"""

from __future__ import annotations

import torch
from torch import Tensor

LOSSES: tuple[str, ...] = ("nll", "margin", "contrast")


def check_loss(name: str) -> str:
    """Return ``name`` if it names a loss; raise ValueError otherwise."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return name


def class_loss(logits: Tensor, target: int, name: str = "nll", source: int | None = None) -> Tensor:
    """The loss ``name`` toward class ``target``, one value per row of ``logits``.

    Parameters
    ----------
    logits : Tensor
        ``(B, N)`` classifier outputs.
    target : int
        The class to move toward.
    name : {"nll", "margin", "contrast"}
        Which loss.
    source : int, optional
        The class to move away from; required by ``contrast``.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[2.0, 0.0, -1.0]])
    >>> class_loss(z, 1, "margin")
    tensor([2.])
    >>> bool(torch.isclose(class_loss(z, 1, "contrast", source=0), torch.tensor([2.0])))
    True
    """
    check_loss(name)
    if name == "nll":
        return -torch.log_softmax(logits, dim=-1)[:, target]
    if name == "margin":
        others = logits.clone()
        others[:, target] = -torch.inf
        return -(logits[:, target] - others.amax(dim=-1))
    if source is None:
        raise ValueError("the contrast loss needs a source class")
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p[:, target] - log_p[:, source])
