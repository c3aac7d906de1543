"""Classifiers for the engine tests: the bundled zoo models, or small ones trained here.

:func:`bundled_or_trained` returns the bundled zoo model when its weights are present and
otherwise a :class:`TinyCNN` trained on the same data set (seeded, a few seconds on a CPU,
once per session), so that the engine tests run before the zoo's weights exist.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from morphlib.data import load as load_data


class TinyCNN(nn.Module):
    """A small convolutional classifier of [0, 1] RGB images of any size."""

    def __init__(self, n_classes: int, labels: list[str], width: int = 16):
        super().__init__()
        self.labels = labels
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x - 0.5)


EPOCHS = {"orientation": 8, "digits": 25, "shapes": 8}


@functools.cache
def trained_model(dataset: str, n_train: int = 1200) -> TinyCNN:
    """A TinyCNN trained on ``dataset`` (seeded); test accuracy ~0.9 (orientation), ~0.98 (digits)."""
    epochs = EPOCHS[dataset]
    torch.manual_seed(0)
    images, labels, names = load_data(dataset, split="train", n=n_train, seed=0)
    model = TinyCNN(len(names), names)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for batch in order.split(64):
            loss = nn.functional.cross_entropy(model(images[batch]), labels[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@functools.cache
def bundled_or_trained(model_id: str) -> tuple[torch.nn.Module, str]:
    """``(model, where)``: zoo model ``model_id`` if loadable, else a TinyCNN on its data set."""
    from morphlib.zoo import load

    try:
        return load(model_id), "bundled"
    except ValueError:
        dataset = model_id.split("-")[0]
        return trained_model(dataset), "trained in the test"
