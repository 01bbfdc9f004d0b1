"""staking genesis: validate, init and export mirror each other; export -> import -> export is identity."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from polylink.staking.v1 import genesis_pb2, types_pb2

from chain.core.codec import encode, to_json
from chain.core.errors import ChainError
from chain.modules.staking import genesis
from chain.modules.staking.keeper import cons_address
from tests.unit.staking_env import Env, addr, make_params, pubkey

POLY = 1_000_000
NAMES = ["a", "b", "c", "d", "x", "y"]


def rich_state() -> Env:
    """Validators in every status, delegations, unbonding and redelegation entries, a slash."""
    e = Env({addr(n): 100 * POLY for n in NAMES}, make_params(max_validators=2, unbonding_blocks=6))
    e.create("a", 10 * POLY)
    e.create("b", 8 * POLY, commission_ppm=200_000)
    e.create("c", 3 * POLY)
    e.create("d", 2 * POLY, min_self=2 * POLY)
    e.end_block()
    e.run(lambda ctx: e.k.delegate(ctx, addr("x"), addr("a"), 5 * POLY))
    e.run(lambda ctx: e.k.delegate(ctx, addr("y"), addr("b"), 7 * POLY))
    e.run(lambda ctx: e.k.undelegate(ctx, addr("x"), addr("a"), POLY))
    e.run(lambda ctx: e.k.redelegate(ctx, addr("y"), addr("b"), addr("c"), 2 * POLY))
    e.run(lambda ctx: e.k.jail(ctx, cons_address(pubkey("b"))))  # b: bonded -> unbonding
    e.end_block()
    e.run(lambda ctx: e.k.slash(ctx, cons_address(pubkey("a")), ctx.height - 1, 14, 10_000))
    e.run(lambda ctx: e.k.undelegate(ctx, addr("d"), addr("d"), 1))  # d jailed: below min self delegation
    e.end_block()
    assert e.invariants() == []
    statuses = {v.moniker: v.status for v in e.k.validators(e.ctx())}
    assert set(statuses.values()) == {types_pb2.BONDED, types_pb2.UNBONDING, types_pb2.UNBONDED}
    return e


def test_export_import_export_round_trip() -> None:
    e = rich_state()
    auth_gs, bank_gs, gs = e.export()
    assert gs.validators and gs.delegations and gs.unbonding_delegations and gs.redelegations
    assert gs.last_validator_powers
    genesis.validate_genesis(gs)
    e2, initial_set = Env.from_genesis(auth_gs, bank_gs, gs, e.height - 1)
    # the genesis validator set is the whole bonded set, not a diff against the imported powers
    assert {u.pub_key: u.power for u in initial_set} == {
        bytes(e.validator(op).consensus_pubkey): p for op, p in e.k.last_powers(e.ctx()).items()
    }
    assert e2.invariants() == []
    assert [encode(m) for m in e2.export()] == [encode(m) for m in (auth_gs, bank_gs, gs)]
    # both chains go on identically: maturing entries pay out and the unbonding validator leaves
    for _ in range(8):
        assert e.end_block() == e2.end_block()
        assert e.store.items() == e2.store.items()
    assert e.k.all_unbonding_delegations(e.ctx()) == []


def test_json_round_trip_through_the_module() -> None:
    e = rich_state()
    gs = e.export()[2]
    again = e.module.genesis_from_json(to_json(gs))
    assert encode(again) == encode(gs)


def test_default_genesis_is_valid_and_empty() -> None:
    gs = genesis.default_genesis()
    genesis.validate_genesis(gs)
    e = Env({}, gs.params)
    assert e.genesis_end_block() == []
    assert e.invariants() == []


def _broken(change: Callable[[genesis_pb2.GenesisState], None]) -> genesis_pb2.GenesisState:
    gs = genesis_pb2.GenesisState()
    gs.CopyFrom(rich_state().export()[2])
    change(gs)
    return gs


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda g: g.validators.append(g.validators[0]), "duplicate validator"),
        (lambda g: setattr(g.validators[0], "consensus_pubkey", b"x"), "consensus_pubkey"),
        (lambda g: setattr(g.validators[1], "consensus_pubkey", g.validators[0].consensus_pubkey), "used twice"),
        (lambda g: setattr(g.validators[0], "delegator_shares", "1"), "delegator_shares"),
        (lambda g: setattr(g.validators[0], "tokens", "-1"), "non-negative"),
        (lambda g: setattr(g.validators[0], "status", types_pb2.UNSPECIFIED), "status unset"),
        (lambda g: setattr(g.validators[0], "commission_ppm", 1_000_001), "commission"),
        (lambda g: g.last_validator_powers.pop(), "last validator powers differ"),
        (lambda g: setattr(g.params, "max_validators", 0), "max_validators"),
        (lambda g: g.delegations.append(g.delegations[0]), "duplicate delegation"),
        (lambda g: setattr(g.unbonding_delegations[0].entries[0], "balance", "999999999999"), "bad entry"),
        (lambda g: setattr(g.redelegations[0], "dst_validator", g.redelegations[0].src_validator), "bad validators"),
    ],
)
def test_validate_genesis_rejects(change: Callable[[genesis_pb2.GenesisState], None], why: str) -> None:
    with pytest.raises(ChainError, match=why):
        genesis.validate_genesis(_broken(change))


def test_init_checks_pools_against_bank() -> None:
    e = rich_state()
    auth_gs, bank_gs, gs = e.export()
    gs.validators[0].tokens = str(int(gs.validators[0].tokens) + 1)  # state and coins disagree
    with pytest.raises(ChainError, match="pool holds"):
        Env.from_genesis(auth_gs, bank_gs, gs, e.height - 1)
