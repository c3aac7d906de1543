"""morphlib: how a classifier would change an image to make it another class.

Phase-based extrapolation of class gradients in a complex steerable pyramid.  Build a
:class:`MorphConfig` and a :class:`Strength` and call :func:`morph` (or :func:`morph_batch`);
``docs/method.md`` explains the method and ``docs/architecture.md`` the code.
"""

__version__ = "0.2.0"

# The old module paths first, so that importing them later cannot rebind ``morphlib.morph`` (the function).
from . import batch as batch  # noqa: E402,F401
from . import morph as _morph_module  # noqa: E402,F401
from .config import PAPER, RECOMMENDED, RECOMMENDED_STRENGTH, MorphConfig, PyramidConfig, Strength  # noqa: E402
from .engine import BudgetUnreachable, Gradient, MorphResult, gradient, morph, morph_batch  # noqa: E402

__all__ = [
    "PAPER",
    "RECOMMENDED",
    "RECOMMENDED_STRENGTH",
    "BudgetUnreachable",
    "Gradient",
    "MorphConfig",
    "MorphResult",
    "PyramidConfig",
    "Strength",
    "gradient",
    "morph",
    "morph_batch",
]
