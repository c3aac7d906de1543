"""Write the app's example images into ``assets/examples/`` (see ``assets/examples/examples.yaml``).

* test images of the bundled data sets (seed 0), as PNG at their native size (MNIST grey);
* four photos that scikit-image ships (public domain / CC0, see ``assets/README.md``),
  resized so that the shorter side is 256 px and saved as JPEG.

Needs scikit-image (``pip install scikit-image``) for the photos; run from the repository root::

    python -m scripts.make_examples   # or: PYTHONPATH=. python scripts/make_examples.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from morphlib.data import load

OUT = Path(__file__).resolve().parents[1] / "assets" / "examples"
#: (file stem, data set, index in the seed-0 test split)
DATA = [
    ("mnist-3", "mnist", None),
    ("mnist-7", "mnist", None),
    ("mnist-4", "mnist", None),
    ("digit-3", "digits", 18),
    ("digit-7", "digits", 27),
    ("digit-4", "digits", 13),
    ("grating-90", "orientation", 0),
    ("grating-45", "orientation", 3),
    ("shape-star", "shapes", None),
    ("shape-triangle", "shapes", None),
]
PHOTOS = {"cat": "chelsea", "coffee": "coffee", "rocket": "rocket", "astronaut": "astronaut"}
PHOTO_SIDE = 256


def data_image(name: str, dataset: str, index: int | None) -> np.ndarray:
    images, labels, names = load(dataset, split="test", n=64, seed=0)
    if index is None:  # first test image of the class in the file name
        index = int(np.flatnonzero(labels.numpy() == names.index(name.split("-", 1)[1]))[0])
    pixels = (images[index].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels  # grey sets as grey PNG


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for stem, dataset, index in DATA:
        Image.fromarray(data_image(stem, dataset, index)).save(OUT / f"{stem}.png", optimize=True)
    import skimage.data

    for stem, function in PHOTOS.items():
        image = Image.fromarray(getattr(skimage.data, function)()).convert("RGB")
        scale = PHOTO_SIDE / min(image.size)
        size = (round(image.width * scale), round(image.height * scale))
        image.resize(size, Image.Resampling.LANCZOS).save(OUT / f"{stem}.jpg", quality=90, optimize=True)
    print(f"wrote {len(DATA) + len(PHOTOS)} examples to {OUT}")


if __name__ == "__main__":
    main()
