"""Images in and out: decode any file safely, fit it to a model's input size, convert colour
spaces and go back to 8-bit pixels.  The one place where morphlib reads and converts images
(the app, the CLI and image folders all decode through :func:`load_image`).

Every problem a user can cause raises :class:`ImageError` (a ``ValueError``) with a
message that says what to do; conversions that change the image (grey to RGB, 16-bit to
float, transparency flattened, resizing) are reported as notes, not errors.

Examples
--------
>>> from PIL import Image
>>> import io
>>> buffer = io.BytesIO()
>>> Image.new("LA", (80, 40), (128, 0)).save(buffer, format="PNG")
>>> loaded = load_image(buffer.getvalue())
>>> loaded.image.shape, loaded.original_size
(torch.Size([3, 40, 80]), (80, 40))
>>> loaded.notes[0]
'transparent areas flattened onto white'
>>> fitted, note = fit_to_size(loaded.image, (32, 32))
>>> fitted.shape, note
(torch.Size([3, 32, 32]), 'resized from 80×40 and centre-cropped to 32×32, the size the model takes')
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

#: Largest image accepted, in pixels (width × height), checked before decoding.
MAX_PIXELS = 40_000_000
#: Largest file accepted, in bytes.
MAX_BYTES = 25 * 2**20
#: Most pixels an image is decoded to when it is decoded for a model (``load_image(fit_to=...)``), as
#: float32 RGB 48 MB: only a very elongated image (say 20000 x 1000) has more once reduced.
MAX_DECODED_PIXELS = 4_000_000
#: Smallest side accepted, in pixels (smaller images carry no usable content).
MIN_SIDE = 8

READABLE = "PNG, JPEG, WebP, GIF, BMP or TIFF"

__all__ = [
    "MAX_BYTES",
    "MAX_PIXELS",
    "MIN_SIDE",
    "YIQ_TO_RGB",
    "ImageError",
    "LoadedImage",
    "fit_to_size",
    "grey_rows",
    "load_image",
    "rgb_to_yiq",
    "to_uint8",
    "yiq_to_rgb",
]

# RGB <-> YIQ (NTSC 1953), rows are output channels.
RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=torch.float64,
)
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)


def _mix_channels(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return torch.einsum("oc,...chw->...ohw", matrix.to(dtype=x.dtype, device=x.device), x)


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """Convert ``(..., 3, H, W)`` RGB to YIQ (Y is luma, I and Q chroma)."""
    return _mix_channels(x, RGB_TO_YIQ)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_yiq`."""
    return _mix_channels(x, YIQ_TO_RGB)


def grey_rows(images: torch.Tensor) -> torch.Tensor:
    """Which images ``(B, C, H, W)`` are grey in RGB (three equal channels): ``(B,)`` booleans; a
    one-channel image is not (it has no colour to keep).

    >>> grey_rows(torch.zeros(2, 3, 4, 4)).tolist(), grey_rows(torch.zeros(1, 1, 4, 4)).tolist()
    ([True, True], [False])
    """
    if images.shape[1] != 3:
        return torch.zeros(len(images), dtype=torch.bool)
    return (images == images[:, :1]).flatten(1).all(1)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images ``(..., C, H, W)`` in ``[0, 1]`` (clipped) as 8-bit pixels ``(..., H, W, C)``.

    >>> to_uint8(torch.tensor([[[0.0, 0.5, 1.2]]])).tolist()
    [[[0], [128], [255]]]
    """
    pixels = (images.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu()
    return pixels.movedim(-3, -1).numpy()


class ImageError(ValueError):
    """The input is not an image the app can use; the message says why and what to do."""


@dataclass
class LoadedImage:
    """A decoded image.

    Attributes
    ----------
    image : Tensor
        ``(3, H, W)`` float32 RGB in ``[0, 1]``.
    original_size : (int, int)
        ``(width, height)`` as stored in the file.
    mode : str
        The file's PIL mode (``"RGB"``, ``"L"``, ``"I;16"``, ...).
    notes : list of str
        Conversions made on the way.
    """

    image: torch.Tensor
    original_size: tuple[int, int]
    mode: str
    notes: list[str] = field(default_factory=list)


def _read(source: str | Path | bytes, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"no image file at {path.name!r}; upload a {READABLE} image")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(
                f"the file is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB — "
                "upload a smaller image"
            )
        data = path.read_bytes()
    if len(data) > max_bytes:
        raise ImageError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    if not data:
        raise ImageError(f"the file is empty; upload a {READABLE} image")
    return data


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open (header only) and check the pixel count before anything is decoded."""
    too_big = (
        "the image is {w}×{h} = {mp:.0f} megapixels; the limit is {limit:.0f} megapixels "
        "(very large images, and files that decompress to them, are refused) — downscale it first"
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(f"this file is not an image the app can read; upload a {READABLE} image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"the image is too large to decode safely ({err}); downscale it first") from None
    except Exception as err:  # malformed headers raise all sorts of errors
        raise ImageError(
            f"the image file is corrupt ({type(err).__name__}: {err}); try another file"
        ) from None
    w, h = image.size
    if w * h > max_pixels:
        raise ImageError(too_big.format(w=w, h=h, mp=w * h / 1e6, limit=max_pixels / 1e6))
    return image


def _to_array(image: Image.Image, notes: list[str]) -> np.ndarray:
    """``(H, W, 3)`` float32 in ``[0, 1]`` from any PIL mode."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        array = np.asarray(image).astype(np.float64)
        if mode == "F":
            top = float(np.nanmax(array)) if array.size else 0.0
            scale = 1.0 if top <= 1.0 else (255.0 if top <= 255.0 else 65535.0)
            notes.append("floating-point image: values scaled to [0, 1]")
        elif mode.startswith("I;16"):  # the full 16-bit range, whatever the contents
            scale = 65535.0
            notes.append("16-bit greyscale image: scaled to [0, 1]")
        else:
            top = float(array.max()) if array.size else 0.0
            scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
            notes.append("32-bit greyscale image: scaled to [0, 1]")
        array = np.clip(np.nan_to_num(array / scale), 0.0, 1.0)
        notes.append("greyscale image: used as RGB (three equal channels)")
        return np.repeat(array[..., None], 3, axis=-1).astype(np.float32)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        if alpha.min() < 255:
            notes.append("transparent areas flattened onto white")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, rgba).convert("RGB")
    else:
        rgb = image.convert("RGB")
    if mode in ("1", "L", "LA", "La", "I;16", "I", "F") or (mode == "P" and _is_grey(rgb)):
        notes.append("greyscale image: used as RGB (three equal channels)")
    elif mode == "CMYK":
        notes.append("CMYK image: converted to RGB")
    return np.asarray(rgb, dtype=np.float32) / 255.0


def _raw_mode(image: Image.Image) -> str:
    """How the file stores its pixels (e.g. ``"RGB;16B"``), read before decoding; ``""`` if unknown."""
    tiles = getattr(image, "tile", None) or []
    args = getattr(tiles[0], "args", None) if tiles else None
    raw = args[0] if isinstance(args, tuple) and args else args
    return raw if isinstance(raw, str) else ""


def _is_grey(image: Image.Image) -> bool:
    array = np.asarray(image)
    return bool((array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all())


#: Modes :meth:`PIL.Image.Image.reduce` cannot work in, and the mode it reduces them in instead.
_REDUCE_IN = {"1": "L", "P": "RGBA", "I;16": "I", "I;16L": "I", "I;16B": "I", "I;16N": "I"}


def _reduction(w: int, h: int, fit_to: tuple[int, int] | None) -> int:
    """The factor a ``w`` x ``h`` image for a model of input ``fit_to`` is decoded reduced by (1: none)."""
    factor = min(w, h) // (2 * max(fit_to)) if fit_to else 1
    return factor if factor >= 2 else 1


def _check_decoded_size(w: int, h: int, fit_to: tuple[int, int] | None) -> None:
    """Refuse, before decoding, an image that would still have more than :data:`MAX_DECODED_PIXELS`
    once reduced for ``fit_to`` (only a very elongated one: the model sees its centre anyway)."""
    factor = _reduction(w, h, fit_to)
    if fit_to and (w // factor) * (h // factor) > MAX_DECODED_PIXELS:
        th, tw = fit_to
        raise ImageError(
            f"the image is {w}×{h} pixels, so elongated that it would be decoded at "
            f"{w // factor}×{h // factor} for a model that sees its centre ({tw}×{th}); crop it first"
        )


def _decode(image: Image.Image, fit_to: tuple[int, int] | None, notes: list[str]) -> Image.Image:
    """``image`` decoded; with ``fit_to`` ``(H, W)``, at a fraction of its size that still has at
    least twice ``max(fit_to)`` pixels a side (enough for an antialiased fit to that size).

    A JPEG is decoded reduced to begin with (1/2, 1/4 or 1/8, :meth:`~PIL.Image.Image.draft`);
    other formats are reduced (box filter) right after decoding, in their own 8- or 16-bit
    pixels: the full-size image never exists as floats.
    """
    need = 2 * max(fit_to) if fit_to else 0
    w, h = image.size
    if _reduction(w, h, fit_to) == 1:
        image.load()
        return image
    if image.format == "JPEG":
        image.draft(image.mode, (w // (min(w, h) // need), h // (min(w, h) // need)))
    image.load()
    factor = min(image.size) // need
    if factor >= 2:
        mode = image.mode
        work = _REDUCE_IN.get(mode, mode)
        if mode == "P" and "transparency" not in image.info:
            work = "RGB"
        image = image.convert(work) if work != mode else image
        image = image.reduce(factor)
        image = image.convert("I;16") if mode.startswith("I;16") else image
    notes.append(f"large image: decoded at {image.width}×{image.height} (from {w}×{h}), enough for the model")
    return image


def load_image(
    source: str | Path | bytes | Image.Image,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_BYTES,
    min_side: int = MIN_SIDE,
    fit_to: tuple[int, int] | None = None,
) -> LoadedImage:
    """Decode an image file (path or bytes) or a PIL image into ``(3, H, W)`` RGB floats in ``[0, 1]``.

    Checks, in order: file size (``max_bytes``), that it is an image, its pixel count from
    the header (``max_pixels``, before decoding: decompression bombs are refused), that it
    decodes completely (truncated files are refused), and its smallest side (``min_side``).
    EXIF orientation is applied; animations use their first frame; greyscale, palette,
    16-bit, float, CMYK and transparent images are converted (see ``notes``).

    Parameters
    ----------
    fit_to : (int, int), optional
        The ``(H, W)`` the image is for (a model's input size, as :func:`fit_to_size` takes):
        a much larger image is decoded reduced, to at least twice ``max(fit_to)`` pixels a
        side, so that a small file of many pixels never decodes to gigabytes.
        ``original_size`` stays the file's.

    Raises
    ------
    ImageError
        With a message for the user.

    Examples
    --------
    >>> big = io.BytesIO()
    >>> Image.new("RGB", (4000, 3000), "navy").save(big, format="PNG")
    >>> loaded = load_image(big.getvalue(), fit_to=(224, 224))
    >>> loaded.image.shape, loaded.original_size
    (torch.Size([3, 500, 667]), (4000, 3000))
    """
    if isinstance(source, Image.Image):
        image = source
        if image.width * image.height > max_pixels:
            megapixels = image.width * image.height / 1e6
            raise ImageError(
                f"the image has {megapixels:.0f} megapixels; the limit is {max_pixels / 1e6:.0f}"
            )
    else:
        image = _open(_read(source, max_bytes), max_pixels)
    _check_decoded_size(*image.size, fit_to)
    notes: list[str] = []
    mode, size = image.mode, image.size
    if not mode.startswith("I;16") and ";16" in _raw_mode(image):  # e.g. a 48-bit RGB PNG
        notes.append("16 bits per channel: reduced to 8")
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
            notes.append("animated image: its first frame is used")
        image = _decode(image, fit_to, notes)
        image = ImageOps.exif_transpose(image) or image
        array = _to_array(image, notes)
    except ImageError:
        raise
    except Exception as err:  # truncated data, bad chunks, unsupported compression...
        raise ImageError(
            f"the image could not be decoded ({type(err).__name__}: {err}); the file may be truncated or "
            f"corrupt — try another {READABLE} file"
        ) from None
    h, w = array.shape[:2]
    if min(h, w) < min_side:
        raise ImageError(f"the image is only {w}×{h} pixels; give at least {min_side} pixels a side")
    if not np.isfinite(array).all():
        raise ImageError("the image contains NaN or infinite values")
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()
    return LoadedImage(tensor, size, mode, notes)


def fit_to_size(image: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, str | None]:
    """Resize ``image`` ``(3, H, W)`` so that it covers ``size`` ``(H, W)``, then centre-crop to it.

    This is how classifiers are usually evaluated (aspect ratio kept, centre crop); it also
    caps the cost of a morph at the model's own input size.  Shrinking is antialiased.

    Returns
    -------
    image : Tensor
        ``(3, size[0], size[1])``.
    note : str or None
        What was done, for the user; ``None`` when the image already had that size.
    """
    th, tw = int(size[0]), int(size[1])
    h, w = image.shape[-2:]
    if (h, w) == (th, tw):
        return image, None
    scale = max(th / h, tw / w)
    # the region of the source that the output covers, cropped before resizing: resizing the whole
    # image first would allocate it at the output's scale (GBs for a very elongated strip)
    ch, cw = min(h, max(1, round(th / scale))), min(w, max(1, round(tw / scale)))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = image[:, top : top + ch, left : left + cw]
    if (ch, cw) != (th, tw):
        shrink = ch > th or cw > tw
        out = F.interpolate(out[None], size=(th, tw), mode="bilinear", align_corners=False, antialias=shrink)
        out = out[0].clamp(0.0, 1.0)
    out = out.contiguous()
    verb = "enlarged" if scale > 1 else "resized"
    crop = " and centre-cropped" if (ch, cw) != (h, w) else ""
    return out, f"{verb} from {w}×{h}{crop} to {tw}×{th}, the size the model takes"
