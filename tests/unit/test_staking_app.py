"""staking inside the real state machine (PolyLinkApp in memory): gentxs at InitChain give the
genesis validator set; txs through ante and the router; validator updates from FinalizeBlock.

Until the app wires staking in itself, `staking_app()` adds the module to a PolyLinkApp the
way chain/app/app.py's `Modules` builds modules (it does nothing once staking is there)."""

from __future__ import annotations

import base64
import hashlib
import json

from polylink.base.v1 import coin_pb2
from polylink.staking.v1 import tx_pb2

from chain.app.app import PolyLinkApp
from chain.app.router import MsgRouter, QueryRouter
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx
from chain.core.apphash import StateAccumulator
from chain.core.store import MemStore
from chain.modules.staking.keeper import StakingKeeper
from chain.modules.staking.module import StakingModule

CHAIN = "staking-app"
POLY = 1_000_000
OPS = [Signer(hashlib.sha256(b"op%d" % i).digest()) for i in range(3)]
DELEGATOR = Signer(hashlib.sha256(b"delegator").digest())
CONS = [hashlib.sha256(b"node%d" % i).digest() for i in range(3)]
GENTX_GAS = 400_000
FEE = 4_000


def staking_app() -> PolyLinkApp:
    app = PolyLinkApp(None)
    if not any(m.name == "staking" for m in app.m.all):
        mod = StakingModule(StakingKeeper(app.m.auth, app.m.bank))
        app.m.all.append(mod)
        app.m.msgs = MsgRouter(app.m.all)
        app.m.queries = QueryRouter(app.m.all)
        app.m.params["staking"] = mod.params_spec()
    return app


def staking(app: PolyLinkApp) -> StakingKeeper:
    (mod,) = [m for m in app.m.all if m.name == "staking"]
    assert isinstance(mod, StakingModule)
    return mod.keeper


def coin(n: int) -> coin_pb2.Coin:
    return coin_pb2.Coin(denom="upoly", amount=str(n))


def gentx(i: int, power: int) -> str:
    msg = tx_pb2.MsgCreateValidator(
        operator_address=OPS[i].address, consensus_pubkey=CONS[i], self_bond=coin(power * POLY),
        commission_ppm=100_000, moniker=f"node{i}", min_self_delegation="1",
    )
    tx = build_tx([msg], OPS[i], chain_id=CHAIN, sequence=0, fee=FEE, gas_limit=GENTX_GAS)
    return base64.b64encode(tx).decode()


def start(app: PolyLinkApp) -> None:
    balances = [{"address": s.address, "coins": [{"denom": "upoly", "amount": str(100 * POLY)}]}
                for s in [*OPS, DELEGATOR]]
    state = {
        "bank": {"balances": balances},
        "staking": {"params": {"unbonding_blocks": "3", "max_validators": "2"}},
        "rewards": {"params": {"block_reward": "0"}},  # these tests count tokens exactly
        "genutil": {"gen_txs": [gentx(0, 10), gentx(1, 7), gentx(2, 5)]},
    }
    app.init_chain(CHAIN, json.dumps(state).encode(), 1, 0, -1)


def block(app: PolyLinkApp, height: int, txs: list[bytes]) -> list[tuple[bytes, int]]:
    r = app.finalize_block(height, height * 10**9, hashlib.sha256(b"%d" % height).digest(), b"", txs)
    assert [t.code for t in r.tx_results] == [0] * len(txs), [t.log for t in r.tx_results]
    app.commit()
    return [(u.pub_key, u.power) for u in r.validator_updates]


def test_gentxs_make_the_genesis_validator_set_and_blocks_update_it() -> None:
    app = staking_app()
    start(app)
    # top 2 of 3 by power (max_validators 2)
    assert sorted((u.pub_key, u.power) for u in app.genesis_validators) == sorted([(CONS[0], 10), (CONS[1], 7)])
    assert block(app, 1, []) == []
    assert app.check_invariants() == []
    # the third validator overtakes the second
    msg = tx_pb2.MsgDelegate(delegator_address=DELEGATOR.address, validator_address=OPS[2].address,
                             amount=coin(3 * POLY))
    tx = build_tx([msg], DELEGATOR, chain_id=CHAIN, sequence=0, fee=FEE, gas_limit=GENTX_GAS)
    assert sorted(block(app, 2, [tx])) == sorted([(CONS[2], 8), (CONS[1], 0)])
    assert app.check_invariants() == []
    k = staking(app)
    ctx = app.query_context()
    assert [v.moniker for v in k.bonded_validators(ctx)] == ["node0", "node2"]
    # undelegate: tokens come back after unbonding_blocks (3)
    msg2 = tx_pb2.MsgUndelegate(delegator_address=DELEGATOR.address, validator_address=OPS[2].address,
                                amount=coin(3 * POLY))
    tx2 = build_tx([msg2], DELEGATOR, chain_id=CHAIN, sequence=1, fee=FEE, gas_limit=GENTX_GAS)
    assert sorted(block(app, 3, [tx2])) == sorted([(CONS[2], 0), (CONS[1], 7)])
    before = app.m.bank.get_balance(app.query_context(), DELEGATOR.address, "upoly")
    for h in range(4, 7):
        block(app, h, [])
        assert app.check_invariants() == []
    after = app.m.bank.get_balance(app.query_context(), DELEGATOR.address, "upoly")
    assert after == before + 3 * POLY
    store = app.committed
    assert isinstance(store, MemStore)
    assert app.app_hash == StateAccumulator.of_items(store.items()).app_hash()


def test_export_then_import_gives_the_same_validator_set_and_state() -> None:
    app = staking_app()
    start(app)
    block(app, 1, [])
    exported = app.export_genesis()
    app2 = staking_app()
    app2.init_chain(CHAIN, json.dumps(exported).encode(), 2, 0, -1)
    assert sorted((u.pub_key, u.power) for u in app2.genesis_validators) == sorted(
        (u.pub_key, u.power) for u in app.genesis_validators
    )
    block(app2, 2, [])
    assert app2.export_genesis() == exported
