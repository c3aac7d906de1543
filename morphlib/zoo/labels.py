"""Class names of a label set (a bundled data set, an ImageNet subset) or of a zoo entry,
without loading a model.

Examples
--------
>>> label_names("digits")[:3]
['0', '1', '2']
>>> names, ids = label_set("imagenet-1k")
>>> names[0], ids[0]
('tench, Tinca tinca', 'n01440764')
"""

from __future__ import annotations

from morphlib import data
from morphlib.zoo.entry import ZooEntry


def label_names(dataset: str | ZooEntry) -> list[str]:
    """Class names of a label set or of a zoo entry, without loading the model (see :func:`label_set`)."""
    return label_set(dataset)[0]


def label_set(dataset: str | ZooEntry) -> tuple[list[str], list[str]]:
    """``(names, ids)`` of a label set; ImageNet's ids are WordNet ids (``n01440764``), others the names.

    ``dataset`` is a :mod:`morphlib.data` set, an ImageNet subset timm knows (``imagenet-1k``,
    ``imagenet-22k``, ...), or a :class:`ZooEntry` (its own labels, if it has them, else its
    data set's).

    Raises
    ------
    ValueError
        An unknown label set (a model's own labels are known from its entry only).
    """
    if isinstance(dataset, ZooEntry):
        if dataset.labels:
            return list(dataset.labels), list(dataset.label_ids or dataset.labels)
        dataset = dataset.dataset
    if dataset.startswith("imagenet"):
        from timm.data import ImageNetInfo

        info = ImageNetInfo(dataset)
        return list(info.label_descriptions()), list(info.label_names())
    if dataset not in data.LABEL_NAMES:
        raise ValueError(
            f"unknown label set {dataset!r} (known: {', '.join(data.LABEL_NAMES)}, imagenet-1k); "
            "a model with labels of its own: pass its ZooEntry"
        )
    return list(data.LABEL_NAMES[dataset]), list(data.LABEL_NAMES[dataset])
