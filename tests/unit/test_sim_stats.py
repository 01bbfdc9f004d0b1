"""sim.stats: ranks with ties, Spearman's rho against hand-computed cases, mean and spread."""

from __future__ import annotations

import math

import pytest

from sim.stats import Spread, average_ranks, pearson, spearman


def test_average_ranks_share_ties() -> None:
    assert average_ranks([10, 30, 20]) == [1.0, 3.0, 2.0]
    assert average_ranks([5, 1, 5, 3]) == [3.5, 1.0, 3.5, 2.0]
    assert average_ranks([7, 7, 7]) == [2.0, 2.0, 2.0]


def test_spearman_without_ties_is_one_minus_six_d_squared() -> None:
    # ranks x: 1 2 3 4 5, ranks y: 2 1 4 3 5 -> sum d^2 = 4, rho = 1 - 6*4 / (5*24) = 0.8
    xs = [1.0, 2.0, 3.0, 4.0, 5.0]
    ys = [20.0, 10.0, 40.0, 30.0, 50.0]
    assert spearman(xs, ys) == pytest.approx(0.8)
    assert spearman(xs, xs) == pytest.approx(1.0)
    assert spearman(xs, [-y for y in xs]) == pytest.approx(-1.0)
    # rank-based: any increasing transform leaves it alone
    assert spearman([math.exp(x) for x in xs], ys) == pytest.approx(0.8)


def test_spearman_with_ties_is_pearson_of_average_ranks() -> None:
    # x ranks 1 2 3 4; y = [1, 2, 2, 3] ranks 1 2.5 2.5 4:
    # centred x = -1.5 -.5 .5 1.5, centred y = -1.5 0 0 1.5 -> sxy = 4.5, sxx = 5, syy = 4.5
    rho = spearman([1, 2, 3, 4], [1, 2, 2, 3])
    assert rho == pytest.approx(4.5 / math.sqrt(5 * 4.5))
    assert rho == pytest.approx(pearson([1, 2, 3, 4], [1, 2.5, 2.5, 4]))


def test_a_constant_side_has_no_correlation() -> None:
    assert spearman([1, 2, 3], [5, 5, 5]) == 0.0
    with pytest.raises(ValueError):
        spearman([1], [1])


def test_spread() -> None:
    s = Spread.of([0.5, 0.7, 0.9])
    assert (s.mean, s.lo, s.hi, s.n) == (pytest.approx(0.7), 0.5, 0.9, 3)
    assert s.sd == pytest.approx(0.2)
    assert str(s) == "0.70 ± 0.20 [0.50, 0.90] (n=3)"
    assert Spread.of([0.4]).sd == 0.0
