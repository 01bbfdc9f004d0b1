"""Properties of the pricing step (SPEC 3.7) and of price paths on the real modules: every step
is bounded by 1/d of the price (at least 1 upoly up), never leaves [base, cap], moves the way
demand points, and a price path is the same wherever it is computed."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.modules.pricing.formula import next_price
from tests.unit.tiqe_env import MODEL, Env

amounts = st.integers(0, 10**15)
prices = st.integers(1, 10**15)
denominators = st.integers(1, 64)


@given(prices, amounts, amounts, st.integers(1, 10**6), denominators)
def test_a_step_is_bounded_and_stays_between_floor_and_cap(
    price: int, demand: int, target: int, base: int, d: int
) -> None:
    cap = 10**16
    base = min(base, price)
    new = next_price(price, demand, target, base, cap, d)
    assert base <= new <= cap
    assert new - price <= max(price // d, 1)
    assert price - new <= price // d


@given(prices, amounts, st.integers(1, 10**15), denominators)
def test_the_price_moves_the_way_demand_points(price: int, demand: int, target: int, d: int) -> None:
    new = next_price(price, demand, target, 0, 10**16, d)
    if demand > target:
        assert new > price
    elif demand == target:
        assert new == price
    else:
        assert new <= price


@given(prices, amounts, amounts, st.integers(1, 10**15), denominators)
def test_more_demand_never_gives_a_lower_price(price: int, a: int, b: int, target: int, d: int) -> None:
    lo, hi = sorted((a, b))
    assert next_price(price, lo, target, 0, 10**16, d) <= next_price(price, hi, target, 0, 10**16, d)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 12), min_size=1, max_size=12))
def test_price_paths_on_the_real_modules_follow_the_formula_and_keep_the_invariants(
    per_block: list[int],
) -> None:
    """Each block carries n requests of 100 tokens (target 500: one worker of capacity 1000);
    the chain's price path equals the formula's, and a second chain computes the same one."""
    chains = [Env(), Env()]
    expected = 1000
    for n in per_block:
        for e in chains:
            for _ in range(n):
                e.ask(max_tokens=100, max_price=10**12)
            e.end_block()
        expected = next_price(expected, 100 * n, 500, 1000, 10**9, 8)
        a, b = (e.m.pricing.price_of(e.q(), MODEL) for e in chains)
        assert a == b == expected
        assert chains[0].invariants() == []
