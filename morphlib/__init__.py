"""morphlib: how a classifier would change an image to make it another class.

Phase-based extrapolation of class gradients in a complex steerable pyramid.
"""

__version__ = "0.1.0"

from .morph import BudgetUnreachable, Gradient, MorphResult, gradient, morph  # noqa: E402

__all__ = ["BudgetUnreachable", "Gradient", "MorphResult", "gradient", "morph"]
