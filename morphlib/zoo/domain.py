"""Is an input far from what a model was trained on?  A short note when it is (a colour photo
given to a model of grey digits, a tiny image enlarged many times), ``None`` when nothing stands out.

The checks are cheap heuristics on the image alone, not a guarantee either way:

* colour: the mean chroma (``|I| + |Q|`` of YIQ) of a colour image given to a model of grey
  images, or of a grey image given to an ImageNet model of colour photos;
* brightness and contrast: the mean and standard deviation of the luma against those of the
  bundled data set the model was trained on (:mod:`morphlib.data`), measured on
  :data:`REFERENCE_IMAGES` of its training split, flagged beyond :data:`FAR` standard deviations;
* size: an image enlarged more than :data:`MAX_ENLARGEMENT` times to the model's input size.

Examples
--------
>>> from morphlib.zoo import load
>>> model = load("mnist-cnn")
>>> orange = torch.tensor([0.9, 0.5, 0.1]).view(3, 1, 1).expand(3, 28, 28)
>>> print(model.domain_note(orange))
Far from what the model was trained on: it is a colour image and the model was trained on grey ones
(it sees only the brightness); its brightness 0.57 and contrast 0.00 are unlike those of the mnist
images it was trained on (0.13 ± 0.04 and 0.30 ± 0.05).
>>> model.domain_note(data.load("mnist", "test", n=1)[0][0]) is None
True
"""

from __future__ import annotations

import functools

import torch

from morphlib import data
from morphlib.imaging import rgb_to_yiq
from morphlib.zoo.entry import ZooEntry

#: How many training images the brightness and contrast of a bundled data set are measured on.
REFERENCE_IMAGES = 200
#: Standard deviations from the training images' brightness or contrast that count as far.
FAR = 4.0
#: Mean chroma above which an image counts as in colour, and below which as grey.
COLOUR, GREY = 0.03, 0.005
#: Enlargement (input side over image side) beyond which the model sees mostly interpolation.
MAX_ENLARGEMENT = 4.0


def image_stats(images: torch.Tensor) -> torch.Tensor:
    """``(N, 3)``: brightness (mean luma), contrast (luma standard deviation) and mean chroma of
    ``(N, C, H, W)`` images in ``[0, 1]`` (``C`` 1 or 3)."""
    yiq = rgb_to_yiq(images.float().expand(-1, 3, -1, -1))
    luma = yiq[:, 0].flatten(1)
    return torch.stack([luma.mean(1), luma.std(1), yiq[:, 1:].abs().flatten(1).mean(1)], 1)


@functools.cache
def training_stats(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of :func:`image_stats` over a bundled set's training images."""
    images, _, _ = data.load(dataset, "train", n=REFERENCE_IMAGES, seed=0)
    stats = image_stats(images)
    return stats.mean(0), stats.std(0)


def domain_note(entry: ZooEntry, image: torch.Tensor) -> str | None:
    """Why ``image`` is far from what the model of ``entry`` was trained on, or ``None``.

    Parameters
    ----------
    entry : ZooEntry
        The model's entry (its label set, channels and input size).
    image : torch.Tensor
        ``(C, H, W)`` or ``(1, C, H, W)`` in ``[0, 1]``, best as given, before fitting it to
        the model's input size.
    """
    x = image[None] if image.dim() == 3 else image
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise ValueError(f"domain_note takes one image (C, H, W), C 1 or 3; got {tuple(image.shape)}")
    brightness, contrast, chroma = image_stats(x.detach().cpu())[0].tolist()
    notes = []
    grey_set = entry.channels == 1 or (
        entry.dataset in data.DATASETS and training_stats(entry.dataset)[0][2] < GREY
    )
    if grey_set and chroma > COLOUR:
        sees = " (it sees only the brightness)" if entry.channels == 1 else ""
        notes.append(f"it is a colour image and the model was trained on grey ones{sees}")
    if entry.dataset.startswith("imagenet") and chroma < GREY:
        notes.append("it is a grey image and the model was trained on colour photos")
    if entry.dataset in data.DATASETS:
        mean, std = training_stats(entry.dataset)
        z = (torch.tensor([brightness, contrast]) - mean[:2]) / std[:2].clamp_min(1e-3)
        if z.abs().max() > FAR:
            notes.append(
                f"its brightness {brightness:.2f} and contrast {contrast:.2f} are unlike those of the "
                f"{entry.dataset} images it was trained on ({mean[0]:.2f} ± {std[0]:.2f} and "
                f"{mean[1]:.2f} ± {std[1]:.2f})"
            )
    (h, w), (th, tw) = x.shape[-2:], entry.input_size
    if max(th / h, tw / w) > MAX_ENLARGEMENT:
        notes.append(f"it is {w}×{h} px, enlarged over {MAX_ENLARGEMENT:g}× to the {tw}×{th} the model takes")
    if not notes:
        return None
    return "Far from what the model was trained on: " + "; ".join(notes) + "."
