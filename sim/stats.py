"""The statistics the simulations report: ranks, Spearman's rho, mean and spread."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def average_ranks(xs: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span (the usual convention)."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson's r; 0.0 when either side is constant (no ordering to agree with)."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("pearson needs two sequences of the same length >= 2")
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return 0.0
    return sxy / math.sqrt(sxx * syy)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's r of the average ranks (ties handled)."""
    return pearson(average_ranks(xs), average_ranks(ys))


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation, min and max of a few runs (one per seed)."""

    mean: float
    sd: float
    lo: float
    hi: float
    n: int

    @staticmethod
    def of(xs: Sequence[float]) -> Spread:
        if not xs:
            raise ValueError("no values")
        m = sum(xs) / len(xs)
        sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
        return Spread(m, sd, min(xs), max(xs), len(xs))

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.sd:.2f} [{self.lo:.2f}, {self.hi:.2f}] (n={self.n})"
