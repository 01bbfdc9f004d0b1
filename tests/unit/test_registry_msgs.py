"""registry messages (stateless and stateful checks, handlers, events) and queries."""

from __future__ import annotations

from typing import Any

import pytest
from polylink.base.v1 import coin_pb2
from polylink.base.v1 import query_pb2 as base_q
from polylink.registry.v1 import query_pb2 as q
from polylink.registry.v1 import tx_pb2, types_pb2

from chain.core.errors import ChainError, ErrInvalidAddress, ErrInvalidRequest, ErrNotFound, ErrorKind
from chain.core.events import is_indexed
from chain.modules.bank.errors import ErrInsufficientFunds
from chain.modules.registry import errors
from tests.unit.test_registry_env import (
    DIGEST,
    MIN_BOND,
    POLY,
    Env,
    addr,
    coin,
    funded,
    make_params,
    model_msg,
    worker_msg,
)

W1, W2 = addr("w1"), addr("w2")
ACTIVE = types_pb2.WORKER_STATUS_ACTIVE
UNBONDING = types_pb2.WORKER_STATUS_UNBONDING


def update_msg(name: str = "w1", **kw: Any) -> tx_pb2.MsgUpdateWorker:
    m = tx_pb2.MsgUpdateWorker(worker=addr(name))
    for k, v in kw.items():
        if k == "add_bond":
            m.add_bond.CopyFrom(v)
        elif k == "models":
            m.models.extend(v)
        else:
            setattr(m, k, v)
    return m


# --- MsgRegisterModel --------------------------------------------------------
def test_register_model_stores_it_and_emits() -> None:
    e = Env({addr("provider"): POLY}, height=7)
    assert e.deliver(model_msg("org/model-7b:q4.gguf")) == tx_pb2.MsgRegisterModelResponse()
    m = e.k.get_model(e.qctx(), "org/model-7b:q4.gguf")
    assert m is not None
    assert (m.provider, m.sha256, m.context_length, m.royalty_ppm, m.base_price, m.registered_height) == (
        addr("provider"), DIGEST, 4096, 100_000, "1000", 7
    )
    assert e.events_of("registry.model_registered") == [
        {"model_id": "org/model-7b:q4.gguf", "provider": addr("provider"), "sha256": DIGEST}
    ]
    assert e.events_of("message") == [{"module": "registry", "action": "register_model", "sender": addr("provider")}]
    assert is_indexed("registry.model_registered", "model_id")


@pytest.mark.parametrize(
    ("kw", "kind"),
    [
        ({"provider": "nope"}, ErrInvalidAddress),
        ({"model_id": ""}, errors.ErrInvalidModelID),
        ({"model_id": "has space"}, errors.ErrInvalidModelID),
        ({"model_id": "caf\u00e9"}, errors.ErrInvalidModelID),
        ({"model_id": "a,b"}, errors.ErrInvalidModelID),
        ({"sha256": DIGEST.upper()}, errors.ErrInvalidSha256),
        ({"sha256": DIGEST[:-1]}, errors.ErrInvalidSha256),
        ({"royalty_ppm": 1_000_001}, errors.ErrInvalidRoyalty),
        ({"base_price": ""}, errors.ErrInvalidPrice),
        ({"base_price": "-1"}, errors.ErrInvalidPrice),
        ({"base_price": "01"}, errors.ErrInvalidPrice),
        ({"base_price": "1.5"}, errors.ErrInvalidPrice),
        ({"context_length": 0}, errors.ErrInvalidContextLength),
        ({"model_id": "x" * 65}, errors.ErrFieldTooLong),
        ({"family": "x" * 65}, errors.ErrFieldTooLong),
        ({"version": "x" * 65}, errors.ErrFieldTooLong),
        ({"license": "\u00e9" * 33}, errors.ErrFieldTooLong),  # 66 bytes: the limit is in bytes
    ],
)
def test_register_model_rejects(kw: dict[str, Any], kind: ErrorKind) -> None:
    Env({addr("provider"): POLY}).fails(model_msg(**kw), kind)


def test_register_model_edge_values_pass_and_ids_are_unique() -> None:
    e = Env()
    e.deliver(model_msg("x" * 64, royalty_ppm=1_000_000, base_price="0", license="\u00e9" * 32))
    e.fails(model_msg("x" * 64, provider=addr("other")), errors.ErrModelExists)


# --- MsgRegisterWorker -------------------------------------------------------
def test_register_worker_bonds_and_opens_stats() -> None:
    e = funded("w1", height=3)
    e.deliver(worker_msg(models=("m2", "m1"), bond=MIN_BOND + 5, group="g"))
    w = e.worker(W1)
    assert w is not None
    assert list(w.models) == ["m1", "m2"]  # stored sorted
    assert (w.status, w.bond, w.capacity, w.group, w.registered_height, w.inflight_tokens) == (
        ACTIVE, str(MIN_BOND + 5), 100, "g", 3, 0
    )
    assert e.balance(W1) == 1000 * POLY - MIN_BOND - 5 and e.pool() == MIN_BOND + 5
    assert [(s.model_id, s.quality_ema_ppm, s.fidelity_ema_ppm) for s in e.k.all_stats(e.qctx())] == [
        ("m1", 500_000, 500_000), ("m2", 500_000, 500_000)
    ]  # fmt: skip
    assert e.events_of("registry.worker_registered") == [
        {"worker": W1, "models": "m1,m2", "capacity": "100", "bond": str(MIN_BOND + 5)}
    ]
    assert {"module": "registry", "action": "register_worker", "sender": W1} in e.events_of("message")
    assert e.invariants() == []


@pytest.mark.parametrize(
    ("msg", "kind"),
    [
        (worker_msg(worker="poly1bad"), ErrInvalidAddress),
        (worker_msg(models=()), errors.ErrNoModels),
        (worker_msg(models=("bad id",)), errors.ErrInvalidModelID),
        (worker_msg(models=("m1", "m2", "m1")), errors.ErrDuplicateModel),
        (worker_msg(capacity=0), errors.ErrInvalidCapacity),
        (worker_msg(bond_coin=coin(MIN_BOND, "uabc")), errors.ErrBadDenom),
        (worker_msg(bond_coin=coin(0)), errors.ErrInvalidAmount),
        (worker_msg(bond_coin=tx_pb2.MsgRegisterWorker().bond), errors.ErrBadDenom),
        (worker_msg(bond_coin=coin_pb2.Coin(denom="upoly", amount="007")), errors.ErrInvalidAmount),
        (worker_msg(endpoint="x" * 65), errors.ErrFieldTooLong),
        (worker_msg(group="x" * 65), errors.ErrFieldTooLong),
        (worker_msg(models=("m1", "m2", "m3", "m4", "m5")), errors.ErrTooManyModels),
        (worker_msg(models=("m1", "nope")), errors.ErrUnknownModel),
        (worker_msg(bond=MIN_BOND - 1), errors.ErrBondTooLow),
        (worker_msg(bond=1001 * POLY), ErrInsufficientFunds),
    ],
)
def test_register_worker_rejects(msg: tx_pb2.MsgRegisterWorker, kind: ErrorKind) -> None:
    e = funded("w1")
    for m in ("m3", "m4", "m5"):
        e.deliver(model_msg(m))
    e.fails(msg, kind)
    assert e.worker(W1) is None and e.pool() == 0


def test_register_worker_twice_fails_even_while_unbonding() -> None:
    e = funded("w1")
    e.deliver(worker_msg())
    e.fails(worker_msg(), errors.ErrWorkerExists)
    e.deliver(tx_pb2.MsgUnregisterWorker(worker=W1))
    e.fails(worker_msg(), errors.ErrWorkerExists)


# --- MsgUpdateWorker ---------------------------------------------------------
def test_update_worker_changes_only_what_is_set() -> None:
    e = funded("w1")
    e.deliver(worker_msg(models=("m1",)))
    e.run(lambda ctx: e.k.set_quality(ctx, W1, "m1", 900_000))
    e.deliver(update_msg(endpoint="http://new", capacity=7))
    w = e.worker(W1)
    assert w is not None and (w.endpoint, w.capacity, list(w.models), w.bond) == (
        "http://new", 7, ["m1"], str(MIN_BOND)
    )
    # models replaced: m2 gets fresh stats, m1's stats are kept though it is dropped
    e.deliver(update_msg(models=["m2"], models_set=True))
    w = e.worker(W1)
    assert w is not None and list(w.models) == ["m2"] and w.endpoint == "http://new"
    stats = {s.model_id: s.quality_ema_ppm for s in e.k.all_stats(e.qctx())}
    assert stats == {"m1": 900_000, "m2": 500_000}
    # serving m1 again: its old record comes back, not a fresh one
    e.deliver(update_msg(models=["m1", "m2"], models_set=True))
    assert e.k.get_stats(e.qctx(), W1, "m1").quality_ema_ppm == 900_000
    e.deliver(update_msg(add_bond=coin(3 * POLY)))
    w = e.worker(W1)
    assert w is not None and w.bond == str(MIN_BOND + 3 * POLY) and e.pool() == MIN_BOND + 3 * POLY
    assert e.events_of("registry.worker_updated")[-1]["added_bond"] == str(3 * POLY)
    assert {"module": "registry", "action": "update_worker", "sender": W1} in e.events_of("message")
    assert e.invariants() == []


def test_update_worker_zero_add_bond_is_no_change() -> None:
    e = funded("w1")
    e.deliver(worker_msg())
    e.deliver(update_msg(capacity=5, add_bond=coin(0, "uabc")))
    assert e.pool() == MIN_BOND


@pytest.mark.parametrize(
    ("msg", "kind"),
    [
        (update_msg(worker="bad"), ErrInvalidAddress),
        (update_msg(), errors.ErrEmptyUpdate),
        (update_msg(models=["m1"]), errors.ErrEmptyUpdate),  # models without models_set change nothing
        (update_msg(models=[], models_set=True), errors.ErrNoModels),
        (update_msg(models=["m1", "m1"], models_set=True), errors.ErrDuplicateModel),
        (update_msg(models=["b@d"], models_set=True), errors.ErrInvalidModelID),
        (update_msg(add_bond=coin(5, "uabc")), errors.ErrBadDenom),
        (update_msg(name="w2", capacity=1), errors.ErrNoWorker),
        (update_msg(endpoint="x" * 65), errors.ErrFieldTooLong),
        (update_msg(models=["m1", "m2", "m3", "m4", "m5"], models_set=True), errors.ErrTooManyModels),
        (update_msg(models=["zzz"], models_set=True), errors.ErrUnknownModel),
        (update_msg(add_bond=coin(10_000 * POLY)), ErrInsufficientFunds),
    ],
)
def test_update_worker_rejects(msg: tx_pb2.MsgUpdateWorker, kind: ErrorKind) -> None:
    e = funded("w1")
    for m in ("m3", "m4", "m5"):
        e.deliver(model_msg(m))
    e.deliver(worker_msg())
    before = e.store.items()
    e.fails(msg, kind)
    assert e.store.items() == before


def test_update_worker_needs_an_active_worker() -> None:
    e = funded("w1")
    e.deliver(worker_msg())
    e.deliver(tx_pb2.MsgUnregisterWorker(worker=W1))
    e.fails(update_msg(capacity=9), errors.ErrWorkerNotActive)


# --- MsgUnregisterWorker -----------------------------------------------------
def test_unregister_starts_unbonding() -> None:
    e = funded("w1", height=10)
    e.deliver(worker_msg())
    r = e.deliver(tx_pb2.MsgUnregisterWorker(worker=W1))
    assert r.completion_height == 15  # unbonding_blocks 5
    w = e.worker(W1)
    assert w is not None and (w.status, w.unbonding_completion_height) == (UNBONDING, 15)
    assert e.events_of("registry.worker_unregistered") == [
        {"worker": W1, "completion_height": "15", "bond": str(MIN_BOND)}
    ]
    assert e.pool() == MIN_BOND and e.invariants() == []
    e.fails(tx_pb2.MsgUnregisterWorker(worker=W1), errors.ErrWorkerNotActive)
    e.fails(tx_pb2.MsgUnregisterWorker(worker=W2), errors.ErrNoWorker)
    e.fails(tx_pb2.MsgUnregisterWorker(worker="x"), ErrInvalidAddress)


def test_every_registry_error_has_its_own_code() -> None:
    kinds = [v for v in vars(errors).values() if isinstance(v, ErrorKind)]
    assert {k.codespace for k in kinds} == {"registry"}
    assert len({k.code for k in kinds}) == len(kinds) >= 22


# --- queries -----------------------------------------------------------------
def test_queries() -> None:
    e = funded("w1", "w2", "w3", params=make_params())
    e.deliver(worker_msg("w1", models=("m1",)))
    e.deliver(worker_msg("w2", models=("m1", "m2")))
    e.deliver(worker_msg("w3", models=("m2",)))
    assert e.query("Model", q.QueryModelRequest(model_id="m2")).model.model_id == "m2"
    with pytest.raises(ChainError) as ei:
        e.query("Model", q.QueryModelRequest(model_id="nope"))
    assert ei.value.kind is ErrNotFound
    with pytest.raises(ChainError) as ei:
        e.query("Model", q.QueryModelRequest())
    assert ei.value.kind is ErrInvalidRequest
    page1 = e.query("Models", q.QueryModelsRequest(pagination=base_q.PageRequest(limit=1)))
    assert [m.model_id for m in page1.models] == ["m1"] and page1.pagination.next_key
    page2 = e.query("Models", q.QueryModelsRequest(pagination=base_q.PageRequest(key=page1.pagination.next_key)))
    assert [m.model_id for m in page2.models] == ["m2"] and not page2.pagination.next_key

    r = e.query("Worker", q.QueryWorkerRequest(address=addr("w2")))
    assert r.worker.address == addr("w2")
    assert [(s.worker, s.model_id, s.quality_ema_ppm) for s in r.stats] == [
        (addr("w2"), "m1", 500_000), (addr("w2"), "m2", 500_000)
    ]
    with pytest.raises(ChainError) as ei:
        e.query("Worker", q.QueryWorkerRequest(address=addr("nobody")))
    assert ei.value.kind is ErrNotFound

    everyone = [w.address for w in e.k.workers(e.qctx())]
    assert sorted(everyone) == sorted(addr(n) for n in ("w1", "w2", "w3"))
    assert [w.address for w in e.query("Workers", q.QueryWorkersRequest()).workers] == everyone
    serving_m2 = [w.address for w in e.query("Workers", q.QueryWorkersRequest(model_id="m2")).workers]
    assert serving_m2 == [a for a in everyone if a in (addr("w2"), addr("w3"))]
    first = e.query("Workers", q.QueryWorkersRequest(model_id="m2", pagination=base_q.PageRequest(limit=1)))
    rest = e.query(
        "Workers", q.QueryWorkersRequest(model_id="m2", pagination=base_q.PageRequest(key=first.pagination.next_key))
    )
    assert [w.address for w in [*first.workers, *rest.workers]] == serving_m2
    assert e.query("Workers", q.QueryWorkersRequest(model_id="none")).workers == []
    assert e.query("Params", q.QueryParamsRequest()).params == make_params()
