"""The engine's input images: a tensor, PIL image or array, checked and made ``(1, C, H, W)``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from morphlib.imaging import load_image

#: Smallest side the morph takes (the pyramid needs a few octaves).
MIN_SIDE = 16

__all__ = ["MIN_SIDE", "prepare_image"]


def prepare_image(image: Any, dtype: torch.dtype = torch.float32, device: Any = "cpu") -> Tensor:
    """Return ``image`` as a ``(1, C, H, W)`` float tensor in ``[0, 1]``.

    Accepts a tensor ``(C, H, W)`` or ``(1, C, H, W)`` with values in ``[0, 1]``, a PIL
    image (decoded as :func:`morphlib.imaging.load_image` decodes files: every mode, RGB
    out), or a numpy array ``(H, W)``/``(H, W, C)`` (``uint8``, or float in ``[0, 1]``; RGB out).

    Examples
    --------
    >>> import numpy as np
    >>> prepare_image(np.zeros((16, 20), dtype=np.uint8)).shape
    torch.Size([1, 3, 16, 20])
    """
    if not isinstance(image, Tensor):
        image = _to_tensor(image)
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(
            f"expected one image of shape (C, H, W) or (1, C, H, W), got {tuple(image.shape)}; "
            "morph one image at a time (several: morph_batch)"
        )
    if image.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels (C, H, W), got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"expected a float image in [0, 1], got {image.dtype}; use x.float() / 255")
    image = image.detach().to(dtype=dtype, device=device)
    if not torch.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    if image.min() < 0 or image.max() > 1:
        raise ValueError(
            f"image values must lie in [0, 1], got [{image.min().item():.3g}, {image.max().item():.3g}]; "
            "divide 8-bit images by 255"
        )
    if min(image.shape[-2:]) < MIN_SIDE:
        raise ValueError(
            f"image is {tuple(image.shape[-2:])} pixels; the morph needs at least {MIN_SIDE} a side"
        )
    return image


def _to_tensor(image: Any) -> Tensor:
    from PIL import Image

    if isinstance(image, Image.Image):
        return load_image(image).image
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a torch.Tensor, PIL image or numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an array (H, W) or (H, W, C), got shape {image.shape}")
    image = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    if image.dtype == np.uint8:
        array = image.astype(np.float32) / 255.0
    elif np.issubdtype(image.dtype, np.floating):
        array = image.astype(np.float32)
    else:
        raise TypeError(f"expected a uint8 or float array, got {image.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
