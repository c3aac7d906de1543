"""What an edit family is: parameters in, a change of the edited channels out; and the registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from morphlib.transforms import SteerablePyramid

#: Edit parameters: a tuple of real tensors (one per level and kind), each with a leading frame axis.
Params = tuple[Tensor, ...]

__all__ = [
    "REGISTRY",
    "Family",
    "Params",
    "edit_change",
    "params_abs_max",
    "per_row",
    "register",
    "scale_params",
]


class Family(ABC):
    """One edit family acting on the edited channels ``(B, c, H, W)`` of ``B`` sources.

    A subclass says which parameter ``kinds`` it has (``"pixel"``, ``"delta"``: phase,
    ``"eta"``: log-amplitude) and, per level, their shapes; it turns parameters grouped by
    kind into the change of the edited channels.  :class:`~morphlib.edits.EditSpace` does the
    rest (colour, the phase cap, smoothing).  Register a new one with :func:`register`.
    """

    #: The family's name, as configs and the CLI spell it.
    name: ClassVar[str]
    #: Parameter kinds, in the order the parameter tuple holds them.
    kinds: ClassVar[tuple[str, ...]]
    #: Whether its phase parameters live on spatial grids (smoothing applies).
    spatial_phase: ClassVar[bool] = False

    def __init__(self, edited: Tensor, pyramid: SteerablePyramid) -> None:
        self.edited = edited

    @property
    @abstractmethod
    def shapes(self) -> list[tuple[int, ...]]:
        """The shape of one frame's parameters of each kind, per level."""

    @property
    def bands(self) -> list[Tensor]:
        """The source's complex coefficients per level (none for pixel edits)."""
        return []

    def coefficient_changes(self, groups: dict[str, list[Tensor]]) -> list[Tensor]:
        """``c − c0`` per level for parameters grouped by kind."""
        raise ValueError(f"the {self.name} family has no transform coefficients")

    @abstractmethod
    def change(self, groups: dict[str, list[Tensor]]) -> Tensor:
        """The change ``(F, c, H, W)`` of the edited channels that the parameters make."""


#: Family name -> class, in the order families are listed (registration order).
REGISTRY: dict[str, type[Family]] = {}


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: make an edit family available by its ``name`` everywhere (config, CLI, app)."""
    REGISTRY[cls.name] = cls
    return cls


def edit_change(c0: Tensor, eta: Tensor | None, delta: Tensor | None) -> Tensor:
    """``c0 · (exp(η + iδ) − 1)`` (either of ``η``, ``δ`` may be None); exactly 0 where both are 0.

    Phase edits use ``c0·polar(exp(η), δ) − c0`` (one transcendental pass, the fastest form on
    CPU); its rounding error is ~1e-7·|c0|, far below anything visible.
    """
    if delta is None:
        if eta is None:
            return torch.zeros_like(c0)
        return c0 * torch.expm1(eta)
    gain = torch.ones_like(delta) if eta is None else torch.exp(eta)
    return c0 * torch.polar(gain, delta) - c0


def per_row(values: float | Tensor, like: Tensor) -> float | Tensor:
    """A number for every row, or ``(B,)`` values shaped to broadcast over the rows of ``like``."""
    if not isinstance(values, Tensor):
        return values
    return values.to(like).view(-1, *([1] * (like.ndim - 1)))


def scale_params(params: Sequence[Tensor], factors: Tensor) -> Params:
    """Multiply parameters ``(1, ...)`` by ``factors`` ``(F,)`` to give ``F`` frames (or rows ``(B, ...)``
    by one factor each)."""
    return tuple(p * per_row(factors, p) for p in params)


def params_abs_max(params: Sequence[Tensor]) -> Tensor:
    """The largest absolute value over all parameters, per frame ``(F,)``."""
    return torch.stack([p.abs().flatten(1).amax(dim=1) for p in params]).amax(dim=0)
