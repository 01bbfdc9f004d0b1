"""staking end_block: the bonded set (top N, ties, jail, power 0) and the updates sent to CometBFT."""

from __future__ import annotations

from polylink.staking.v1 import types_pb2

from chain.core.address import from_bech32
from chain.core.consensus import ValidatorUpdate
from chain.modules.staking.keeper import cons_address
from tests.unit.staking_env import Env, addr, make_params, pubkey

POLY = 1_000_000
NAMES = ["a", "b", "c", "d"]


def env(**params: int) -> Env:
    return Env({addr(n): 100 * POLY for n in [*NAMES, "x"]}, make_params(**params))


def ups(us: list[ValidatorUpdate]) -> dict[str, int]:
    by_pk = {pubkey(n): n for n in NAMES}
    return {by_pk[u.pub_key]: u.power for u in us}


def status(e: Env, name: str) -> int:
    return e.validator(addr(name)).status


def test_top_n_by_power_and_changes() -> None:
    e = env(max_validators=2, unbonding_blocks=3)
    e.create("a", 5 * POLY)
    e.create("b", 10 * POLY)
    e.create("c", 7 * POLY)
    assert ups(e.end_block()) == {"b": 10, "c": 7}
    assert [status(e, n) for n in "abc"] == [types_pb2.UNBONDED, types_pb2.BONDED, types_pb2.BONDED]
    assert (e.bonded_pool(), e.not_bonded_pool()) == (17 * POLY, 5 * POLY)
    assert e.invariants() == []
    assert e.end_block() == []  # nothing changed: nothing to tell CometBFT
    # a rises above c: a enters, c leaves (power 0)
    e.run(lambda ctx: e.k.delegate(ctx, addr("x"), addr("a"), 3 * POLY))
    assert ups(e.end_block()) == {"a": 8, "c": 0}
    assert status(e, "c") == types_pb2.UNBONDING
    assert (e.bonded_pool(), e.not_bonded_pool()) == (18 * POLY, 7 * POLY)
    assert e.k.last_powers(e.ctx()) == {addr("a"): 8, addr("b"): 10}
    assert e.invariants() == []
    # a power change of a bonded validator is one update
    e.run(lambda ctx: e.k.delegate(ctx, addr("x"), addr("b"), POLY))
    assert ups(e.end_block()) == {"b": 11}
    ctx = e.ctx()
    assert [v.moniker for v in e.k.bonded_validators(ctx)] == ["b", "a"]
    assert e.k.total_bonded_tokens(ctx) == 19 * POLY == e.bonded_pool()


def test_ties_go_to_the_lower_consensus_address() -> None:
    e = env(max_validators=1)
    e.create("a", 10 * POLY)
    e.create("b", 10 * POLY)
    winner = min("ab", key=lambda n: cons_address(pubkey(n)))
    assert ups(e.end_block()) == {winner: 10}
    assert e.invariants() == []


def test_jail_removes_and_unjail_restores() -> None:
    e = env()
    e.create("a", 10 * POLY)
    e.create("b", 4 * POLY)
    e.end_block()
    ca = cons_address(pubkey("a"))
    e.run(lambda ctx: e.k.jail(ctx, ca))
    assert e.validator(addr("a")).jailed
    assert e.invariants(mid_block=True) == []
    assert ups(e.end_block()) == {"a": 0}
    assert status(e, "a") == types_pb2.UNBONDING
    assert (e.bonded_pool(), e.not_bonded_pool()) == (4 * POLY, 10 * POLY)
    assert e.invariants() == []
    e.run(lambda ctx: e.k.unjail(ctx, ca))
    assert ups(e.end_block()) == {"a": 10}
    assert status(e, "a") == types_pb2.BONDED
    assert e.invariants() == []


def test_power_below_one_is_never_bonded_and_drops_out() -> None:
    e = env()
    e.create("a", POLY - 1)  # power 0
    e.create("b", POLY)  # power 1
    assert ups(e.end_block()) == {"b": 1}
    assert status(e, "a") == types_pb2.UNBONDED
    e.run(lambda ctx: e.k.undelegate(ctx, addr("b"), addr("b"), 1))  # 0.999999 POLY left
    assert ups(e.end_block()) == {"b": 0}
    assert e.k.last_powers(e.ctx()) == {}
    assert e.invariants() == []


def test_unbonding_validator_matures_or_rebonds() -> None:
    e = env(unbonding_blocks=3)
    e.create("a", 10 * POLY)
    e.end_block()
    e.run(lambda ctx: e.k.jail(ctx, cons_address(pubkey("a"))))
    h = e.height
    e.end_block()
    v = e.validator(addr("a"))
    assert (v.status, v.unbonding_completion_height) == (types_pb2.UNBONDING, h + 3)
    while e.height < h + 3:
        e.end_block()
        assert status(e, "a") == types_pb2.UNBONDING
    e.end_block()
    v = e.validator(addr("a"))
    assert (v.status, v.unbonding_completion_height) == (types_pb2.UNBONDED, 0)
    assert e.invariants() == []
    # jailed again and unjailed before maturing: the old queue entry must not unbond it later
    e.run(lambda ctx: e.k.unjail(ctx, cons_address(pubkey("a"))))
    e.end_block()
    e.run(lambda ctx: e.k.jail(ctx, cons_address(pubkey("a"))))
    e.end_block()
    e.run(lambda ctx: e.k.unjail(ctx, cons_address(pubkey("a"))))
    assert ups(e.end_block()) == {"a": 10}
    for _ in range(5):
        assert e.end_block() == []
        assert status(e, "a") == types_pb2.BONDED
    assert e.invariants() == []


def test_genesis_end_block_reports_the_whole_set() -> None:
    e = env()
    e.create("a", 10 * POLY)
    e.create("b", 3 * POLY)
    assert ups(e.genesis_end_block()) == {"a": 10, "b": 3}
    # as if imported with last powers already stored: still the whole set, no zero powers
    e.run(lambda ctx: e.k.jail(ctx, cons_address(pubkey("b"))))
    assert ups(e.genesis_end_block()) == {"a": 10}
    assert e.k.last_powers(e.ctx()) == {addr("a"): 10}


def test_updates_are_ordered_deterministically() -> None:
    e = env()
    for i, n in enumerate(NAMES):
        e.create(n, (i + 1) * POLY)
    first = e.end_block()
    assert sorted(ups(first).items()) == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    order = [from_bech32(addr(n)) for n in sorted(NAMES, key=lambda n: from_bech32(addr(n)))]
    assert [from_bech32(addr({pubkey(n): n for n in NAMES}[u.pub_key])) for u in first] == order
