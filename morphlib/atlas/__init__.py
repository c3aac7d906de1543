"""The decision-boundary atlas: which classes lie near an image, how far, and how their regions meet.

* :func:`atlas`: one batch walks from the image toward every other class (or the given ones)
  and measures the L2 distance at which each becomes the top-1 class (:class:`Atlas`);
* :func:`plane`: the top-1 class over the plane spanned, in the edit parameters, by the
  gradient directions toward two classes (:class:`Plane`);
* :mod:`~morphlib.atlas.survey`: atlases of many sources, and the table of boundary distances
  per class pair (``morphlib evaluate --atlas``).

``docs/atlas.md`` says what the distances and the plane mean, and what they do not.
"""

from .planes import GRID, Plane, plane
from .routes import MAX_ALL_CLASSES, RUNNERS_UP, Atlas, Route, atlas, atlases, default_targets

__all__ = [
    "GRID",
    "MAX_ALL_CLASSES",
    "RUNNERS_UP",
    "Atlas",
    "Plane",
    "Route",
    "atlas",
    "atlases",
    "default_targets",
    "plane",
]
