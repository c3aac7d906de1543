"""The app's cache of class gradients, so that a new strength or frame count re-renders without a
backward pass."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch
from torch import nn

from morphlib.morph import Gradient


class GradientCache:
    """A small thread-safe LRU cache of :class:`~morphlib.morph.Gradient` objects.

    ``capacity`` defaults to ``$MORPHLIB_APP_GRADIENT_CACHE`` or 16; 0 disables the cache
    (every call computes, as benchmarks against the direct library call need).
    """

    def __init__(self, capacity: int | None = None) -> None:
        if capacity is None:
            capacity = int(os.environ.get("MORPHLIB_APP_GRADIENT_CACHE", "16"))
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, Gradient | bytes] = OrderedDict()
        self._new: list[Hashable] = []  # computed here since the last export()
        self._lock = threading.Lock()

    def get(
        self,
        key: Hashable,
        compute: Callable[[], Gradient],
        revive: Callable[[bytes], Gradient] | None = None,
    ) -> tuple[Gradient, bool]:
        """The cached gradient for ``key`` (and True), or ``compute()`` stored (and False).

        An entry brought from another process (:meth:`add_exported`) is bytes until ``revive``
        turns it into a gradient again, which then replaces it.
        """
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                self.hits += 1
        if item is not None:
            if isinstance(item, bytes):
                item = revive(item) if revive is not None else revive_gradient(item)
                self._store(key, item)
            return item, True
        value = compute()
        with self._lock:
            self.misses += 1
        self._store(key, value)
        with self._lock:
            self._new.append(key)
        return value, False

    def _store(self, key: Hashable, value: Gradient | bytes) -> None:
        with self._lock:
            if self.capacity > 0:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)

    def export(self) -> list[tuple[Hashable, bytes]]:
        """The gradients computed in this process since the last export, as bytes a process without
        the model or the device can keep: tensors on the CPU, the model left out (a ZeroGPU call
        runs in a forked process, whose own cache is gone when it returns)."""
        with self._lock:
            keys, self._new = self._new, []
            items = [(k, self._items[k]) for k in keys if k in self._items]
        return [(k, _portable(g)) for k, g in items if not isinstance(g, bytes)]

    def add_exported(self, entries: list[tuple[Hashable, bytes]]) -> None:
        """Keep gradients another process computed (:meth:`export`); revived on first use."""
        for key, data in entries:
            self._store(key, data)

    def __len__(self) -> int:
        return len(self._items)


def _portable(grad: Gradient) -> bytes:
    import copy
    import io

    light = copy.copy(grad)
    light.model = None  # the process that revives it has the model (preloaded) itself
    buffer = io.BytesIO()
    torch.save(light, buffer)
    return buffer.getvalue()


def revive_gradient(
    data: bytes, model: nn.Module | None = None, device: torch.device | str = "cpu"
) -> Gradient:
    import io

    grad = torch.load(io.BytesIO(data), map_location=device, weights_only=False)  # our own bytes
    grad.model = model
    return grad
