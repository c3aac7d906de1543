"""The bundled zoo models the engine tests run on, loaded once per session."""

from __future__ import annotations

import functools

import torch

from morphlib.zoo import load


@functools.cache
def bundled(model_id: str) -> torch.nn.Module:
    """The bundled zoo model ``model_id`` (weights under ``assets/``, no download)."""
    return load(model_id)
