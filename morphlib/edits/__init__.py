"""Edit families: how a small set of parameters changes an image (docs/method.md §3).

=================  ====================================  ==========================
family             parameters                            image
=================  ====================================  ==========================
``pixel``          ``Δ`` per pixel                       ``x0 + Δ``
``fourier-phase``  ``δ`` per ``rfft2`` coefficient       ``F⁻¹(s0 · exp(iδ))``
``csp-phase``      ``δ`` per CSP band coefficient        ``S(c0 · exp(iδ))``
``csp-joint``      ``δ`` and ``η`` per band coefficient  ``S(c0 · exp(η + iδ))``
``csp-amplitude``  ``η`` per band coefficient            ``S(c0 · exp(η))``
=================  ====================================  ==========================

One module per family (:mod:`~morphlib.edits.pixel`, :mod:`~morphlib.edits.fourier`,
:mod:`~morphlib.edits.pyramid`), each a :class:`~morphlib.edits.base.Family` registered by
name; a new family is one more module imported here.  Parameters are a tuple of real tensors
(one per level and kind), each with a leading *frame* axis: a batch of ``F`` parameter sets
synthesises ``F`` images at once.
"""

# Registration order is the order families are listed in (pixel first, the pyramid families last).
from . import pixel  # noqa: F401, I001
from . import fourier  # noqa: F401
from . import pyramid  # noqa: F401
from .base import REGISTRY, Family, Params, params_abs_max, per_row, register, scale_params
from .smoothing import gaussian_blur
from .space import EditSpace

#: Every edit family's name, in a stable order.
FAMILIES: tuple[str, ...] = tuple(REGISTRY)

__all__ = [
    "FAMILIES",
    "REGISTRY",
    "EditSpace",
    "Family",
    "Params",
    "gaussian_blur",
    "params_abs_max",
    "per_row",
    "register",
    "scale_params",
]
