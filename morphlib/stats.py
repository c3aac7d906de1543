"""Rates with intervals and the paired test the reports use (no SciPy: both are a few lines).

>>> lo, hi = wilson(45, 50)
>>> round(lo, 3), round(hi, 3)
(0.786, 0.957)
>>> round(mcnemar(2, 10), 4)
0.0386
"""

from __future__ import annotations

import math

#: z of a two-sided 95 % interval.
Z95 = 1.959963984540054

__all__ = ["Z95", "mcnemar", "rate", "wilson"]


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a rate ``k / n`` (95 % by default); ``(0, 1)`` when ``n == 0``."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(k: int, n: int) -> str:
    """``"k/n (r %, 95 % CI lo–hi)"``, the way the reports print a rate."""
    if n == 0:
        return "0/0"
    lo, hi = wilson(k, n)
    return f"{k}/{n} ({100 * k / n:.0f} %, CI {100 * lo:.0f}–{100 * hi:.0f})"


def mcnemar(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for paired outcomes: ``b`` pairs only the first method got
    right, ``c`` only the second (a binomial test of ``b`` in ``b + c`` at one half)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)
