"""registry genesis: export -> import -> export is exact; validation rejects bad states."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polylink.registry.v1 import genesis_pb2, tx_pb2, types_pb2

from chain.core.address import from_bech32
from chain.core.codec import encode, from_json, to_json
from chain.core.context import ExecMode
from chain.core.errors import ChainError
from chain.core.store import MemStore
from chain.modules.bank import genesis as bank_genesis
from chain.modules.registry import genesis, keys
from chain.modules.registry.errors import ErrInvalidGenesis
from chain.modules.registry.params import default_params
from tests.unit.test_registry_env import (
    DIGEST,
    MIN_BOND,
    POOL_ADDR,
    Env,
    addr,
    funded,
    model_msg,
    worker_msg,
)

ACTIVE = types_pb2.WORKER_STATUS_ACTIVE
UNBONDING = types_pb2.WORKER_STATUS_UNBONDING


def registry_store(e: Env) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in e.store.items() if k.startswith(keys.NAMESPACE)]


def reimport(e: Env) -> Env:
    """A fresh chain from e's exported bank and registry state, at e's height."""
    ctx = e.qctx()
    bank_gs = bank_genesis.export_genesis(e.bank, ctx)
    reg_gs = genesis.export_genesis(e.k, ctx)
    reg_gs = from_json(genesis_pb2.GenesisState, to_json(reg_gs))  # through JSON, as genesis.json carries it
    e2 = Env(store=MemStore(), height=e.height)
    g = e2.ctx(ExecMode.GENESIS)
    bank_genesis.init_genesis(e2.bank, g, bank_gs)
    genesis.validate_genesis(reg_gs)
    genesis.init_genesis(e2.k, g, reg_gs)
    e2.module.end_block(g)  # InitChain runs every end_block once
    return e2


def busy_chain() -> Env:
    e = funded("w1", "w2", "w3", height=4)
    e.deliver(model_msg("z-model"))
    e.deliver(worker_msg("w1", models=("m2", "m1")))
    e.deliver(worker_msg("w2", models=("z-model",), group="g"))
    e.deliver(worker_msg("w3", models=("m1",)))
    e.run(lambda ctx: e.k.add_inflight(ctx, addr("w1"), 33))
    e.run(lambda ctx: e.k.record_miss(ctx, addr("w1"), "m1"))
    e.run(lambda ctx: e.k.set_fidelity(ctx, addr("w1"), "m1", 345_678))
    e.run(lambda ctx: e.k.jail_worker(ctx, addr("w3"), 40, "x"))
    e.run(lambda ctx: e.k.slash_worker(ctx, addr("w3"), 123_456, "x"))
    e.deliver(tx_pb2.MsgUpdateWorker(worker=addr("w1"), models=["m2"], models_set=True))  # m1's stats stay
    e.deliver(tx_pb2.MsgUnregisterWorker(worker=addr("w2")))
    e.end_block()
    return e


def test_default_genesis_is_valid() -> None:
    genesis.validate_genesis(genesis.default_genesis())
    assert genesis.default_genesis().params == default_params()


def test_export_import_export_is_exact() -> None:
    e = busy_chain()
    gs = genesis.export_genesis(e.k, e.qctx())
    assert [m.model_id for m in gs.models] == ["m1", "m2", "z-model"]
    assert [from_bech32(w.address) for w in gs.workers] == sorted(from_bech32(w.address) for w in gs.workers)
    assert {(s.model_id, s.fidelity_ema_ppm) for s in gs.stats if s.worker == addr("w1")} == {
        ("m1", 345_678), ("m2", 500_000)
    }  # fmt: skip
    e2 = reimport(e)
    assert registry_store(e2) == registry_store(e)
    assert encode(genesis.export_genesis(e2.k, e2.qctx())) == encode(gs)
    assert e2.invariants() == []
    # the imported UNBONDING worker still matures
    for _ in range(6):
        e2.end_block()
    assert e2.worker(addr("w2")) is None and e2.invariants() == []


@settings(max_examples=25, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(
                ["register", "update", "unregister", "slash", "jail", "inflight", "miss", "emas", "block"]
            ),
            st.integers(0, 3),
            st.integers(0, 1_000_000),
        ),
        max_size=25,
    )
)
def test_round_trip_after_random_activity(ops: list[tuple[str, int, int]]) -> None:
    names = ["a", "b", "c", "d"]
    e = funded(*names)
    for op, i, n in ops:
        with contextlib.suppress(ChainError):  # an invalid step changes nothing, like a failed tx
            _step(e, op, names[i], n)
        assert e.invariants() == []
    e2 = reimport(e)
    assert registry_store(e2) == registry_store(e)


def _step(e: Env, op: str, name: str, n: int) -> None:
    w, model = addr(name), ["m1", "m2"][n % 2]
    if op == "register":
        e.deliver(worker_msg(name, models=("m1", "m2")[: 1 + n % 2], bond=MIN_BOND + n))
    elif op == "update":
        e.deliver(tx_pb2.MsgUpdateWorker(worker=w, models=[model], models_set=True, capacity=1 + n % 7))
    elif op == "unregister":
        e.deliver(tx_pb2.MsgUnregisterWorker(worker=w))
    elif op == "slash":
        e.run(lambda ctx: e.k.slash_worker(ctx, w, n, "r"))
    elif op == "jail":
        e.run(lambda ctx: e.k.jail_worker(ctx, w, e.height + n % 9, "r"))
    elif op == "inflight":
        e.run(lambda ctx: e.k.add_inflight(ctx, w, n % 500))
    elif op == "miss":
        e.run(lambda ctx: e.k.record_miss(ctx, w, model))
    elif op == "emas":
        e.run(lambda ctx: e.k.set_quality(ctx, w, model, n))
        e.run(lambda ctx: e.k.set_fidelity(ctx, w, model, 1_000_000 - n))
    else:
        e.end_block()


# --- validation ----------------------------------------------------------------
def good_genesis() -> genesis_pb2.GenesisState:
    e = busy_chain()
    return genesis.export_genesis(e.k, e.qctx())


def _mutations() -> list[tuple[str, Callable[[genesis_pb2.GenesisState], None]]]:
    def swap(field: str) -> Callable[[genesis_pb2.GenesisState], None]:
        def f(gs: genesis_pb2.GenesisState) -> None:
            items = list(getattr(gs, field))
            del getattr(gs, field)[:]
            getattr(gs, field).extend(reversed(items))

        return f

    def dup(field: str) -> Callable[[genesis_pb2.GenesisState], None]:
        return lambda gs: getattr(gs, field).append(getattr(gs, field)[0])

    def set_(path: str, value: Any) -> Callable[[genesis_pb2.GenesisState], None]:
        field, index, attr = path.split(".")

        def f(gs: genesis_pb2.GenesisState) -> None:
            items = getattr(gs, field)
            # "active": the first ACTIVE worker (an UNBONDING one has a completion height)
            item = next(w for w in items if w.status == ACTIVE) if index == "active" else items[int(index)]
            if isinstance(value, list):
                del getattr(item, attr)[:]
                getattr(item, attr).extend(value)
            else:
                setattr(item, attr, value)

        return f

    return [
        ("bad params", lambda gs: setattr(gs.params, "unbonding_blocks", 0)),
        ("models out of order", swap("models")),
        ("duplicate model", dup("models")),
        ("bad model id", set_("models.0.model_id", "a b")),
        ("bad provider", set_("models.0.provider", "x")),
        ("bad sha256", set_("models.0.sha256", DIGEST.upper())),
        ("bad royalty", set_("models.0.royalty_ppm", 1_000_001)),
        ("bad price", set_("models.0.base_price", "1.0")),
        ("zero context", set_("models.0.context_length", 0)),
        ("workers out of order", swap("workers")),
        ("duplicate worker", dup("workers")),
        ("bad worker address", set_("workers.0.address", "poly1x")),
        ("no models", set_("workers.0.models", [])),
        ("unsorted models", set_("workers.0.models", ["m2", "m1"])),
        ("duplicate models", set_("workers.0.models", ["m1", "m1"])),
        ("unregistered model", set_("workers.0.models", ["nope"])),
        ("zero capacity", set_("workers.0.capacity", 0)),
        ("bad bond", set_("workers.0.bond", "-5")),
        ("no status", set_("workers.0.status", 0)),
        ("completion without UNBONDING", set_("workers.active.unbonding_completion_height", 9)),
        ("stats out of order", swap("stats")),
        ("duplicate stats", dup("stats")),
        ("stats of no worker", set_("stats.0.worker", addr("stranger"))),
        ("stats of no model", set_("stats.0.model_id", "nope")),
        ("quality > 1e6", set_("stats.0.quality_ema_ppm", 1_000_001)),
        ("fidelity > 1e6", set_("stats.0.fidelity_ema_ppm", 1_000_001)),
    ]


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[n for n, _ in _mutations()])
def test_validation_rejects(name: str, mutate: Callable[[genesis_pb2.GenesisState], None]) -> None:
    gs = good_genesis()
    genesis.validate_genesis(gs)
    mutate(gs)
    with pytest.raises(ChainError) as ei:
        genesis.validate_genesis(gs)
    assert ei.value.kind is ErrInvalidGenesis, (name, ei.value.log)


def test_unbonding_without_completion_is_rejected() -> None:
    gs = good_genesis()
    (w,) = [w for w in gs.workers if w.status == UNBONDING]
    w.unbonding_completion_height = 0
    with pytest.raises(ChainError) as ei:
        genesis.validate_genesis(gs)
    assert ei.value.kind is ErrInvalidGenesis


def test_init_checks_the_bond_pool_balance() -> None:
    e = busy_chain()
    gs = genesis.export_genesis(e.k, e.qctx())
    bank_gs = bank_genesis.export_genesis(e.bank, e.qctx())
    for b in bank_gs.balances:
        if b.address == POOL_ADDR:
            b.coins[0].amount = str(int(b.coins[0].amount) + 1)
    bank_gs.supply[0].amount = str(int(bank_gs.supply[0].amount) + 1)
    e2 = Env(store=MemStore())
    g = e2.ctx(ExecMode.GENESIS)
    bank_genesis.init_genesis(e2.bank, g, bank_gs)
    with pytest.raises(ChainError) as ei:
        genesis.init_genesis(e2.k, g, gs)
    assert ei.value.kind is ErrInvalidGenesis and "worker_bond_pool" in ei.value.log


def test_state_valid_under_old_params_stays_importable() -> None:
    """Governance may lower limits later; an export must still import."""
    gs = good_genesis()
    gs.params.max_field_bytes = 1
    gs.params.max_models_per_worker = 1
    gs.params.min_worker_bond = str(10 * MIN_BOND)
    genesis.validate_genesis(gs)
