"""How the engine talks to a classifier: its device and dtype, eval mode, logits and probabilities."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

#: Frames scored per batch, and the most synthesised at once.
BATCH = 16

__all__ = ["BATCH", "check_model", "device_dtype", "eval_mode", "logits_of", "probabilities"]


def check_model(model: object) -> nn.Module:
    """``model`` if it is a module whose gradient can drive a morph; TypeError if it is no module,
    ValueError if it says it has no useful gradient (``differentiable = False``, as a zoo model
    of a k-nearest-neighbour judge does)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (e.g. a ZooModel), got {type(model).__name__}")
    if getattr(model, "differentiable", True) is False:
        entry = getattr(model, "entry", None)
        name = f"model {entry.id!r}" if entry is not None else f"this {type(model).__name__}"
        raise ValueError(
            f"{name} has no useful input gradient (it is not differentiable, e.g. a k-nearest-neighbour "
            "classifier): it can judge a morph but not drive one; morph with a differentiable model"
        )
    return model


def device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of the model's first floating parameter (CPU float32 if none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.float32


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run the model in eval mode (batch statistics of one image are meaningless); restore after.

    A model already in eval mode is left alone: switching walks every submodule, which
    costs as much as a small model's forward pass.
    """
    if not model.training:
        yield
        return
    model.eval()
    try:
        yield
    finally:
        model.train(True)


def logits_of(model: nn.Module, x: Tensor) -> Tensor:
    """The model's logits ``(B, N)`` for ``x``; a clear error when it returns something else."""
    logits = model(x)
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"the model must return logits (B, N); got {shape}")
    return logits


@torch.no_grad()
def probabilities(model: nn.Module, frames: Tensor) -> Tensor:
    """Class probabilities ``(F, N)`` of ``frames``, scored :data:`BATCH` at a time, on the CPU."""
    return torch.cat(
        [torch.softmax(logits_of(model, chunk).float(), dim=-1).cpu() for chunk in frames.split(BATCH)]
    )
