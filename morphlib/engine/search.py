"""One-dimensional root searches: the step size whose frame lies at a given L2 distance.

Every search of the engine (a frozen path's amplification for a budget, an iterative step's
size) is :func:`root_search`, a generator, so that the searches of a batch run in lockstep
and each round of them is one batched evaluation (:func:`solve_rows`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence

import torch
from torch import Tensor

#: The step whose L2 change gives a budget search its first guess.
PROBE = 1e-3
#: Relative tolerance of every budget search (frames meet their distance within 1 %).
RTOL = 0.01
NO_CHANGE = (
    "the edit does not change the image as shown: it is zero here, or it pushes values "
    "already at 0 or 1 out of range (a blank or saturated image?); try another image, "
    "target or family"
)

__all__ = [
    "NO_CHANGE",
    "PROBE",
    "BudgetUnreachable",
    "root_search",
    "solve_increasing",
    "solve_rows",
    "stalled",
]


class BudgetUnreachable(ValueError):
    """The edit path never reaches the requested L2 budget (phase edits saturate)."""


def stalled(regime: str, budget: float, current: float, step: int, frames: int) -> BudgetUnreachable:
    """The error of an iterative path that cannot take its ``step``-th step toward ``budget``."""
    return BudgetUnreachable(
        f"the L2 budget {budget:.4g} cannot be reached along the {regime} path: it stalls at "
        f"L2 {current:.4g} (step {step} of {frames - 1}); use a smaller budget, another family, "
        "or no phase cap"
    )


def root_search(goal: float, f0: float, guess: float, rtol: float = RTOL) -> Generator[float, float, float]:
    """Find ``s > 0`` with ``fn(s) == goal`` (to ``rtol``) for an ``fn`` that rises from ``fn(0) = f0``.

    A generator: it yields each ``s`` to try, is sent ``fn(s)``, and returns the root.  Until
    the goal is bracketed, each step fits ``fn(s) − f0 ≈ a·s^p`` through the last two points
    (at most ×8 per step); once bracketed, regula falsi guarded by bisection.  Typically 2–4
    evaluations.  Raises BudgetUnreachable when ``goal`` cannot be reached.

    Examples
    --------
    >>> s = solve_increasing(lambda s: s**2, 4.0, 0.0, 1.0)  # s² = 4 within 1 %
    >>> abs(s**2 - 4.0) <= 0.04
    True
    """
    tol = rtol * goal
    lo, f_lo = 0.0, f0
    hi: float | None = None
    f_hi = math.nan
    prev: tuple[float, float] | None = None
    s = max(guess, 1e-12)
    for _ in range(100):
        f = yield s
        if not math.isfinite(f):
            raise BudgetUnreachable(
                f"the L2 budget {goal:.4g} cannot be reached: the edit breaks down (non-finite values) on "
                "the way; use a smaller budget or another family"
            )
        if abs(f - goal) <= tol:
            return s
        if f > goal:
            hi, f_hi = s, f
        else:
            if hi is None and (s > 1e6 or (s > 1e3 and f <= f_lo * (1 + 1e-6))):
                raise BudgetUnreachable(
                    f"the L2 budget {goal:.4g} cannot be reached: this edit saturates at about "
                    f"{f:.4g}; use a smaller budget, another family, or no phase cap"
                )
            lo, f_lo = s, f
        last, prev = prev, (s, f)
        if hi is None:  # not bracketed: power-law extrapolation
            power = 1.0
            if last is not None and last[0] != s and last[1] > f0 and f > f0:
                power = math.log((f - f0) / (last[1] - f0)) / math.log(s / last[0])
            power = min(max(power, 0.1), 2.0) if math.isfinite(power) else 1.0
            ratio = (goal - f0) / max(f - f0, 1e-30)
            s = s * min(ratio ** (1.0 / power), 8.0)
            continue
        s = lo + (goal - f_lo) * (hi - lo) / (f_hi - f_lo)
        if not lo + 0.02 * (hi - lo) < s < hi - 0.02 * (hi - lo):
            s = 0.5 * (lo + hi)
    raise BudgetUnreachable(f"could not match the L2 budget {goal:.4g} (the edit path is not monotone here)")


def solve_rows(
    fn: Callable[[Tensor], list[float]], goals: Sequence[float], f0: Sequence[float], guesses: Sequence[float]
) -> list[float | BudgetUnreachable]:
    """One :func:`root_search` per row, in lockstep: each round evaluates ``fn`` once for all rows.

    ``fn(s)`` takes one value per row ``(B,)`` and returns one result per row (a row already
    solved is evaluated at its root).  A row whose goal is out of reach gets its error.
    """
    searches = [root_search(g, f, guess) for g, f, guess in zip(goals, f0, guesses, strict=True)]
    s = [next(search) for search in searches]
    out: list[float | BudgetUnreachable] = [0.0] * len(searches)
    pending = set(range(len(searches)))
    while pending:
        values = fn(torch.tensor(s, dtype=torch.float64))
        for i in sorted(pending):
            try:
                s[i] = searches[i].send(values[i])
            except StopIteration as found:
                out[i] = found.value
                pending.discard(i)
            except BudgetUnreachable as err:
                out[i], s[i] = err, 0.0
                pending.discard(i)
    return out


def solve_increasing(fn: Callable[[float], float], goal: float, f0: float, guess: float) -> float:
    """:func:`solve_rows` of one row with a scalar ``fn``; raises BudgetUnreachable when out of reach."""
    (found,) = solve_rows(lambda s: [fn(float(s[0]))], [goal], [f0], [guess])
    if isinstance(found, BudgetUnreachable):
        raise found
    return found
