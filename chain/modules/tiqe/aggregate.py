"""The integer arithmetic of a round's verdict: weighted median, deviations, ratings, worker EMAs.

Pure functions on integers (ppm), so every node computes the same verdict and
tests (and the validator process) can check it without a chain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PPM = 1_000_000


def weighted_median(entries: Sequence[tuple[int, bytes, int]]) -> int:
    """Lower weighted median of (score, validator address bytes, weight) entries: sort by
    (score, address), return the first score whose cumulative weight x 2 >= the total
    weight. Weights must be >= 0 with a positive total (else ValueError).

    Whoever holds less than half the total weight cannot pull it outside the range
    of the other scores (tests/property/test_tiqe_median.py)."""
    total = sum(w for _, _, w in entries)
    if total <= 0 or any(w < 0 for _, _, w in entries):
        raise ValueError("weighted_median needs non-negative weights with a positive total")
    cum = 0
    for score, _addr, w in sorted(entries, key=lambda e: (e[0], e[1])):
        cum += w
        if 2 * cum >= total:
            return score
    raise AssertionError("unreachable: the cumulative weight reaches the total")


def has_quorum(revealed_weight: int, committee_weight: int, revealed: int, members: int, quorum_ppm: int) -> bool:
    """A round's reveals suffice for a verdict: at least one reveal, and the revealed weight is
    at least quorum_ppm of the committee's (revealed x 10^6 >= quorum x committee; exact in
    integers). A committee whose every weight is 0 counts members instead."""
    if revealed == 0:
        return False
    if committee_weight <= 0:
        revealed_weight, committee_weight = revealed, members
    return revealed_weight * PPM >= quorum_ppm * committee_weight


def rating_deviation(quality_dev: int, fidelity_dev: int) -> int:
    """The one deviation a scored round adds to a member's rating window: whichever of its
    quality deviation and fidelity deviation has the larger magnitude (the quality one on a
    tie), with its sign. Deviating on either number costs rating; agreeing on one does not
    hide a deviation on the other."""
    return fidelity_dev if abs(fidelity_dev) > abs(quality_dev) else quality_dev


def rating_of(deviations: Sequence[int], current_ppm: int, min_rating_ppm: int) -> int:
    """Fortytwo eq. 4-5 over the window: with N >= 2 deviations, sigma = isqrt(sum d^2 //
    (N - 1)) (both floors) and rating = max(min_rating, 10^6 - sigma); N < 2 keeps the
    current rating."""
    n = len(deviations)
    if n < 2:
        return current_ppm
    sigma = math.isqrt(sum(d * d for d in deviations) // (n - 1))
    return max(min_rating_ppm, PPM - sigma)


def ema_update(ema_ppm: int, value_ppm: int, alpha_ppm: int) -> int:
    """ema + alpha x (v - ema) // 10^6 (floor, toward -infinity): the worker's quality EMA (v =
    the round's quality) and its fidelity EMA (v = the round's fidelity). With alpha <= 10^6 the
    result lies between ema and v, so it stays in 0..10^6."""
    return ema_ppm + alpha_ppm * (value_ppm - ema_ppm) // PPM
