"""Which judges of a morph are independent of its driver: the rule, in one place.

A morph "transfers" when a model that did not drive it reads its last frame as the target.
That only says something about what a person would see if the judge does not share the
driver's way of going wrong.  Between a driver and a judge of the same label set:

* **sibling**: the same architecture trained on the same data set (whatever the recipe:
  ``mnist-cnn`` is a sibling of ``mnist-cnn-robust`` and of ``mnist-cnn-robust-eps3``).
  Shown beside the others, never counted as independent.
* **independent**: another architecture *and* another way of seeing the data (the entry's
  ``view``: its input and augmentation; ``"standard"`` when the manifest does not say, for
  the data set's usual training).  Only these are counted.
* **same view**: another architecture that sees the data as the driver does (the bundled
  ``mnist-judge`` EfficientNet and ``mnist-judge-vit``: the same digits, the same random
  shifts).  Shown, not counted as independent.

Adversarial training is not another view: it is how the driver is made robust, recorded in
its ``robust`` field.  The driver itself is never its own judge.

Examples
--------
>>> relation("mnist-cnn-robust", "mnist-cnn")
'sibling'
>>> independent_judges("mnist-cnn-robust", ["mnist-cnn", "mnist-judge", "mnist-judge-knn"])
['mnist-judge-knn']
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from morphlib.zoo.entry import ZooEntry

__all__ = ["RELATIONS", "independent_judges", "is_independent", "is_sibling", "relation"]

#: What a judge can be to a driver (see the module's text).
RELATIONS = ("self", "sibling", "same view", "independent")

Model = str | ZooEntry
Manifest = str | Path | dict[str, ZooEntry] | None


def _entry(model: Model, manifest: Manifest) -> ZooEntry:
    if isinstance(model, ZooEntry):
        return model
    from morphlib.zoo import entry_for  # the package imports this module

    return entry_for(model, manifest)


def relation(driver: Model, judge: Model, manifest: Manifest = None) -> str:
    """What ``judge`` is to ``driver``: one of :data:`RELATIONS`.

    Parameters
    ----------
    driver, judge : str or ZooEntry
        Zoo ids (of ``manifest``, default the zoo's) or entries.

    Raises
    ------
    ValueError
        The two read different label sets: the judge cannot judge this driver's targets.
    """
    d, j = _entry(driver, manifest), _entry(judge, manifest)
    if d.id == j.id:
        return "self"
    if d.dataset != j.dataset:
        raise ValueError(
            f"{j.id!r} ({j.dataset}) cannot judge {d.id!r} ({d.dataset}): they read different label sets"
        )
    if d.architecture == j.architecture:
        return "sibling"
    return "same view" if d.view == j.view else "independent"


def is_sibling(driver: Model, judge: Model, manifest: Manifest = None) -> bool:
    """Whether ``judge`` is ``driver``'s own architecture trained on the same data set."""
    return relation(driver, judge, manifest) == "sibling"


def is_independent(driver: Model, judge: Model, manifest: Manifest = None) -> bool:
    """Whether ``judge`` differs from ``driver`` in architecture and in its view of the data."""
    return relation(driver, judge, manifest) == "independent"


def independent_judges(driver: Model, judges: Iterable[Model], manifest: Manifest = None) -> list[str]:
    """The ids of the ``judges`` that count as independent of ``driver``, in their order; siblings,
    same-view judges and the driver itself are left out."""
    return [_entry(j, manifest).id for j in judges if relation(driver, j, manifest) == "independent"]
