"""Judges that see pixels, not learned features: an MLP and a k-nearest-neighbour classifier.

Both are registered with timm (``pixel_mlp``, ``pixel_knn``), so a bundled folder in timm's
Hugging Face layout (``config.json`` + ``model.safetensors``) builds them as it builds
``test_resnet``: :func:`morphlib.zoo.loaders.load_timm_folder` and ``morphlib train
--arch mlp|knn`` need nothing else.  Like every bundled network they take images already
normalised (``(x - mean) / std`` by :class:`~morphlib.zoo.model.Preprocess`).

The k-nearest-neighbour classifier is not a neural network: its "weights" are its stored
training images (``uint8``) and labels, and its logits are the log of its smoothed vote
shares, ``log((votes + 0.5) / (k + 0.5 * classes))``, so that a softmax gives the shares back.
It has no useful gradient (the votes are piecewise constant in the input): it judges morphs,
it cannot drive them (``differentiable = False``; the engine refuses it).

Examples
--------
>>> import torch
>>> import timm
>>> knn = timm.create_model("pixel_knn", num_classes=3, in_chans=1, img_size=2, n_train=4, k=3)
>>> _ = knn.fit(torch.tensor([[0.0] * 4, [0.1] * 4, [1.0] * 4, [0.9] * 4]).view(4, 1, 2, 2),
...             torch.tensor([0, 0, 2, 2]))
>>> knn((torch.full((1, 1, 2, 2), 0.95) - 0.5) / 0.25).softmax(1).round(decimals=3)
tensor([[0.3330, 0.1110, 0.5560]])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

__all__ = ["PixelKNN", "PixelMLP"]


def _pixels(in_chans: int, img_size: int | Sequence[int]) -> int:
    """Values in one image: ``img_size`` is a side or ``(H, W)`` (timm saves it as a pair)."""
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    return in_chans * int(h) * int(w)


def _cfg(**kwargs: object) -> dict:
    return {
        "num_classes": 10,
        "input_size": (1, 28, 28),
        "mean": (0.5,),
        "std": (0.25,),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "first_conv": None,
        "classifier": None,
        "license": "mit",
        **kwargs,
    }


# Read by timm's register_model (the module's default_cfgs): the untrained defaults.
default_cfgs = generate_default_cfgs({"pixel_mlp": _cfg(classifier="head"), "pixel_knn": _cfg()})


class PixelMLP(nn.Module):
    """A multilayer perceptron on the flattened pixels: no convolution, no notion of neighbourhood.

    Parameters
    ----------
    num_classes, in_chans : int
        Classes and channels of the input.
    img_size : int or (int, int)
        Its side, or ``(H, W)``.
    hidden : sequence of int
        Widths of the hidden layers (ReLU after each).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        img_size: int | Sequence[int] = 28,
        hidden: Sequence[int] = (256, 256),
        **_: object,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, img_size
        widths = [_pixels(in_chans, img_size), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.num_features = widths[-1]
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class PixelKNN(nn.Module):
    """k nearest neighbours in raw pixel space (Euclidean), its training set stored as buffers.

    Parameters
    ----------
    num_classes, in_chans : int
        Classes and channels of the input.
    img_size : int or (int, int)
        Its side, or ``(H, W)``.
    n_train : int
        Stored training images (the buffers' length; :meth:`fit` fills them).
    k : int
        Neighbours that vote.
    mean, std : float
        The normalisation its inputs arrive in; distances are taken in ``[0, 1]`` pixels.
    """

    #: The votes are piecewise constant in the input: no gradient to morph along.
    differentiable = False

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        img_size: int | Sequence[int] = 28,
        n_train: int = 4000,
        k: int = 5,
        mean: float = 0.5,
        std: float = 0.25,
        **_: object,
    ) -> None:
        super().__init__()
        if not 1 <= k <= n_train:
            raise ValueError(f"k must be between 1 and n_train ({n_train}), got {k}")
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, img_size
        self.k, self.mean, self.std = k, float(mean), float(std)
        self.num_features = num_classes  # its "features" are the votes
        features = _pixels(in_chans, img_size)
        self.register_buffer("train_images", torch.zeros(n_train, features, dtype=torch.uint8))
        self.register_buffer("train_labels", torch.zeros(n_train, dtype=torch.uint8))

    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> PixelKNN:
        """Store ``images`` (``(N, C, H, W)`` in ``[0, 1]``, quantised to 8 bits) and their ``labels``."""
        if images.shape[0] != self.train_images.shape[0] or images[0].numel() != self.train_images.shape[1]:
            raise ValueError(
                f"fit takes {tuple(self.train_images.shape)} images (N, C*H*W), got {tuple(images.shape)}"
            )
        if int(labels.max()) >= self.num_classes or self.num_classes > 256:
            raise ValueError(f"labels must be below num_classes ({self.num_classes}) and 256")
        self.train_images.copy_((images.flatten(1) * 255).round().clamp(0, 255).to(torch.uint8))
        self.train_labels.copy_(labels.to(torch.uint8))
        return self

    def votes(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, classes)`` neighbour counts for normalised images ``x``."""
        query = (x.flatten(1).double() * self.std + self.mean) * 255  # in the stored images' units
        stored = self.train_images.double()
        # Squared distances up to each query's own norm: the ranking is exact in float64.
        distances = (stored * stored).sum(1)[None] - 2 * query @ stored.T
        nearest = distances.topk(self.k, dim=1, largest=False, sorted=True).indices
        return F.one_hot(self.train_labels[nearest].long(), self.num_classes).sum(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shares = (self.votes(x).to(x.dtype) + 0.5) / (self.k + 0.5 * self.num_classes)
        return shares.log()


@register_model
def pixel_mlp(pretrained: bool = False, **kwargs: object) -> PixelMLP:
    """:class:`PixelMLP` for timm's ``create_model`` (and so for ``local-dir:`` folders)."""
    return build_model_with_cfg(PixelMLP, "pixel_mlp", pretrained, **kwargs)


@register_model
def pixel_knn(pretrained: bool = False, **kwargs: object) -> PixelKNN:
    """:class:`PixelKNN` for timm's ``create_model`` (and so for ``local-dir:`` folders)."""
    return build_model_with_cfg(PixelKNN, "pixel_knn", pretrained, **kwargs)
