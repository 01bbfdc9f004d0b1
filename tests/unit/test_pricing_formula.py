"""The pricing step of SPEC 3.7 in integers: EIP-1559 steps, their bounds, the floor and the cap."""

from __future__ import annotations

import pytest

from chain.modules.pricing.formula import next_price, target_of


def test_demand_at_the_target_keeps_the_price() -> None:
    assert next_price(1000, 500, 500, 1000, 10**9, 8) == 1000
    assert next_price(4321, 77, 77, 1000, 10**9, 8) == 4321


def test_excess_demand_raises_the_price_in_proportion_up_to_one_eighth() -> None:
    # (600 - 500) / 500 / 8 = 2.5%: 1000 -> 1025
    assert next_price(1000, 600, 500, 1000, 10**9, 8) == 1025
    # twice the target: the full 1/8
    assert next_price(1000, 1000, 500, 1000, 10**9, 8) == 1125
    # any more is bounded by price / 8
    assert next_price(1000, 10**12, 500, 1000, 10**9, 8) == 1125


def test_short_demand_lowers_the_price_rounding_down_to_the_floor() -> None:
    # 2000 x (250 - 500) / (500 x 8) = -125
    assert next_price(2000, 250, 500, 1000, 10**9, 8) == 1875
    # no demand: the full step down, bounded by price // 8
    assert next_price(2000, 0, 500, 1000, 10**9, 8) == 1750
    # 2001 x -500 / 4000 = -250.125 rounds down to -251, bounded to -(2001 // 8) = -250
    assert next_price(2001, 0, 500, 1000, 10**9, 8) == 1751
    # never below the base price
    assert next_price(1100, 0, 500, 1000, 10**9, 8) == 1000
    assert next_price(1000, 0, 500, 1000, 10**9, 8) == 1000


def test_a_small_excess_still_moves_a_small_price_up() -> None:
    # 5 x 1 / 4000 rounds to 0 and 5 // 8 = 0: without the 1-upoly minimum it could never rise
    assert next_price(5, 501, 500, 1, 10**9, 8) == 6


def test_the_cap_holds_and_the_base_wins_over_it() -> None:
    assert next_price(1000, 1000, 500, 100, 1050, 8) == 1050
    assert next_price(1000, 0, 500, 2000, 1500, 8) == 2000  # base above the cap: the floor wins


def test_without_workers_demand_takes_the_full_step_and_silence_keeps_the_price() -> None:
    assert next_price(1000, 10, 0, 1000, 10**9, 8) == 1125
    assert next_price(1300, 0, 0, 1000, 10**9, 8) == 1300
    assert next_price(3, 10, 0, 1, 10**9, 8) == 4  # the minimum step again


def test_target_is_capacity_times_utilisation_rounded_down() -> None:
    assert target_of(1000, 500_000) == 500
    assert target_of(3, 500_000) == 1
    assert target_of(0, 500_000) == 0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        next_price(1000, 1, 1, 1000, 10**9, 0)
    with pytest.raises(ValueError):
        next_price(-1, 1, 1, 1000, 10**9, 8)
