"""The registry keeper's interface for inference: eligibility and weights, in-flight capacity,
slashing into the community pool, jailing, stats; unbonding maturity; invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polylink.registry.v1 import tx_pb2, types_pb2

from chain.core.address import from_bech32
from chain.core.coins import Coins
from chain.core.errors import ChainError
from chain.core.events import is_indexed
from chain.core.store import PrefixStore
from chain.modules.registry import keys
from chain.modules.registry.errors import ErrInvalidFraction, ErrInvalidQuality, ErrNoWorker
from tests.unit.test_registry_env import (
    COMMUNITY_ADDR,
    MIN_BOND,
    POOL_ADDR,
    Env,
    addr,
    funded,
    make_params,
    worker_msg,
)

W1, W2, W3 = addr("w1"), addr("w2"), addr("w3")
ACTIVE = types_pb2.WORKER_STATUS_ACTIVE
UNBONDING = types_pb2.WORKER_STATUS_UNBONDING
WINDOW = 10


def three_workers() -> Env:
    e = funded("w1", "w2", "w3")
    e.deliver(worker_msg("w1", models=("m1",), bond=MIN_BOND))
    e.deliver(worker_msg("w2", models=("m1", "m2"), bond=2 * MIN_BOND))
    e.deliver(worker_msg("w3", models=("m2",), bond=MIN_BOND))
    return e


def by_address(*names: str) -> list[str]:
    """Addresses in address-byte order (not bech32 text order)."""
    return sorted((addr(n) for n in names), key=from_bech32)


# --- eligibility -------------------------------------------------------------
def test_eligible_workers_weights_and_order() -> None:
    e = three_workers()
    got = e.k.eligible_workers(e.qctx(), "m1", 50, WINDOW)
    assert [a for a, _ in got] == by_address("w1", "w2")
    assert dict(got) == {W1: MIN_BOND * 500_000, W2: 2 * MIN_BOND * 500_000}
    assert e.k.eligible_workers(e.qctx(), "none", 1, WINDOW) == []


def test_jailed_unbonding_underbonded_and_zero_quality_workers_are_not_eligible() -> None:
    e = three_workers()
    e.run(lambda ctx: e.k.jail_worker(ctx, W1, e.height + 2, "test"))
    assert [a for a, _ in e.k.eligible_workers(e.qctx(), "m1", 1, WINDOW)] == [W2]
    e.end_block()
    e.end_block()  # height == jailed_until: eligible again
    assert [a for a, _ in e.k.eligible_workers(e.qctx(), "m1", 1, WINDOW)] == by_address("w1", "w2")
    e.run(lambda ctx: e.k.set_quality(ctx, W1, "m1", 0))
    assert [a for a, _ in e.k.eligible_workers(e.qctx(), "m1", 1, WINDOW)] == [W2]
    e.deliver(tx_pb2.MsgUnregisterWorker(worker=W2))
    assert e.k.eligible_workers(e.qctx(), "m1", 1, WINDOW) == []
    # a slash below min_worker_bond takes a worker out until it adds bond
    assert [a for a, _ in e.k.eligible_workers(e.qctx(), "m2", 1, WINDOW)] == [W3]
    e.run(lambda ctx: e.k.slash_worker(ctx, W3, 1, "x"))
    assert e.k.eligible_workers(e.qctx(), "m2", 1, WINDOW) == []
    e.deliver(tx_pb2.MsgUpdateWorker(worker=W3, add_bond={"denom": "upoly", "amount": "100"}))
    assert [a for a, _ in e.k.eligible_workers(e.qctx(), "m2", 1, WINDOW)] == [W3]


def test_inflight_capacity_rule() -> None:
    e = three_workers()  # capacity 100 tokens per block
    room = 100 * WINDOW
    assert W1 in dict(e.k.eligible_workers(e.qctx(), "m1", room, WINDOW))
    assert W1 not in dict(e.k.eligible_workers(e.qctx(), "m1", room + 1, WINDOW))
    e.run(lambda ctx: e.k.add_inflight(ctx, W1, 600))
    assert W1 in dict(e.k.eligible_workers(e.qctx(), "m1", 400, WINDOW))
    assert W1 not in dict(e.k.eligible_workers(e.qctx(), "m1", 401, WINDOW))
    e.run(lambda ctx: e.k.release_inflight(ctx, W1, 200))
    w = e.worker(W1)
    assert w is not None and w.inflight_tokens == 400
    e.run(lambda ctx: e.k.release_inflight(ctx, W1, 10_000))  # floor at 0
    w = e.worker(W1)
    assert w is not None and w.inflight_tokens == 0
    e.run(lambda ctx: e.k.release_inflight(ctx, addr("gone"), 5))  # unknown worker: ignored
    with pytest.raises(ChainError) as ei:
        e.run(lambda ctx: e.k.add_inflight(ctx, addr("gone"), 5))
    assert ei.value.kind is ErrNoWorker


class _W:
    """A plain model of one worker for the eligibility property."""

    def __init__(self, bond: int, quality: int, active: bool, jailed_until: int, capacity: int, inflight: int,
                 serves: bool) -> None:
        self.bond, self.quality, self.active, self.jailed_until = bond, quality, active, jailed_until
        self.capacity, self.inflight, self.serves = capacity, inflight, serves


workers_st = st.lists(
    st.builds(
        _W,
        bond=st.integers(0, 3 * MIN_BOND),
        quality=st.integers(0, 1_000_000),
        active=st.booleans(),
        jailed_until=st.integers(0, 10),
        capacity=st.integers(1, 50),
        inflight=st.integers(0, 500),
        serves=st.booleans(),
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(ws=workers_st, height=st.integers(1, 10), max_tokens=st.integers(1, 300), window=st.integers(1, 10))
def test_eligible_workers_match_a_plain_model(ws: list[_W], height: int, max_tokens: int, window: int) -> None:
    e = Env(params=make_params(), height=height)
    names = [f"p{i}" for i in range(len(ws))]
    ctx = e.ctx()
    for name, m in zip(names, ws, strict=True):
        w = types_pb2.Worker(
            address=addr(name), models=["m1"] if m.serves else ["m2"], capacity=m.capacity, bond=str(m.bond),
            status=ACTIVE if m.active else UNBONDING, unbonding_completion_height=0 if m.active else 99,
            jailed_until_height=m.jailed_until, inflight_tokens=m.inflight,
        )
        e.k.add_worker(ctx, w)
        e.k.set_stats(ctx, types_pb2.WorkerModelStats(worker=w.address, model_id="m1", quality_ema_ppm=m.quality))
    want = sorted(
        (
            (addr(n), m.bond * m.quality)
            for n, m in zip(names, ws, strict=True)
            if m.serves and m.active and height >= m.jailed_until and m.bond >= MIN_BOND
            and m.inflight + max_tokens <= m.capacity * window and m.bond * m.quality > 0
        ),
        key=lambda aw: from_bech32(aw[0]),
    )
    assert e.k.eligible_workers(e.qctx(), "m1", max_tokens, window) == want


# --- penalties ---------------------------------------------------------------
def test_slash_worker_moves_bond_to_the_community_pool() -> None:
    e = three_workers()
    supply = e.bank.get_supply(e.qctx(), "upoly")
    amount = e.run(lambda ctx: e.k.slash_worker(ctx, W2, 10_000, "missed deadline"))
    assert amount == 2 * MIN_BOND * 10_000 // 1_000_000
    w = e.worker(W2)
    assert w is not None and int(w.bond) == 2 * MIN_BOND - amount
    assert e.balance(COMMUNITY_ADDR) == amount and e.pool() == 4 * MIN_BOND - amount
    assert e.bank.get_supply(e.qctx(), "upoly") == supply  # moved, not burnt
    assert e.events_of("registry.worker_slashed") == [
        {"worker": W2, "amount": str(amount), "reason": "missed deadline"}
    ]
    assert is_indexed("registry.worker_slashed", "worker")
    assert e.invariants() == []


def test_slash_rounds_down_works_while_unbonding_and_ignores_deleted_workers() -> None:
    e = funded("w1")
    e.deliver(worker_msg(bond=MIN_BOND + 999_999))
    e.deliver(tx_pb2.MsgUnregisterWorker(worker=W1))
    # floor: 100_999_999 * 1 // 10^6 = 100
    assert e.run(lambda ctx: e.k.slash_worker(ctx, W1, 1, "late")) == 100
    assert e.run(lambda ctx: e.k.slash_worker(ctx, W1, 1_000_000, "all")) == MIN_BOND + 999_999 - 100
    w = e.worker(W1)
    assert w is not None and w.bond == "0" and e.pool() == 0
    assert e.run(lambda ctx: e.k.slash_worker(ctx, W1, 500_000, "nothing left")) == 0
    assert e.run(lambda ctx: e.k.slash_worker(ctx, addr("gone"), 500_000, "gone")) == 0
    for bad in (-1, 1_000_001):
        with pytest.raises(ChainError) as ei:
            e.run(lambda ctx, b=bad: e.k.slash_worker(ctx, W1, b, "bad"))
        assert ei.value.kind is ErrInvalidFraction
    assert e.invariants() == []


def test_jail_worker_keeps_the_later_release() -> None:
    e = three_workers()
    e.run(lambda ctx: e.k.jail_worker(ctx, W1, 50, "bad result"))
    e.run(lambda ctx: e.k.jail_worker(ctx, W1, 20, "again"))
    w = e.worker(W1)
    assert w is not None and w.jailed_until_height == 50
    assert e.events_of("registry.worker_jailed") == [
        {"worker": W1, "until_height": "50", "reason": "bad result"},
        {"worker": W1, "until_height": "50", "reason": "again"},
    ]
    e.run(lambda ctx: e.k.jail_worker(ctx, addr("gone"), 50, "x"))  # ignored


# --- stats -------------------------------------------------------------------
def test_stats_defaults_and_recording() -> None:
    e = three_workers()
    s = e.k.get_stats(e.qctx(), W1, "m2")  # not served: a default, not stored
    # both EMAs start at initial_quality_ppm
    assert (s.worker, s.model_id, s.quality_ema_ppm, s.fidelity_ema_ppm, s.results, s.misses) == (
        W1, "m2", 500_000, 500_000, 0, 0
    )  # fmt: skip
    assert not e.k.has_stats(e.qctx(), W1, "m2")
    e.run(lambda ctx: e.k.record_result(ctx, W1, "m1"))
    e.run(lambda ctx: e.k.record_result(ctx, W1, "m1"))
    e.run(lambda ctx: e.k.record_miss(ctx, W1, "m1"))
    e.run(lambda ctx: e.k.set_quality(ctx, W1, "m1", 1_000_000))
    e.run(lambda ctx: e.k.set_fidelity(ctx, W1, "m1", 123_000))
    s = e.k.get_stats(e.qctx(), W1, "m1")
    assert (s.quality_ema_ppm, s.fidelity_ema_ppm, s.results, s.misses) == (1_000_000, 123_000, 2, 1)
    for setter in (e.k.set_quality, e.k.set_fidelity):
        with pytest.raises(ChainError) as ei:
            e.run(lambda ctx, setter=setter: setter(ctx, W1, "m1", 1_000_001))
        assert ei.value.kind is ErrInvalidQuality
    # the fidelity EMA never weighs assignment: only bond x quality does
    e.run(lambda ctx: e.k.set_fidelity(ctx, W1, "m1", 0))
    assert dict(e.k.eligible_workers(e.qctx(), "m1", 1, 10))[W1] > 0
    # a deleted worker gets no stats back
    for f in (e.k.record_result, e.k.record_miss):
        e.run(lambda ctx, f=f: f(ctx, addr("gone"), "m1"))
    e.run(lambda ctx: e.k.set_quality(ctx, addr("gone"), "m1", 5))
    e.run(lambda ctx: e.k.set_fidelity(ctx, addr("gone"), "m1", 5))
    assert all(s.worker != addr("gone") for s in e.k.all_stats(e.qctx()))
    assert e.invariants() == []


# --- unbonding ---------------------------------------------------------------
def test_unbonding_returns_the_bond_at_maturity_and_deletes_the_worker() -> None:
    e = funded("w1", "w2", height=10)
    e.deliver(worker_msg("w1", models=("m1", "m2")))
    e.deliver(worker_msg("w2"))
    e.run(lambda ctx: e.k.slash_worker(ctx, W1, 100_000, "x"))
    e.deliver(tx_pb2.MsgUnregisterWorker(worker=W1))  # completes at 15
    left = MIN_BOND - MIN_BOND // 10
    before = e.balance(W1)
    while e.height < 15:
        e.end_block()
        assert e.worker(W1) is not None and e.balance(W1) == before
    e.end_block()  # height 15: matured
    assert e.worker(W1) is None
    assert e.balance(W1) == before + left
    assert e.pool() == MIN_BOND  # only w2's bond is left
    assert e.events_of("registry.worker_unbonded") == [{"worker": W1, "amount": str(left)}]
    assert not any(s.worker == W1 for s in e.k.all_stats(e.qctx()))
    assert [w.address for w in e.k.workers_serving(e.qctx(), "m2")] == []
    assert list(PrefixStore(e.qctx().kv(keys.NAMESPACE), keys.UNBONDING).iterate()) == []
    assert e.invariants() == []
    # the address may register again once its bond is back
    e.deliver(worker_msg("w1"))
    assert e.worker(W1) is not None


def test_fully_slashed_worker_matures_with_nothing_to_return() -> None:
    e = funded("w1")
    e.deliver(worker_msg())
    e.deliver(tx_pb2.MsgUnregisterWorker(worker=W1))
    e.run(lambda ctx: e.k.slash_worker(ctx, W1, 1_000_000, "x"))
    before = e.balance(W1)
    for _ in range(6):
        e.end_block()
    assert e.worker(W1) is None and e.balance(W1) == before
    assert e.events_of("registry.worker_unbonded") == [{"worker": W1, "amount": "0"}]


# --- invariants --------------------------------------------------------------
def test_invariants_catch_a_pool_or_index_mismatch() -> None:
    e = three_workers()
    assert e.invariants() == []
    e.run(lambda ctx: e.bank.send(ctx, W1, POOL_ADDR, Coins({"upoly": 1})))
    (broken,) = e.invariants()
    assert broken.startswith("registry/bond-pool:")
    e2 = three_workers()
    e2.run(lambda ctx: ctx.kv(keys.NAMESPACE).delete(keys.by_model_key("m1", from_bech32(W1))))
    (broken,) = e2.invariants()
    assert broken.startswith("registry/indexes:")
    e3 = three_workers()
    e3.run(lambda ctx: e3.k.set_stats(ctx, types_pb2.WorkerModelStats(worker=addr("x"), model_id="m1")))
    (broken,) = e3.invariants()
    assert "not a worker" in broken
    e4 = three_workers()
    bad = e4.k.get_stats(e4.qctx(), W1, "m1")
    bad.fidelity_ema_ppm = 1_000_001
    e4.run(lambda ctx: e4.k.set_stats(ctx, bad))
    (broken,) = e4.invariants()
    assert broken.startswith("registry/stats:") and "fidelity_ema_ppm 1000001" in broken


def test_unbonding_waits_for_open_assignments_so_the_bond_stays_slashable() -> None:
    e = funded("w1", height=10)
    e.deliver(worker_msg())
    e.run(lambda ctx: e.k.add_inflight(ctx, W1, 50))  # an assignment still open
    e.deliver(tx_pb2.MsgUnregisterWorker(worker=W1))  # completes at 15
    before = e.balance(W1)
    while e.height < 18:
        e.end_block()
    w = e.worker(W1)
    assert w is not None and e.balance(W1) == before  # held past 15
    assert w.unbonding_completion_height == e.height
    assert e.run(lambda ctx: e.k.slash_worker(ctx, W1, 10_000, "missed deadline")) == MIN_BOND // 100
    e.run(lambda ctx: e.k.release_inflight(ctx, W1, 50))
    e.end_block()
    assert e.worker(W1) is None and e.balance(W1) == before + MIN_BOND - MIN_BOND // 100
    assert e.invariants() == []
