"""The pure arithmetic of a TIQE verdict: weighted median (ties, equal weights), integer-sqrt
ratings with the min floor, the rating's deviation of a two-number score, the worker's EMAs, and the
score commitment (quality and fidelity sealed together)."""

from __future__ import annotations

import hashlib
import math

import pytest

from chain.modules.tiqe.aggregate import ema_update, has_quorum, rating_deviation, rating_of, weighted_median
from chain.modules.tiqe.keeper import score_commitment

A, B, C, D = (bytes([i]) * 20 for i in range(1, 5))


def test_weighted_median_with_equal_weights_is_the_lower_median() -> None:
    assert weighted_median([(300, A, 1), (100, B, 1), (200, C, 1)]) == 200
    # an even count: the first score whose cumulative weight reaches half (the lower median)
    assert weighted_median([(400, A, 5), (100, B, 5), (300, C, 5), (200, D, 5)]) == 200
    assert weighted_median([(7, A, 3)]) == 7


def test_weighted_median_follows_the_weight() -> None:
    # 100 holds 60% of the weight: it is the median whoever else scores what
    assert weighted_median([(100, A, 6), (900, B, 2), (1000, C, 2)]) == 100
    # exactly half the weight at or below 100 is enough (cum x 2 >= total)
    assert weighted_median([(100, A, 5), (900, B, 5)]) == 100
    assert weighted_median([(100, A, 4), (900, B, 6)]) == 900
    # zero weights count for nothing, but a zero-weight entry is allowed
    assert weighted_median([(0, A, 0), (500, B, 1)]) == 500


def test_weighted_median_ties_sort_by_address_and_give_the_same_score() -> None:
    entries = [(500, C, 1), (500, A, 1), (500, B, 1), (100, D, 1)]
    assert weighted_median(entries) == 500
    assert weighted_median(list(reversed(entries))) == 500  # input order does not matter


def test_weighted_median_needs_a_positive_total() -> None:
    with pytest.raises(ValueError):
        weighted_median([])
    with pytest.raises(ValueError):
        weighted_median([(1, A, 0)])
    with pytest.raises(ValueError):
        weighted_median([(1, A, -1), (2, B, 5)])


def test_quorum_needs_two_thirds_of_the_committee_weight_revealed() -> None:
    q = 666_667
    # three equal members: two reveals are exactly 2/3, short of the quorum; three are enough
    assert not has_quorum(2, 3, 2, 3, q)
    assert has_quorum(3, 3, 3, 3, q)
    # by weight, not by head count: two of three members holding 80% suffice
    assert has_quorum(40, 50, 2, 3, q)
    assert not has_quorum(666_666, 1_000_000, 2, 3, q)
    assert has_quorum(666_667, 1_000_000, 2, 3, q)
    # no reveal is never a verdict, whatever the threshold
    assert not has_quorum(0, 10, 0, 3, 0)
    assert has_quorum(1, 10, 1, 3, 0)
    # every weight 0 (all stake slashed away): members count instead
    assert has_quorum(0, 0, 3, 3, q) and not has_quorum(0, 0, 2, 3, q)


def test_rating_is_one_minus_the_sample_deviation_by_integer_sqrt() -> None:
    # sum d^2 = 2 x 100_000^2, N - 1 = 1 -> sigma = isqrt(2e10) = 141421
    assert rating_of([100_000, -100_000], 500_000, 50_000) == 1_000_000 - 141_421
    devs = [3, -7, 11, 0, 250_000]
    sigma = math.isqrt(sum(d * d for d in devs) // 4)
    assert rating_of(devs, 1, 50_000) == 1_000_000 - sigma
    assert rating_of([0, 0, 0], 500_000, 50_000) == 1_000_000  # always on the median: perfect


def test_rating_keeps_the_current_value_below_two_deviations_and_floors_at_min() -> None:
    assert rating_of([], 420_000, 50_000) == 420_000
    assert rating_of([999_999], 420_000, 50_000) == 420_000
    # deviations of a full 10^6 give sigma > 10^6: the floor holds
    assert rating_of([1_000_000, -1_000_000], 500_000, 50_000) == 50_000


def test_ema_moves_alpha_of_the_way_rounding_down() -> None:
    assert ema_update(500_000, 1_000_000, 200_000) == 600_000
    assert ema_update(500_000, 0, 200_000) == 400_000
    assert ema_update(500_000, 500_001, 200_000) == 500_000  # 0.2 floored
    assert ema_update(500_000, 499_999, 200_000) == 499_999  # -0.2 floored toward -infinity
    assert ema_update(123, 456, 1_000_000) == 456  # alpha 1: the new quality
    assert ema_update(123, 456, 0) == 123


def test_rating_deviation_is_the_larger_magnitude_signed_quality_on_a_tie() -> None:
    assert rating_deviation(60_000, 50_000) == 60_000
    assert rating_deviation(10_000, -300_000) == -300_000  # on quality, off on fidelity: still costs
    assert rating_deviation(-400_000, 100_000) == -400_000
    assert rating_deviation(0, 0) == 0
    assert rating_deviation(-7, 7) == -7 and rating_deviation(7, -7) == 7  # a tie: the quality one
    assert rating_deviation(0, 1) == 1


def test_score_commitment_layout() -> None:
    v = "poly1s5vsvyeyhztfrecq6fegnmsrflvpxj06xn8pjj"
    salt = b"\x00\xff"
    want = hashlib.sha256((830_000).to_bytes(8, "big") + (910_000).to_bytes(8, "big") + salt + v.encode()).digest()
    assert score_commitment(830_000, 910_000, salt, v) == want
    # changing either number, swapping them, the salt or the validator breaks it
    assert score_commitment(830_001, 910_000, salt, v) != want
    assert score_commitment(830_000, 910_001, salt, v) != want
    assert score_commitment(910_000, 830_000, salt, v) != want
    assert score_commitment(830_000, 910_000, b"\x00\xfe", v) != want
    assert score_commitment(830_000, 910_000, salt, v[:-1] + "q") != want
