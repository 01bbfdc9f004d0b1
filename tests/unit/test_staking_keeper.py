"""staking keeper: create, delegate, undelegate, redelegate; share math and pools."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polylink.staking.v1 import types_pb2

from chain.core.errors import ChainError, ErrorKind
from chain.modules.staking import errors
from chain.modules.staking.keeper import StakingKeeper, cons_address
from tests.unit.staking_env import Env, addr, make_params, pubkey

POLY = 1_000_000
A, B, C = addr("a"), addr("b"), addr("c")


def env(**params: int) -> Env:
    return Env({A: 100 * POLY, B: 100 * POLY, C: 100 * POLY}, make_params(**params))


def fails(e: object, kind: ErrorKind) -> bool:
    return isinstance(e, ChainError) and e.kind is kind


def test_create_validator_pays_self_bond_into_not_bonded_pool() -> None:
    e = env()
    v = e.create("a", 10 * POLY, commission_ppm=50_000, min_self=POLY)
    assert (v.tokens, v.delegator_shares) == (str(10 * POLY), str(10 * POLY * 10**6))
    assert v.status == types_pb2.UNBONDED and not v.jailed
    assert e.balance(A) == 90 * POLY
    assert (e.not_bonded_pool(), e.bonded_pool()) == (10 * POLY, 0)
    d = e.k.get_delegation(e.ctx(), A, A)
    assert d is not None and d.shares == v.delegator_shares
    assert e.invariants() == []
    # it bonds at the end of the block
    (u,) = e.end_block()
    assert (u.pub_key, u.power) == (pubkey("a"), 10)
    assert e.validator(A).status == types_pb2.BONDED
    assert (e.not_bonded_pool(), e.bonded_pool()) == (0, 10 * POLY)
    assert e.invariants() == []


def test_create_validator_errors() -> None:
    e = env()
    e.create("a", POLY)
    assert fails(e.try_run(lambda ctx: e.k.create_validator(ctx, A, pubkey("x"), POLY, 0, "a", 1)),
                 errors.ErrValidatorExists)
    assert fails(e.try_run(lambda ctx: e.k.create_validator(ctx, B, pubkey("a"), POLY, 0, "b", 1)),
                 errors.ErrPubKeyTaken)
    assert fails(e.try_run(lambda ctx: e.k.create_validator(ctx, B, b"short", POLY, 0, "b", 1)),
                 errors.ErrInvalidConsPubKey)
    # cannot pay: bank's error, nothing written
    r = e.try_run(lambda ctx: e.k.create_validator(ctx, B, pubkey("b"), 1000 * POLY, 0, "b", 1))
    assert isinstance(r, ChainError) and r.codespace == "bank"
    assert e.k.get_validator(e.ctx(), B) is None
    assert e.k.validator_by_cons_addr(e.ctx(), cons_address(pubkey("b"))) is None


def test_delegate_share_math() -> None:
    e = env()
    e.create("a", 3)  # 3 upoly -> 3_000_000 shares
    v = e.validator(A)
    assert (int(v.tokens), int(v.delegator_shares)) == (3, 3 * 10**6)
    shares = e.run(lambda ctx: e.k.delegate(ctx, B, A, 7))
    assert shares == 7 * 3 * 10**6 // 3 == 7 * 10**6
    # make the rate uneven: burn 1 of the validator's 10 tokens
    e.run(lambda ctx: e.k.slash(ctx, cons_address(pubkey("a")), ctx.height, 1, 100_000))  # 1*1e6*0.1 = 100_000
    v = e.validator(A)
    assert int(v.tokens) == 0  # 100_000 >= 10 tokens: everything burned
    # shares but no tokens: further delegation refused
    assert fails(e.try_run(lambda ctx: e.k.delegate(ctx, C, A, 5)), errors.ErrInvalidExchangeRate)


def test_delegate_rounds_down_for_the_validator() -> None:
    e = env(power_reduction=1)
    e.create("a", 10)
    # slash 1 of 10 tokens (power 10 * 1 * 100_000 ppm = 1)
    e.end_block()
    burned = e.run(lambda ctx: e.k.slash(ctx, cons_address(pubkey("a")), ctx.height, 10, 100_000))
    assert burned == 1
    v = e.validator(A)
    assert (int(v.tokens), int(v.delegator_shares)) == (9, 10 * 10**6)
    shares = e.run(lambda ctx: e.k.delegate(ctx, B, A, 5))
    assert shares == 5 * 10 * 10**6 // 9 == 5_555_555  # floor
    v = e.validator(A)
    # what B can take out is floor(shares * tokens / total): never more than it paid
    assert StakingKeeper.tokens_from_shares(v, shares) == 5_555_555 * 14 // 15_555_555 == 4
    assert e.invariants(mid_block=True) == []
    e.end_block()
    assert e.invariants() == []


def test_undelegate_pays_only_after_unbonding_blocks() -> None:
    e = env(unbonding_blocks=3)
    e.create("a", 10 * POLY)
    e.run(lambda ctx: e.k.delegate(ctx, B, A, 5 * POLY))
    e.end_block()  # h1: bonded
    assert e.bonded_pool() == 15 * POLY
    h = e.height
    completion, tokens = e.run(lambda ctx: e.k.undelegate(ctx, B, A, 2 * POLY))
    assert (completion, tokens) == (h + 3, 2 * POLY)
    assert (e.bonded_pool(), e.not_bonded_pool()) == (13 * POLY, 2 * POLY)
    assert e.invariants(mid_block=True) == []
    for _ in range(3):
        e.end_block()
        assert e.balance(B) == 95 * POLY
    assert e.height == completion
    e.end_block()  # the completion height's end_block pays out
    assert e.balance(B) == 97 * POLY
    assert e.not_bonded_pool() == 0
    assert e.k.get_unbonding_delegation(e.ctx(), B, A) is None
    assert e.invariants() == []
    assert any(getattr(ev, "type", "") == "complete_unbonding" for ev in e.events)


def test_undelegate_errors_and_max_entries() -> None:
    e = env(max_entries=2)
    e.create("a", 10 * POLY)
    e.run(lambda ctx: e.k.delegate(ctx, B, A, 5 * POLY))
    assert fails(e.try_run(lambda ctx: e.k.undelegate(ctx, B, A, 6 * POLY)), errors.ErrInsufficientDelegation)
    assert fails(e.try_run(lambda ctx: e.k.undelegate(ctx, C, A, 1)), errors.ErrNoDelegation)
    assert fails(e.try_run(lambda ctx: e.k.undelegate(ctx, B, C, 1)), errors.ErrNoValidator)
    assert fails(e.try_run(lambda ctx: e.k.undelegate(ctx, B, A, 0)), errors.ErrInvalidAmount)
    e.run(lambda ctx: e.k.undelegate(ctx, B, A, 1))
    e.run(lambda ctx: e.k.undelegate(ctx, B, A, 1))  # same height: merged into one entry
    ubd = e.k.get_unbonding_delegation(e.ctx(), B, A)
    assert ubd is not None and len(ubd.entries) == 1 and ubd.entries[0].balance == "2"
    e.end_block()
    e.run(lambda ctx: e.k.undelegate(ctx, B, A, 1))
    e.end_block()
    assert fails(e.try_run(lambda ctx: e.k.undelegate(ctx, B, A, 1)), errors.ErrMaxEntries)
    # the amount is checked before the entry count (as the SDK's msg server does)
    assert fails(e.try_run(lambda ctx: e.k.undelegate(ctx, B, A, 6 * POLY)), errors.ErrInsufficientDelegation)


def test_undelegate_everything_removes_the_delegation() -> None:
    e = env()
    e.create("a", 10 * POLY)
    e.run(lambda ctx: e.k.delegate(ctx, B, A, 5 * POLY))
    e.run(lambda ctx: e.k.undelegate(ctx, B, A, 5 * POLY))
    assert e.k.get_delegation(e.ctx(), B, A) is None
    assert [d.delegator for d in e.k.delegations_to(e.ctx(), A)] == [A]
    assert e.invariants(mid_block=True) == []


def test_undelegate_after_uneven_rate_leaves_no_worthless_shares() -> None:
    e = env(power_reduction=1)
    e.create("a", 10)
    e.run(lambda ctx: e.k.delegate(ctx, B, A, 10))
    e.end_block()
    e.run(lambda ctx: e.k.slash(ctx, cons_address(pubkey("a")), ctx.height, 20, 150_000))  # burns 3
    v = e.validator(A)
    assert int(v.tokens) == 17
    d = e.k.get_delegation(e.ctx(), B, A)
    assert d is not None
    worth = StakingKeeper.tokens_from_shares(v, int(d.shares))
    assert worth == 8  # 10e6 * 17 // 20e6
    _, paid = e.run(lambda ctx: e.k.undelegate(ctx, B, A, worth))
    assert paid == 8
    assert e.k.get_delegation(e.ctx(), B, A) is None  # no dust shares left behind
    v = e.validator(A)
    assert int(v.tokens) == 9  # 17 - 8: the dust (0.5 token) stays with the validator
    assert e.invariants(mid_block=True) == []
    e.end_block()
    assert e.invariants() == []


def test_self_delegation_below_min_jails() -> None:
    e = env()
    e.create("a", 10 * POLY, min_self=8 * POLY)
    (u,) = e.end_block()
    assert u.power == 10
    e.run(lambda ctx: e.k.undelegate(ctx, A, A, 2 * POLY))  # 8 left: still fine
    assert not e.validator(A).jailed
    e.run(lambda ctx: e.k.undelegate(ctx, A, A, 1))  # below 8 POLY
    assert e.validator(A).jailed
    (u,) = e.end_block()
    assert (u.pub_key, u.power) == (pubkey("a"), 0)
    assert e.validator(A).status == types_pb2.UNBONDING
    assert e.invariants() == []


def test_redelegate_moves_stake_and_records_entry() -> None:
    e = env(unbonding_blocks=4, max_validators=1)
    e.create("a", 10 * POLY)
    e.create("b", 5 * POLY)
    e.run(lambda ctx: e.k.delegate(ctx, C, A, 3 * POLY))
    ups = e.end_block()
    assert [(u.pub_key, u.power) for u in ups] == [(pubkey("a"), 13)]  # only the top one is bonded
    assert (e.bonded_pool(), e.not_bonded_pool()) == (13 * POLY, 5 * POLY)
    h = e.height
    completion, tokens = e.run(lambda ctx: e.k.redelegate(ctx, C, A, B, 2 * POLY))
    assert (completion, tokens) == (h + 4, 2 * POLY)
    # bonded -> not bonded validator: the coins follow
    assert (e.bonded_pool(), e.not_bonded_pool()) == (11 * POLY, 7 * POLY)
    d = e.k.get_delegation(e.ctx(), C, B)
    assert d is not None and int(d.shares) == 2 * POLY * 10**6
    red = e.k.get_redelegation(e.ctx(), C, A, B)
    assert red is not None and red.entries[0].shares_dst == d.shares and red.entries[0].initial_balance == str(2 * POLY)
    # no hopping on from B while the stake is still slashable for A
    assert fails(e.try_run(lambda ctx: e.k.redelegate(ctx, C, B, A, POLY)), errors.ErrTransitiveRedelegation)
    assert fails(e.try_run(lambda ctx: e.k.redelegate(ctx, C, A, A, POLY)), errors.ErrSelfRedelegation)
    assert e.invariants(mid_block=True) == []
    while e.height <= completion:
        e.end_block()
    assert e.k.get_redelegation(e.ctx(), C, A, B) is None
    e.run(lambda ctx: e.k.redelegate(ctx, C, B, A, POLY))  # allowed now; B is not bonded: no record
    assert e.k.get_redelegation(e.ctx(), C, B, A) is None
    assert e.invariants(mid_block=True) == []


def test_redelegate_max_entries() -> None:
    e = env(max_entries=1)
    e.create("a", 10 * POLY)
    e.create("b", 10 * POLY)
    e.run(lambda ctx: e.k.delegate(ctx, C, A, 3 * POLY))
    e.end_block()
    e.run(lambda ctx: e.k.redelegate(ctx, C, A, B, POLY))
    e.run(lambda ctx: e.k.redelegate(ctx, C, A, B, POLY))  # same height: merged
    e.end_block()
    assert fails(e.try_run(lambda ctx: e.k.redelegate(ctx, C, A, B, POLY)), errors.ErrMaxEntries)
    assert fails(e.try_run(lambda ctx: e.k.redelegate(ctx, C, A, B, 4 * POLY)), errors.ErrInsufficientDelegation)


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.integers(1, 10**30),
    shares=st.integers(1, 10**40),
    amount=st.integers(1, 10**30),
)
def test_share_round_trip_never_pays_more_than_paid_in(tokens: int, shares: int, amount: int) -> None:
    v = types_pb2.Validator(tokens=str(tokens), delegator_shares=str(shares))
    issued = StakingKeeper.shares_from_tokens(v, amount)
    assert issued == amount * shares // tokens
    after = types_pb2.Validator(tokens=str(tokens + amount), delegator_shares=str(shares + issued))
    assert StakingKeeper.tokens_from_shares(after, issued) <= amount


def test_first_delegation_gets_a_million_shares_per_token() -> None:
    v = types_pb2.Validator(tokens="0", delegator_shares="0")
    assert StakingKeeper.shares_from_tokens(v, 7) == 7_000_000
    # dust tokens left behind with no shares go to the next first delegator
    v = types_pb2.Validator(tokens="3", delegator_shares="0")
    assert StakingKeeper.shares_from_tokens(v, 7) == 7_000_000


@pytest.mark.parametrize("amount", [1, 2, 3, 999_999, 10**6])
def test_undelegate_amount_is_paid_exactly_at_the_initial_rate(amount: int) -> None:
    e = env()
    e.create("a", 10 * POLY)
    e.run(lambda ctx: e.k.delegate(ctx, B, A, 5 * POLY))
    _, paid = e.run(lambda ctx: e.k.undelegate(ctx, B, A, amount))
    assert paid == amount
