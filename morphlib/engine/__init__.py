"""The morph engine: class gradients in an edit space, walked along a path into frames.

One implementation of each path serves a single morph (a batch of one) and a batch alike:

* :mod:`~morphlib.engine.api`: :func:`morph`, :func:`morph_batch`, :func:`gradient`, :func:`gradients`;
* :mod:`~morphlib.engine.gradient`: the class gradient of a batch, and :class:`Gradient`;
* :mod:`~morphlib.engine.paths`: the frozen and the iterative (persistent, step-local) paths;
* :mod:`~morphlib.engine.auto`: automatic strength (where the target first meets a goal);
* :mod:`~morphlib.engine.search`: the root searches behind budgets;
* :mod:`~morphlib.engine.classifier`, :mod:`~morphlib.engine.inputs`: the model and the image;
* :mod:`~morphlib.engine.result`: :class:`MorphResult`.

Conventions (``docs/method.md`` explains them): the gradient is normalised to a largest
absolute value of 1 per image, so ``alpha`` is the largest single parameter change (radians
of phase, nepers of log-amplitude, or pixel values; ``csp-joint`` normalises phase and
log-amplitude together); L2 distances are measured between the frames as shown (clipped to
``[0, 1]``) and the input, over all channels.
"""

from .api import ProgressArg, config_for, first_gradient, gradient, gradients, morph, morph_batch
from .auto import AutoStrength, auto_strength
from .gradient import Gradient
from .inputs import prepare_image
from .result import MorphResult
from .search import BudgetUnreachable

__all__ = [
    "AutoStrength",
    "BudgetUnreachable",
    "Gradient",
    "MorphResult",
    "ProgressArg",
    "auto_strength",
    "config_for",
    "first_gradient",
    "gradient",
    "gradients",
    "morph",
    "morph_batch",
    "prepare_image",
]
