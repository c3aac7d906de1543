"""The app's cache of class gradients, so that a new strength or frame count re-renders without a
backward pass, and gradients computed in another process (a ZeroGPU call) come home as plain data."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch
from torch import nn

from morphlib.engine import Gradient

#: A gradient as :meth:`Gradient.state` describes it: tensors and plain data, no library objects.
State = dict


@dataclass(frozen=True)
class _Exported:
    """A gradient another process computed, kept as its state until it is used."""

    state: State


__all__ = ["GradientCache", "revive_gradient"]


class GradientCache:
    """A small thread-safe LRU cache of :class:`~morphlib.engine.Gradient` objects.

    ``capacity`` defaults to ``$MORPHLIB_APP_GRADIENT_CACHE`` or 16; 0 disables the cache
    (every call computes, as benchmarks against the direct library call need).  Keys must be
    plain data (tuples of strings and numbers): they cross process borders with the gradients.
    """

    def __init__(self, capacity: int | None = None) -> None:
        if capacity is None:
            capacity = int(os.environ.get("MORPHLIB_APP_GRADIENT_CACHE", "16"))
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, Gradient | _Exported] = OrderedDict()
        self._new: list[Hashable] = []  # computed here since the last export()
        self._lock = threading.Lock()

    def get(
        self,
        key: Hashable,
        compute: Callable[[], Gradient],
        revive: Callable[[State], Gradient] | None = None,
    ) -> tuple[Gradient, bool]:
        """The cached gradient for ``key`` (and True), or ``compute()`` stored (and False).

        An entry brought from another process (:meth:`add_exported`) is a state until ``revive``
        turns it into a gradient again, which then replaces it.
        """
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                self.hits += 1
        if item is not None:
            if isinstance(item, _Exported):
                if revive is None:
                    raise ValueError("an exported gradient needs revive= (its model) to be used")
                item = revive(item.state)
                self._store(key, item)
            return item, True
        value = compute()
        with self._lock:
            self.misses += 1
        self._store(key, value)
        with self._lock:
            self._new.append(key)
        return value, False

    def _store(self, key: Hashable, value: Gradient | _Exported) -> None:
        with self._lock:
            if self.capacity > 0:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)

    def export(self) -> list[tuple[Hashable, State]]:
        """The gradients computed in this process since the last export, as tensors on the CPU and plain
        data (:meth:`Gradient.state`), which a process without the model or the device can keep (a
        ZeroGPU call runs in a forked process, whose own cache is gone when it returns)."""
        with self._lock:
            keys, self._new = self._new, []
            items = [(k, self._items[k]) for k in keys if k in self._items]
        return [(k, g.state()) for k, g in items if isinstance(g, Gradient)]

    def add_exported(self, entries: list[tuple[Hashable, State]]) -> None:
        """Keep gradients another process computed (:meth:`export`); revived on first use."""
        for key, state in entries:
            self._store(key, _Exported(state))

    def __len__(self) -> int:
        return len(self._items)


def revive_gradient(state: State, model: nn.Module, device: torch.device | str = "cpu") -> Gradient:
    """The gradient of an exported ``state``, for ``model`` (the process that revives it has the model)."""
    return Gradient.from_state(model, state, device)
