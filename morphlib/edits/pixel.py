"""``pixel``: an additive change per pixel (the baseline every other family is compared with)."""

from __future__ import annotations

from torch import Tensor

from .base import Family, register


@register
class PixelEdit(Family):
    name = "pixel"
    kinds = ("pixel",)

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(self.edited.shape[1:])]

    def change(self, groups: dict[str, list[Tensor]]) -> Tensor:
        return groups["pixel"][0]
