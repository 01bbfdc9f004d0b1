"""inference per-block work and money: assignment, deadlines, misses and reassignment, swarms,
settlement and refunds to the upoly, queries, and the invariants after each step."""

from __future__ import annotations

import pytest
from polylink.base.v1 import query_pb2 as base_q
from polylink.inference.v1 import query_pb2, types_pb2

from chain.core.errors import ChainError, ErrNotFound
from chain.modules.inference.assign import assignment_seed, sample_weighted
from chain.modules.inference.query_server import QueryServer
from tests.unit.inference_env import (
    COMMUNITY_ADDR,
    ESCROW_ADDR,
    MODEL,
    PROVIDER_NAME,
    Env,
    addr,
    block_hash,
    make_params,
)

S = types_pb2
USER = addr("user")
OTHER = addr("other")
PROVIDER = addr(PROVIDER_NAME)
START = 10**9
BOND = 100_000
WORKERS = ["w1", "w2", "w3", "w4"]


def make_env(workers: list[str] = WORKERS, **params: int) -> Env:
    e = Env({USER: START, OTHER: START, **{addr(w): 10**6 for w in workers}}, make_params(**params))
    e.setup_model(base_price=1500, royalty_ppm=125_000)
    for w in workers:
        e.setup_worker(w, bond=BOND)
    return e


def total_money(e: Env) -> int:
    return e.supply()


# --- assignment ------------------------------------------------------------------
def test_assignment_follows_the_seeded_sample_and_adds_inflight() -> None:
    e = make_env()
    rid = e.ask(USER, max_tokens=50, redundancy=2)
    h = e.height
    cands = e.reg.eligible_workers(e.q(), MODEL, 50, 30)
    e.end_block()
    want = sample_weighted(assignment_seed(block_hash(h), rid), cands, 2)
    assert e.assigned(rid) == want
    r = e.request(rid)
    assert (r.status, r.deadline_height) == (S.REQUEST_STATUS_ASSIGNED, h + 30)
    for a in r.assignments:
        assert (a.status, a.attempt, a.assigned_height) == (S.ASSIGNMENT_STATUS_OPEN, 0, h)
        assert e.worker(a.worker).inflight_tokens == 50
    assert e.events_of("inference.assigned") == [
        {
            "request_id": str(rid),
            "worker": w,
            "model_id": MODEL,
            "action": "COMMIT",
            "deadline": str(h + 30),
            "attempt": "0",
        }
        for w in want
    ]
    assert e.invariants() == []


def test_requests_are_assigned_in_id_order_within_a_block() -> None:
    """Capacity is consumed in id order: with room for one request, the lower id gets the worker."""
    e = make_env(["w1"])
    e.run(lambda ctx: _set_capacity(e, ctx, addr("w1"), 1))  # 1 token/block x 30 blocks = 30 in flight
    a = e.ask(USER, max_tokens=30)
    b = e.ask(USER, max_tokens=30)
    e.end_block()
    assert e.request(a).status == S.REQUEST_STATUS_ASSIGNED
    assert (e.request(b).status, e.request(b).failure) == (S.REQUEST_STATUS_FAILED, "no eligible worker")


def _set_capacity(e: Env, ctx: object, w: str, capacity: int) -> None:
    worker = e.reg.get_worker(ctx, w)  # type: ignore[arg-type]
    assert worker is not None
    worker.capacity = capacity
    e.reg.set_worker(ctx, worker)  # type: ignore[arg-type]


def test_no_eligible_worker_fails_with_a_full_refund() -> None:
    e = make_env([])
    rid = e.ask(USER, max_tokens=100, redundancy=2)
    assert e.balance(USER) == START - 300
    e.end_block()
    r = e.request(rid)
    assert (r.status, r.failure, r.escrow, r.completed_height) == (
        S.REQUEST_STATUS_FAILED,
        "no eligible worker",
        "0",
        1,
    )
    assert e.balance(USER) == START
    assert e.events_of("inference.failed") == [
        {"request_id": str(rid), "reason": "no eligible worker", "refund": "300"}
    ]
    assert e.invariants() == []


def test_unused_slots_are_refunded_at_once() -> None:
    e = make_env(["w1", "w2"])
    rid = e.ask(USER, max_tokens=100, redundancy=4)  # slot 150, escrow 600
    e.end_block()
    r = e.request(rid)
    assert len(r.assignments) == 2
    assert r.escrow == "300"
    assert e.balance(USER) == START - 300
    assert e.invariants() == []


# --- n = 1: deadline, miss, reassignment, failure ----------------------------------------
def test_submit_in_the_deadline_block_still_counts() -> None:
    e = make_env()
    rid = e.ask(USER)
    e.end_block()
    e.advance(e.request(rid).deadline_height - e.height)
    assert e.height == e.request(rid).deadline_height
    e.submit(e.assigned(rid)[0], rid)
    e.end_block()
    assert e.request(rid).status == S.REQUEST_STATUS_COMPLETED
    assert e.events_of("inference.missed") == []


def test_miss_slashes_and_reassigns_to_a_fresh_worker() -> None:
    e = make_env()
    rid = e.ask(USER, max_tokens=100)
    e.end_block()
    (first,) = e.assigned(rid)
    deadline = e.request(rid).deadline_height
    supply = total_money(e)
    e.advance(deadline - e.height + 1)
    r = e.request(rid)
    assert r.assignments[0].status == S.ASSIGNMENT_STATUS_MISSED
    assert (r.status, r.reassignments, r.deadline_height) == (S.REQUEST_STATUS_ASSIGNED, 1, deadline + 30)
    (second,) = e.assigned(rid)
    assert second != first
    assert r.assignments[1].attempt == 1
    penalty = BOND * 10_000 // 1_000_000
    assert e.worker(first).bond == str(BOND - penalty)
    assert e.worker(first).inflight_tokens == 0
    assert e.worker(second).inflight_tokens == 100
    assert e.reg.get_stats(e.q(), first, MODEL).misses == 1
    assert e.balance(COMMUNITY_ADDR) == penalty
    assert e.events_of("inference.missed") == [{"request_id": str(rid), "worker": first, "penalty": str(penalty)}]
    assert e.events_of("inference.assigned")[-1]["attempt"] == "1"
    assert total_money(e) == supply
    assert e.balance(USER) == START - 150  # escrow still held
    # the reassigned worker answers: paid as usual
    e.submit(second, rid, tokens=100)
    assert e.request(rid).status == S.REQUEST_STATUS_COMPLETED
    assert e.invariants() == []


def test_second_miss_fails_with_the_exact_refund() -> None:
    e = make_env()
    rid = e.ask(USER, max_tokens=77)  # slot = ceil(1500 x 77 / 1000) = 116 (115.5 rounded up)
    assert e.balance(USER) == START - 116
    e.end_block()
    e.advance(e.request(rid).deadline_height - e.height + 1)
    e.advance(e.request(rid).deadline_height - e.height + 1)
    r = e.request(rid)
    assert (r.status, r.reassignments, r.escrow, r.deadline_height) == (S.REQUEST_STATUS_FAILED, 1, "0", 0)
    assert [a.status for a in r.assignments] == [S.ASSIGNMENT_STATUS_MISSED] * 2
    assert r.failure == "no result after 2 attempt(s)"
    assert e.balance(USER) == START
    assert e.balance(ESCROW_ADDR) == 0
    assert e.events_of("inference.failed") == [{"request_id": str(rid), "reason": r.failure, "refund": "116"}]
    assert len(e.events_of("inference.missed")) == 2
    assert e.k.task_request_ids(e.q(), r.assignments[1].worker) == []
    assert e.invariants() == []


def test_no_reassignment_when_max_reassignments_is_zero() -> None:
    e = make_env(max_reassignments=0)
    rid = e.ask(USER)
    e.end_block()
    e.advance(31)
    assert e.request(rid).status == S.REQUEST_STATUS_FAILED
    assert e.balance(USER) == START


def test_reassignment_without_fresh_workers_fails() -> None:
    e = make_env(["w1"])
    rid = e.ask(USER)
    e.end_block()
    e.advance(31)
    r = e.request(rid)
    assert (r.status, r.failure, r.reassignments) == (S.REQUEST_STATUS_FAILED, "no eligible worker", 1)
    assert e.balance(USER) == START
    assert e.invariants() == []


# --- settlement -----------------------------------------------------------------------
def test_settlement_pays_fee_royalty_and_refunds_exactly() -> None:
    e = make_env()
    rid = e.ask(USER, max_tokens=100)  # price 1500: slot = 150
    e.end_block()
    (w,) = e.assigned(rid)
    wb = e.balance(w)
    e.submit(w, rid, "forty-two", tokens=37)
    fee = 1500 * 37 // 1000  # 55 (55.5 rounded down)
    royalty = fee * 125_000 // 1_000_000  # 6 (6.875 rounded down)
    assert (fee, royalty) == (55, 6)
    res = e.result(1)
    assert (res.worker_paid, res.royalty_paid, res.response, res.height) == ("49", "6", "forty-two", e.height)
    assert e.balance(w) == wb + 49
    assert e.balance(PROVIDER) == 6
    assert e.balance(USER) == START - 55
    assert e.balance(ESCROW_ADDR) == 0
    assert e.events_of("inference.completed") == [
        {
            "request_id": str(rid), "answer_result_id": "1", "worker": w, "quality_ppm": "0", "fidelity_ppm": "0",
            "refund": "95",
        }
    ]  # fmt: skip
    assert e.invariants() == []


def test_fee_is_capped_by_the_slot_escrow() -> None:
    e = make_env()
    e.setup_model("m333", base_price=333, royalty_ppm=0)
    for w in WORKERS:
        worker = e.worker(addr(w))
        worker.models.append("m333")
        e.run(lambda ctx, worker=worker: e.reg.set_worker(ctx, worker))
    rid = e.ask(USER, model_id="m333", max_tokens=10)  # slot = ceil(3.33) = 4
    e.end_block()
    (w,) = e.assigned(rid)
    e.submit(w, rid, tokens=10)  # 333 x 10 // 1000 = 3 <= 4
    assert e.result(1).worker_paid == "3"
    assert e.balance(USER) == START - 3
    assert e.invariants() == []


def test_zero_tokens_pay_nothing() -> None:
    e = make_env()
    rid = e.ask(USER)
    e.end_block()
    e.submit(e.assigned(rid)[0], rid, "", tokens=0)
    assert (e.result(1).worker_paid, e.result(1).royalty_paid) == ("0", "0")
    assert e.balance(USER) == START


# --- n > 1: commit-reveal ---------------------------------------------------------------
def test_swarm_with_partial_commits() -> None:
    e = make_env()
    rid = e.ask(USER, max_tokens=100, redundancy=3)  # slot 150, escrow 450
    e.end_block()
    a, b, c = e.assigned(rid)
    e.commit(a, rid, "four", b"sa")
    e.commit(b, rid, "4", b"sb")
    commit_deadline = e.request(rid).deadline_height
    e.advance(commit_deadline - e.height + 1)  # c never commits
    r = e.request(rid)
    assert r.status == S.REQUEST_STATUS_REVEAL
    assert r.deadline_height == commit_deadline + 10
    assert [x.status for x in r.assignments] == [
        S.ASSIGNMENT_STATUS_COMMITTED,
        S.ASSIGNMENT_STATUS_COMMITTED,
        S.ASSIGNMENT_STATUS_MISSED,
    ]
    assert e.events_of("inference.missed") == [{"request_id": str(rid), "worker": c, "penalty": "1000"}]
    assert e.events_of("inference.reveal") == [
        {"request_id": str(rid), "worker": w, "deadline": str(r.deadline_height)} for w in (a, b)
    ]
    # b reveals first: its result gets the lower id and is the answer
    assert e.reveal(b, rid, "4", b"sb", tokens=20).result_id == 1
    assert e.request(rid).status == S.REQUEST_STATUS_REVEAL
    assert e.reveal(a, rid, "four", b"sa", tokens=40).result_id == 2
    r = e.request(rid)
    assert (r.status, r.answer_result_id) == (S.REQUEST_STATUS_COMPLETED, 1)
    # fees: 30 and 60; royalties 3 and 7 (7.5 down); refund 450 - 90
    assert (e.result(1).worker_paid, e.result(1).royalty_paid) == ("27", "3")
    assert (e.result(2).worker_paid, e.result(2).royalty_paid) == ("53", "7")
    assert e.balance(USER) == START - 90
    assert e.balance(PROVIDER) == 10
    assert e.events_of("inference.completed")[-1]["refund"] == "360"
    assert e.invariants() == []


def test_swarm_all_commit_opens_the_reveal_window_at_once() -> None:
    e = make_env()
    rid = e.ask(USER, redundancy=2)
    e.end_block()
    a, b = e.assigned(rid)
    e.commit(a, rid)
    assert e.request(rid).status == S.REQUEST_STATUS_ASSIGNED
    e.commit(b, rid)
    r = e.request(rid)
    assert (r.status, r.deadline_height) == (S.REQUEST_STATUS_REVEAL, e.height + 10)
    assert e.invariants() == []


def test_reveal_deadline_completes_with_the_results_it_has() -> None:
    e = make_env()
    rid = e.ask(USER, max_tokens=100, redundancy=2)
    e.end_block()
    a, b = e.assigned(rid)
    e.commit(a, rid)
    e.commit(b, rid)
    e.reveal(b, rid, tokens=100)
    e.advance(e.request(rid).deadline_height - e.height + 1)
    r = e.request(rid)
    assert (r.status, r.answer_result_id) == (S.REQUEST_STATUS_COMPLETED, 1)
    assert r.assignments[0].status == S.ASSIGNMENT_STATUS_MISSED  # committed, never revealed
    assert e.worker(a).bond == str(BOND - 1000)
    assert e.balance(USER) == START - 150
    assert e.invariants() == []


def test_no_reveal_at_all_reassigns_then_fails() -> None:
    e = make_env()
    rid = e.ask(USER, max_tokens=100, redundancy=2)
    e.end_block()
    first = e.assigned(rid)
    for w in first:
        e.commit(w, rid)
    e.advance(e.request(rid).deadline_height - e.height + 1)
    r = e.request(rid)
    assert (r.status, r.reassignments) == (S.REQUEST_STATUS_ASSIGNED, 1)
    second = e.assigned(rid)
    assert len(second) == 2 and not set(second) & set(first)
    e.advance(e.request(rid).deadline_height - e.height + 1)  # nobody commits
    assert e.request(rid).status == S.REQUEST_STATUS_FAILED
    assert e.balance(USER) == START
    assert e.invariants() == []


def test_reassignment_takes_no_more_workers_than_slots_still_escrowed() -> None:
    """First attempt: 2 of n = 3 (one slot refunded); the reassignment finds 2 fresh workers out of 2."""
    e = make_env()
    e.run(lambda ctx: _set_capacity(e, ctx, addr("w3"), 0))
    e.run(lambda ctx: _set_capacity(e, ctx, addr("w4"), 0))
    rid = e.ask(USER, max_tokens=100, redundancy=3)
    e.end_block()
    assert len(e.assigned(rid)) == 2 and e.request(rid).escrow == "300"
    e.run(lambda ctx: _set_capacity(e, ctx, addr("w3"), 1000))
    e.run(lambda ctx: _set_capacity(e, ctx, addr("w4"), 1000))
    e.advance(31)
    r = e.request(rid)
    assert (r.reassignments, len(e.assigned(rid)), r.escrow) == (1, 2, "300")
    assert e.invariants() == []


# --- queries ------------------------------------------------------------------------------
def test_worker_tasks_follow_the_phase() -> None:
    e = make_env()
    q = QueryServer(e.k)
    single = e.ask(USER)
    swarm = e.ask(USER, redundancy=2)
    e.end_block()

    def tasks(w: str) -> list[tuple[int, str, int, int]]:
        resp = q.worker_tasks(e.q(), query_pb2.QueryWorkerTasksRequest(worker=w))
        return [(t.request.id, t.action, t.deadline_height, t.attempt) for t in resp.tasks]

    (s,) = e.assigned(single)
    a, b = e.assigned(swarm)
    d = e.request(swarm).deadline_height
    got = {w: tasks(w) for w in {s, a, b}}
    assert (single, "SUBMIT", d, 0) in got[s]
    assert (swarm, "COMMIT", d, 0) in got[a] and (swarm, "COMMIT", d, 0) in got[b]
    e.commit(a, swarm)
    assert (swarm, "COMMIT", d, 0) not in tasks(a)  # committed, waiting for the window: nothing to do
    assert all(t[0] != swarm for t in tasks(a))
    e.commit(b, swarm)
    rd = e.request(swarm).deadline_height
    assert (swarm, "REVEAL", rd, 0) in tasks(a)
    e.reveal(a, swarm)
    assert all(t[0] != swarm for t in tasks(a))
    e.submit(s, single)
    assert all(t[0] != single for t in tasks(s))
    assert e.invariants() == []


def test_requests_query_newest_first_by_requester_and_paginated() -> None:
    e = make_env()
    q = QueryServer(e.k)
    ids = [e.ask(USER if i % 2 == 0 else OTHER) for i in range(5)]  # 1..5; USER: 1, 3, 5
    resp = q.requests(e.q(), query_pb2.QueryRequestsRequest())
    assert [r.id for r in resp.requests] == ids[::-1]
    resp = q.requests(e.q(), query_pb2.QueryRequestsRequest(requester=USER))
    assert [r.id for r in resp.requests] == [5, 3, 1]
    page1 = q.requests(e.q(), query_pb2.QueryRequestsRequest(pagination=base_q.PageRequest(limit=2)))
    assert [r.id for r in page1.requests] == [5, 4]
    page2 = q.requests(
        e.q(), query_pb2.QueryRequestsRequest(pagination=base_q.PageRequest(limit=2, key=page1.pagination.next_key))
    )
    assert [r.id for r in page2.requests] == [3, 2]
    page3 = q.requests(
        e.q(), query_pb2.QueryRequestsRequest(pagination=base_q.PageRequest(limit=2, key=page2.pagination.next_key))
    )
    assert [r.id for r in page3.requests] == [1] and not page3.pagination.next_key


def test_request_and_result_queries() -> None:
    e = make_env()
    q = QueryServer(e.k)
    rid = e.ask(USER, redundancy=2)
    e.end_block()
    a, b = e.assigned(rid)
    e.commit(a, rid, "A")
    e.commit(b, rid, "B")
    e.reveal(b, rid, "B")
    e.reveal(a, rid, "A")
    resp = q.request(e.q(), query_pb2.QueryRequestRequest(id=rid))
    assert resp.request.status == S.REQUEST_STATUS_COMPLETED
    assert [(r.id, r.response) for r in resp.results] == [(1, "B"), (2, "A")]
    assert q.result(e.q(), query_pb2.QueryResultRequest(id=2)).result.worker == a
    assert q.params(e.q(), query_pb2.QueryParamsRequest()).params == make_params()
    for call in (
        lambda: q.request(e.q(), query_pb2.QueryRequestRequest(id=9)),
        lambda: q.result(e.q(), query_pb2.QueryResultRequest(id=9)),
    ):
        with pytest.raises(ChainError) as ei:
            call()
        assert ei.value.kind is ErrNotFound


# --- invariants ------------------------------------------------------------------------------
def test_invariants_catch_a_broken_index_and_stray_escrow() -> None:
    from chain.core.coins import Coins
    from chain.modules.inference import keys

    e = make_env()
    rid = e.ask(USER)
    e.end_block()
    assert e.invariants() == []
    r = e.request(rid)
    e.run(lambda ctx: ctx.kv(keys.NAMESPACE).delete(keys.deadline_key(r.deadline_height, rid)))
    assert [m for m in e.invariants() if m.startswith("inference/indexes")]
    e.run(lambda ctx: ctx.kv(keys.NAMESPACE).set(keys.deadline_key(r.deadline_height, rid), keys.PRESENT))
    e.run(lambda ctx: ctx.kv(keys.NAMESPACE).set(keys.pending_key(rid), keys.PRESENT))
    assert [m for m in e.invariants() if m.startswith("inference/indexes")]
    e.run(lambda ctx: ctx.kv(keys.NAMESPACE).delete(keys.pending_key(rid)))
    assert e.invariants() == []
    e.run(lambda ctx: e.bank.send(ctx, USER, ESCROW_ADDR, Coins({"upoly": 1})))
    (broken,) = e.invariants()
    assert broken.startswith("inference/escrow")
