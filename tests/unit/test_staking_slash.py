"""staking slash (validator, unbonding entries, redelegations, caps, pools), jail and split_reward."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polylink.staking.v1 import types_pb2

from chain.core.address import from_bech32
from chain.core.errors import ChainError
from chain.modules.staking import errors
from chain.modules.staking.keeper import cons_address
from tests.unit.staking_env import Env, addr, make_params, pubkey

POLY = 1_000_000
A, B, C, D = addr("a"), addr("b"), addr("c"), addr("d")
CA, CB = cons_address(pubkey("a")), cons_address(pubkey("b"))


def env(**params: int) -> Env:
    return Env({A: 100 * POLY, B: 100 * POLY, C: 100 * POLY, D: 100 * POLY}, make_params(**params))


def slash(e: Env, cons: bytes, infraction: int, power: int, ppm: int) -> int:
    return e.run(lambda ctx: e.k.slash(ctx, cons, infraction, power, ppm))


def test_slash_bonded_validator_burns_from_bonded_pool() -> None:
    e = env()
    e.create("a", 10 * POLY)
    e.end_block()
    supply = e.supply()
    burned = slash(e, CA, e.height - 1, 10, 50_000)
    assert burned == 10 * POLY * 50_000 // 10**6 == 500_000
    assert int(e.validator(A).tokens) == 10 * POLY - 500_000
    assert (e.bonded_pool(), e.not_bonded_pool()) == (10 * POLY - 500_000, 0)
    assert e.supply() == supply - burned
    ev = [x for x in e.events if getattr(x, "type", "") == "slash"][-1]
    assert dict(ev.attributes)["amount"] == "500000"  # type: ignore[attr-defined]
    e.end_block()
    assert e.k.last_powers(e.ctx()) == {A: 9}
    assert e.invariants() == []


def test_slash_uses_power_at_infraction_not_current_tokens() -> None:
    e = env()
    e.create("a", 10 * POLY)
    e.end_block()
    assert slash(e, CA, e.height, 4, 250_000) == 1 * POLY  # 4 POLY * 25%


def test_unbonding_entries_after_the_infraction_pay_first() -> None:
    e = env(unbonding_blocks=10)
    e.create("a", 10 * POLY)
    e.run(lambda ctx: e.k.delegate(ctx, B, A, 10 * POLY))
    e.end_block()
    e.run(lambda ctx: e.k.undelegate(ctx, B, A, 2 * POLY))  # before the infraction: not slashed
    e.end_block()
    infraction = e.height
    e.run(lambda ctx: e.k.undelegate(ctx, B, A, 4 * POLY))  # at the infraction height: slashed
    e.end_block()
    supply, bonded, not_bonded = e.supply(), e.bonded_pool(), e.not_bonded_pool()
    assert (bonded, not_bonded) == (14 * POLY, 6 * POLY)
    # the caller (slashing) gives the power CometBFT had at the infraction: 20
    burned = slash(e, CA, infraction, 20, 100_000)
    assert burned == 2 * POLY  # 20 POLY * 10%
    ubd = e.k.get_unbonding_delegation(e.ctx(), B, A)
    assert ubd is not None
    assert [(x.initial_balance, x.balance) for x in ubd.entries] == [
        (str(2 * POLY), str(2 * POLY)),
        (str(4 * POLY), str(4 * POLY - 400_000)),
    ]
    # 0.4 POLY from the unbonding entry (not bonded pool), the remaining 1.6 POLY from the validator
    assert e.not_bonded_pool() == not_bonded - 400_000
    assert e.bonded_pool() == bonded - 1_600_000
    assert int(e.validator(A).tokens) == 14 * POLY - 1_600_000
    assert e.supply() == supply - burned
    e.end_block()
    assert e.invariants() == []


def test_unbonding_entry_slash_is_capped_at_its_balance() -> None:
    e = env(unbonding_blocks=10)
    e.create("a", 10 * POLY)
    e.run(lambda ctx: e.k.delegate(ctx, B, A, 10 * POLY))
    e.end_block()
    infraction = e.height
    e.run(lambda ctx: e.k.undelegate(ctx, B, A, 10 * POLY))
    e.end_block()
    slash(e, CA, infraction, 20, 600_000)  # entry: 6 of 10 POLY
    slash(e, CA, infraction, 20, 600_000)  # entry: 6 more asked, 4 left: capped
    ubd = e.k.get_unbonding_delegation(e.ctx(), B, A)
    assert ubd is not None and ubd.entries[0].balance == "0"
    # the validator paid 12 - 6 = 6 of its 10, then 12 - 4 = 8 asked of the 4 left: never below zero
    assert e.validator(A).tokens == "0"
    e.end_block()
    assert e.invariants() == []
    while e.k.get_unbonding_delegation(e.ctx(), B, A) is not None:
        e.end_block()
    assert e.balance(B) == 90 * POLY  # nothing left to pay out
    assert e.invariants() == []


def test_matured_entries_are_not_slashed() -> None:
    e = env(unbonding_blocks=2)
    e.create("a", 10 * POLY)
    e.run(lambda ctx: e.k.delegate(ctx, B, A, 10 * POLY))
    e.end_block()
    infraction = e.height
    completion, _ = e.run(lambda ctx: e.k.undelegate(ctx, B, A, 5 * POLY))
    while e.height < completion:
        e.end_block()
    # in the completion block the entry is on its way out: the validator pays everything
    slash(e, CA, infraction, 20, 100_000)
    ubd = e.k.get_unbonding_delegation(e.ctx(), B, A)
    assert ubd is not None and ubd.entries[0].balance == str(5 * POLY)
    assert int(e.validator(A).tokens) == 15 * POLY - 2 * POLY


def test_redelegation_after_the_infraction_is_slashed_at_the_destination() -> None:
    e = env(unbonding_blocks=10, max_validators=1)
    e.create("a", 20 * POLY)
    e.create("b", 5 * POLY)  # not bonded (max_validators 1)
    e.run(lambda ctx: e.k.delegate(ctx, C, A, 10 * POLY))
    e.end_block()
    infraction = e.height
    e.end_block()
    e.run(lambda ctx: e.k.redelegate(ctx, C, A, B, 4 * POLY))
    e.end_block()
    assert (e.bonded_pool(), e.not_bonded_pool()) == (26 * POLY, 9 * POLY)
    supply = e.supply()
    burned = slash(e, CA, infraction, 30, 100_000)  # 3 POLY in all
    assert burned == 3 * POLY
    d = e.k.get_delegation(e.ctx(), C, B)
    assert d is not None and int(d.shares) == 4 * POLY * 10**6 * 9 // 10
    # 0.4 POLY of C's stake at B burned from the not bonded pool (B is not bonded)
    assert e.not_bonded_pool() == 9 * POLY - 400_000
    assert int(e.validator(B).tokens) == 9 * POLY - 400_000
    assert e.bonded_pool() == 26 * POLY - 2_600_000
    assert e.supply() == supply - burned
    e.end_block()
    assert e.invariants() == []


def test_redelegation_slash_capped_at_what_is_left_at_the_destination() -> None:
    e = env(unbonding_blocks=10)
    e.create("a", 20 * POLY)
    e.create("b", 5 * POLY)
    e.run(lambda ctx: e.k.delegate(ctx, C, A, 10 * POLY))
    e.end_block()
    infraction = e.height
    e.run(lambda ctx: e.k.redelegate(ctx, C, A, B, 4 * POLY))
    e.run(lambda ctx: e.k.undelegate(ctx, C, B, 3 * POLY))  # only 1 POLY left at B
    e.end_block()
    burned = slash(e, CA, infraction, 30, 500_000)  # 15 POLY asked; 2 POLY from the redelegation, capped at 1
    assert e.k.get_delegation(e.ctx(), C, B) is None
    assert burned == 15 * POLY
    assert int(e.validator(A).tokens) == 26 * POLY - 14 * POLY
    e.end_block()
    assert e.invariants() == []


def test_slash_unbonding_validator_burns_from_not_bonded_pool() -> None:
    e = env()
    e.create("a", 10 * POLY)
    e.end_block()
    e.run(lambda ctx: e.k.jail(ctx, CA))
    e.end_block()
    assert e.validator(A).status == types_pb2.UNBONDING
    burned = slash(e, CA, e.height - 2, 10, 100_000)
    assert burned == POLY
    assert (e.bonded_pool(), e.not_bonded_pool()) == (0, 9 * POLY)
    e.end_block()
    assert e.invariants() == []


def test_slash_errors_and_unknown_validator() -> None:
    e = env()
    e.create("a", 10 * POLY)
    e.end_block()
    for infraction, ppm in [(e.height + 1, 1), (e.height, 1_000_001), (e.height, -1)]:
        r = e.try_run(lambda ctx, i=infraction, p=ppm: e.k.slash(ctx, CA, i, 10, p))
        assert isinstance(r, ChainError) and r.kind is errors.ErrInvalidSlash
    assert slash(e, b"\x01" * 20, e.height, 10, 100_000) == 0
    assert slash(e, CA, e.height, 10, 0) == 0
    with pytest.raises(ChainError):
        e.run(lambda ctx: e.k.jail(ctx, b"\x01" * 20))


# --- split_reward ------------------------------------------------------------
def test_split_reward_exact() -> None:
    e = env()
    e.create("a", 3 * POLY, commission_ppm=100_000)
    e.run(lambda ctx: e.k.delegate(ctx, B, A, 3 * POLY))
    e.run(lambda ctx: e.k.delegate(ctx, C, A, 1 * POLY))
    commission, parts, rest = e.k.split_reward(e.ctx(), A, 1001)
    assert commission == 100  # 1001 * 10% floor
    # 901 by shares 3:3:1 -> 386.14, 386.14, 128.71 -> floor 386, 386, 128; dust 1
    assert parts == {A: 386, B: 386, C: 128} and rest == 1
    assert commission + sum(parts.values()) + rest == 1001
    assert list(parts) == sorted(parts, key=from_bech32)  # delegator address byte order


@settings(max_examples=100, deadline=None)
@given(
    stakes=st.lists(st.integers(1, 10**12), min_size=1, max_size=5),
    commission=st.integers(0, 1_000_000),
    amount=st.integers(0, 10**20),
)
def test_split_reward_sums_to_amount(stakes: list[int], commission: int, amount: int) -> None:
    names = ["a", "b", "c", "d", "x"][: len(stakes)]
    e = Env({addr(n): 10**13 for n in names}, make_params())
    e.create("a", stakes[0], commission_ppm=commission)
    for n, s in zip(names[1:], stakes[1:], strict=True):
        e.run(lambda ctx, n=n, s=s: e.k.delegate(ctx, addr(n), A, s))
    c, parts, rest = e.k.split_reward(e.ctx(), A, amount)
    assert c == amount * commission // 10**6
    assert c + sum(parts.values()) + rest == amount
    assert 0 <= rest < max(len(stakes), 1)
    assert all(v > 0 for v in parts.values())
