"""The model the rest of morphlib sees: ``[0, 1]`` pixels in (grey or RGB), logits out."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from morphlib.imaging import rgb_to_yiq

if TYPE_CHECKING:
    from morphlib.zoo.manifest import ZooEntry


class Preprocess(nn.Module):
    """Differentiable resize to the network's input size, then per-channel normalisation.

    Gradients flow through both steps, so they reach the caller's original pixels.

    Parameters
    ----------
    input_size : (int, int)
        ``(H, W)`` the network expects; inputs of another size are resized
        (bilinear, antialiased when shrinking).
    mean, std : sequence of floats
        ``(x - mean) / std`` per channel (3 for RGB networks, 1 for grey ones).
    """

    def __init__(self, input_size: Sequence[int], mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    @property
    def channels(self) -> int:
        return self.mean.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.input_size:
            shrinking = x.shape[-2] > self.input_size[0] or x.shape[-1] > self.input_size[1]
            x = F.interpolate(
                x, size=self.input_size, mode="bilinear", align_corners=False, antialias=shrinking
            )
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``x`` with ``channels`` channels: RGB to luma for a grey network, grey repeated for an RGB one."""
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return rgb_to_yiq(x)[:, :1]  # the luma Y, the same one luma-only edits change
    return x.expand(-1, channels, -1, -1)


class ProbabilitiesWarning(UserWarning):
    """A classifier answered probabilities (rows non-negative, summing to 1) where logits were expected."""


def logits_of(output: Any, check: bool = True) -> torch.Tensor:
    """The ``(B, K)`` logits in a network's output: the tensor itself, the first element of a tuple or
    list, or the ``.logits`` of an output object (as transformers models return).

    With ``check``, warns with :class:`ProbabilitiesWarning` when the rows look like probabilities:
    morphlib takes a softmax of its own, and the gradient of a softmax of probabilities is nearly flat.
    """
    if isinstance(output, tuple | list) and output:
        output = output[0]
    elif not isinstance(output, torch.Tensor) and isinstance(getattr(output, "logits", None), torch.Tensor):
        output = output.logits
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"the network answered {shape}; a classifier must return logits of shape (batch, classes), "
            "a tuple starting with them, or an object with a .logits tensor"
        )
    if check and output.shape[1] > 1:
        with torch.no_grad():
            rows = output.detach().float()
            if rows.min() >= 0 and torch.allclose(rows.sum(1), torch.ones(()), atol=1e-3):
                warnings.warn(
                    "the network answers probabilities (rows non-negative, summing to 1), not logits: "
                    "morphlib applies its own softmax, so its gradients would be nearly flat; remove the "
                    "final softmax (or return log-probabilities)",
                    ProbabilitiesWarning,
                    stacklevel=3,
                )
    return output


class ZooModel(nn.Module):
    """A classifier of the zoo: ``(B, C, H, W)`` images in ``[0, 1]`` to logits ``(B, K)``.

    ``C`` is 1 or 3 whatever the network takes: a grey network sees the luma of an
    RGB image, an RGB network a grey image repeated (``entry.channels`` says which
    the network takes).

    Attributes
    ----------
    entry : ZooEntry
        The manifest entry this model was loaded from.
    labels : list of str
        Class names, indexed like the logits.
    label_ids : list of str
        The label set's own ids, indexed likewise: WordNet ids (``n01440764``) for
        ImageNet, else the names.
    preprocess : Preprocess
        Resize and normalisation, applied first.
    net : nn.Module
        The network proper, on normalised inputs.
    """

    def __init__(
        self, net: nn.Module, entry: ZooEntry, labels: Sequence[str], label_ids: Sequence[str] | None = None
    ) -> None:
        super().__init__()
        self.entry = entry
        self.labels = list(labels)
        self.label_ids = list(label_ids) if label_ids is not None else list(self.labels)
        self.preprocess = Preprocess(entry.input_size, entry.mean, entry.std)
        self.net = net
        self.outputs_checked = False  # whether the first answer was checked for probabilities
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images of shape (B, 1 or 3, H, W), got {tuple(x.shape)}")
        out = self.net(self.preprocess(match_channels(x, self.preprocess.channels)))
        logits = logits_of(out, check=not self.outputs_checked)
        self.outputs_checked = True
        return logits

    @property
    def differentiable(self) -> bool:
        """Whether its input gradient can drive a morph: not for a judge the manifest marks
        ``differentiable: false``, nor for a network that says so itself (a k-nearest-neighbour one)."""
        return self.entry.differentiable and getattr(self.net, "differentiable", True) is not False

    @property
    def device(self) -> torch.device:
        return self.preprocess.mean.device

    @torch.no_grad()
    def predict(self, image: torch.Tensor, k: int = 5) -> list[tuple[str, float]]:
        """Top-``k`` classes of one image, as ``(label, probability)``, most probable first.

        Parameters
        ----------
        image : torch.Tensor
            ``(C, H, W)`` or ``(1, C, H, W)`` in ``[0, 1]``, ``C`` 1 or 3.
        k : int
            How many classes (at most the number of classes).
        """
        if image.dim() == 3:
            image = image[None]
        if image.dim() != 4 or image.shape[0] != 1:
            raise ValueError(f"predict takes one image (C, H, W) or (1, C, H, W), got {tuple(image.shape)}")
        probs = self(image.to(self.device, torch.float32)).softmax(-1)[0]
        top = probs.topk(min(k, len(self.labels)))
        return [(self.labels[i], p) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]

    def domain_note(self, image: torch.Tensor) -> str | None:
        """Why ``image`` is far from what this model was trained on (a colour photo to a model of grey
        digits, ...), or ``None``; see :func:`morphlib.zoo.domain.domain_note`."""
        from morphlib.zoo.domain import domain_note

        return domain_note(self.entry, image)

    def __repr__(self) -> str:
        return f"ZooModel({self.entry.id!r}, {len(self.labels)} classes, input {self.entry.input_size})"
