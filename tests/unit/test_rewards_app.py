"""rewards inside the real state machine: block emission to bonded validators by power (commission,
then delegators), the supply invariant every block, queries and the genesis round trip."""

from __future__ import annotations

import hashlib
import json

import pytest
from polylink.rewards.v1 import query_pb2, types_pb2

from chain.app.app import PolyLinkApp
from chain.core.errors import ChainError
from chain.modules.rewards.params import validate_params
from tests.unit.test_staking_app import CHAIN, DELEGATOR, OPS, POLY, gentx

REWARD = 1_000_003  # odd on purpose: the rounding dust must land in the community pool


def start(block_reward: int = REWARD) -> PolyLinkApp:
    app = PolyLinkApp(None, invariant_period=1)  # every block asserts every invariant
    balances = [{"address": s.address, "coins": [{"denom": "upoly", "amount": str(100 * POLY)}]}
                for s in [*OPS, DELEGATOR]]  # fmt: skip
    state = {
        "bank": {"balances": balances},
        "rewards": {"params": {"block_reward": str(block_reward)}},
        "genutil": {"gen_txs": [gentx(0, 10), gentx(1, 7), gentx(2, 5)]},
    }
    app.init_chain(CHAIN, json.dumps(state).encode(), 1, 0, -1)
    blocks(app, 1)  # the genesis state is queryable once the first block is committed
    return app


def blocks(app: PolyLinkApp, n: int) -> None:
    for _ in range(n):
        h = app.height + 1
        app.finalize_block(h, h * 10**9, hashlib.sha256(b"%d" % h).digest(), b"", [])
        app.commit()


def balance(app: PolyLinkApp, address: str) -> int:
    return app.m.bank.get_balance(app.query_context(), address, "upoly")


def test_emission_pays_bonded_validators_by_power_and_keeps_supply_accounted() -> None:
    app = start()  # one block: one emission so far
    ctx = app.query_context()
    initial = app.m.rewards.get_initial_supply(ctx)
    assert initial == 4 * 100 * POLY  # the genesis balances
    assert app.m.bank.get_supply(ctx, "upoly") == initial + REWARD
    before = {op.address: balance(app, op.address) for op in OPS}
    pool = app.m.rewards.community_address()
    pool_before = balance(app, pool)
    blocks(app, 5)
    ctx = app.query_context()
    t = app.m.rewards.get_totals(ctx)
    assert int(t.minted) == 6 * REWARD
    assert app.m.bank.get_supply(ctx, "upoly") == initial + 6 * REWARD
    gained = {op.address: balance(app, op.address) - before[op.address] for op in OPS}
    # powers 10 : 7 : 5; each operator is its validator's only delegator, so it gets the whole part
    # (commission 10% to it as operator, the rest to it as delegator)
    parts = [REWARD * p // 22 for p in (10, 7, 5)]
    assert list(gained.values()) == [5 * x for x in parts]
    assert balance(app, pool) - pool_before == 5 * (REWARD - sum(parts))
    assert balance(app, pool) == int(t.emission_to_community)
    assert int(t.emission_to_validators) + int(t.emission_to_community) == int(t.minted)
    assert app.check_invariants() == []


def test_emission_query_and_genesis_round_trip() -> None:
    app = start()
    blocks(app, 3)
    e = app.query("/polylink.rewards.v1.Query/Emission", query_pb2.QueryEmissionRequest().SerializeToString())
    assert isinstance(e, query_pb2.QueryEmissionResponse)
    assert (e.block_reward, e.minted) == (str(REWARD), str(4 * REWARD))
    assert int(e.initial_supply) + int(e.minted) == int(e.total_supply)
    exported = app.export_genesis()
    assert exported["rewards"]["initial_supply"] == e.initial_supply  # type: ignore[index]
    app2 = PolyLinkApp(None)
    app2.init_chain(CHAIN, json.dumps(exported).encode(), app.height + 1, 0, -1)
    t = app2.m.rewards.get_totals(_ctx(app2))
    assert t.minted == str(4 * REWARD)
    assert app2.m.rewards.get_initial_supply(_ctx(app2)) == int(e.initial_supply)


def _ctx(app: PolyLinkApp):  # type: ignore[no-untyped-def]
    from chain.core.context import BlockHeader, Context, ExecMode

    assert app.block is not None
    return Context(app.block, BlockHeader(CHAIN, app.height), ExecMode.QUERY)


def test_no_emission_when_the_reward_is_zero() -> None:
    app = start(block_reward=0)
    blocks(app, 3)
    assert app.m.rewards.get_totals(app.query_context()).minted == "0"
    assert app.check_invariants() == []
    assert app.m.bank.get_supply(app.query_context(), "upoly") == 4 * 100 * POLY


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"worker_share_ppm": 900_000, "validator_share_ppm": 200_000}, "<= 1000000"),
        ({"worker_share_ppm": 1_000_001}, "<= 1000000"),
        ({"block_reward": "-1"}, "whole number"),
        ({"block_reward": "1.5"}, "whole number"),
    ],
)
def test_bad_params_are_refused(params: dict[str, object], why: str) -> None:
    p = types_pb2.Params(worker_share_ppm=700_000, validator_share_ppm=200_000, block_reward="1")
    for k, v in params.items():
        setattr(p, k, v)
    with pytest.raises(ChainError, match=why):
        validate_params(p)
