"""inference with tiqe bound: SCORING until every result has its verdict, the swarm's best answer
(argmax quality, ties by the higher fidelity, then by worker address bytes), passed results paid,
rejected ones refunded, and `finalize_result` refusing what it must never see."""

from __future__ import annotations

import pytest
from polylink.inference.v1 import types_pb2 as inf_types

from chain.core.address import from_bech32
from chain.modules.inference.keeper import InferenceKeeper
from tests.unit.tiqe_env import ESCROW_ADDR, USER, Env

SCORING = inf_types.REQUEST_STATUS_SCORING
COMPLETED = inf_types.REQUEST_STATUS_COMPLETED


def score_round(e: Env, res: int, score: int, fidelity: int = 1_000_000) -> None:
    e.score(res, {v: (score, fidelity) for v in e.committee(res)})


def test_a_swarm_answer_is_the_best_quality_and_only_passed_results_are_paid() -> None:
    e = Env(workers=("w0", "w1", "w2"))
    user = e.balance(USER)
    rid = e.answer({e.workers[0]: "four", e.workers[1]: "4", e.workers[2]: "IV"}, redundancy=3)
    r = e.request(rid)
    # 3 slots of 100, plus each worker's swarm ticket (1% of its slot) locked from its bond at commit
    assert r.status == SCORING and r.answer_result_id == 0 and r.escrow == "303"
    assert [a.ticket for a in r.assignments] == ["1", "1", "1"]
    res = e.result_ids(rid)
    assert len(res) == 3 and all(len(e.committee(x)) == 3 for x in res)
    worker = {x: e.result(x).worker for x in res}
    bonds = {x: int(e.m.registry.must_worker(e.q(), worker[x]).bond) for x in res}
    assert e.balance(ESCROW_ADDR) == 303  # nothing settled while scoring
    qualities = dict(zip(res, (650_000, 300_000, 800_000), strict=True))
    # two rounds finish: the request keeps waiting for the third
    for x in res[:2]:
        score_round(e, x, qualities[x])
    e.end_block()
    assert e.request(rid).status == SCORING and e.balance(ESCROW_ADDR) == 303
    assert (e.result(res[1]).scored, e.result(res[1]).passed) == (True, False)
    before = {x: e.balance(worker[x]) for x in res}
    score_round(e, res[2], qualities[res[2]])
    e.end_block()
    r = e.request(rid)
    assert r.status == COMPLETED and r.answer_result_id == res[2]  # 800_000 is the best
    assert [e.result(x).quality_ppm for x in res] == [650_000, 300_000, 800_000]
    paid = {x: e.balance(worker[x]) - before[x] for x in res}
    # SPEC 3.8 on each fee of 10: worker 7 when passed; the rejected result's worker share is refunded
    # and its ticket (1) is forfeited to the winner; the passed ones get their tickets back in their bonds
    assert paid == {res[0]: 7, res[1]: 0, res[2]: 7 + 1}
    r = e.request(rid)
    assert [a.ticket_outcome for a in r.assignments] == [
        "forfeited" if a.worker == worker[res[1]] else "returned" for a in r.assignments
    ]
    after = {x: int(e.m.registry.must_worker(e.q(), worker[x]).bond) for x in res}
    assert after == {res[0]: bonds[res[0]] + 1, res[1]: bonds[res[1]], res[2]: bonds[res[2]] + 1}
    assert [e.result(x).worker_paid for x in res] == ["7", "0", "7"]
    # every result pays its committee (2, here rounded to 0 per member: to the pool) and the pool (1)
    assert [e.result(x).community_paid for x in res] == ["3", "3", "3"]
    assert e.balance(USER) == user - 300 + (300 - 23)
    assert e.balance(ESCROW_ADDR) == 0 and r.escrow == "0"
    assert e.events_of("inference.completed")[-1] == {
        "request_id": str(rid), "answer_result_id": str(res[2]), "worker": worker[res[2]],
        "quality_ppm": "800000", "fidelity_ppm": "1000000", "refund": "277",
    }  # fmt: skip
    assert e.invariants() == []


def test_equal_qualities_and_fidelities_pick_the_lower_worker_address() -> None:
    e = Env(workers=("w0", "w1", "w2"))
    rid = e.answer(redundancy=3)
    res = e.result_ids(rid)
    for x in res:
        score_round(e, x, 700_000)
    e.end_block()
    r = e.request(rid)
    best = min(res, key=lambda x: from_bech32(e.result(x).worker))
    assert r.status == COMPLETED and r.answer_result_id == best


def test_equal_qualities_pick_the_higher_fidelity_never_over_a_better_quality() -> None:
    e = Env(workers=("w0", "w1", "w2"))
    rid = e.answer(redundancy=3)
    res = sorted(e.result_ids(rid), key=lambda x: from_bech32(e.result(x).worker))
    # the lowest address ties on quality with lower fidelity: the tie goes to fidelity, not address
    for x, f in zip(res, (600_000, 900_000, 750_000), strict=True):
        score_round(e, x, 700_000, fidelity=f)
    e.end_block()
    r = e.request(rid)
    assert r.status == COMPLETED and r.answer_result_id == res[1]
    assert [e.result(x).fidelity_ppm for x in res] == [600_000, 900_000, 750_000]
    assert e.events_of("inference.completed")[-1]["fidelity_ppm"] == "900000"
    # quality first: a better quality wins over any fidelity
    rid = e.answer(redundancy=3)
    res = sorted(e.result_ids(rid), key=lambda x: from_bech32(e.result(x).worker))
    for x, (q, f) in zip(res, ((700_000, 1_000_000), (700_001, 100_000), (700_000, 999_999)), strict=True):
        score_round(e, x, q, fidelity=f)
    e.end_block()
    assert e.request(rid).answer_result_id == res[1]
    assert e.invariants() == []


def test_unscored_results_pass_and_are_paid() -> None:
    e = Env(workers=("w0", "w1"))
    rid = e.answer(redundancy=2)
    a, b = e.result_ids(rid)
    score_round(e, a, 200_000)  # scored and rejected
    e.advance(e.round(b).commit_deadline_height - e.height + 1)  # b: nobody commits
    r = e.request(rid)
    assert r.status == COMPLETED
    assert (e.result(a).scored, e.result(a).passed, e.result(a).worker_paid) == (True, False, "0")
    assert (e.result(b).scored, e.result(b).passed, e.result(b).worker_paid) == (False, True, "7")
    # the contract's argmax: the rejected 200_000 still beats an unscored 0
    assert r.answer_result_id == a
    assert e.invariants() == []


def test_finalize_result_refuses_what_only_a_bug_would_send() -> None:
    e = Env()
    rid = e.answer()
    (res,) = e.result_ids(rid)
    k = e.m.inference
    with pytest.raises(RuntimeError, match="no result"):
        e.run(lambda ctx: k.finalize_result(ctx, res + 1, quality_ppm=1, fidelity_ppm=1, scored=True))
    with pytest.raises(RuntimeError, match="unscored"):
        e.run(lambda ctx: k.finalize_result(ctx, res, quality_ppm=5, fidelity_ppm=0, scored=False))
    with pytest.raises(RuntimeError, match="unscored"):
        e.run(lambda ctx: k.finalize_result(ctx, res, quality_ppm=0, fidelity_ppm=5, scored=False))
    score_round(e, res, 900_000)
    e.end_block()
    assert e.request(rid).status == COMPLETED
    with pytest.raises(RuntimeError, match="not waiting"):
        e.run(lambda ctx: k.finalize_result(ctx, res, quality_ppm=1, fidelity_ppm=1, scored=True))
    alone = InferenceKeeper(e.m.auth, e.m.bank, e.m.registry)
    with pytest.raises(RuntimeError, match="without a scorer"):
        e.run(lambda ctx: alone.finalize_result(ctx, res, quality_ppm=1, fidelity_ppm=1, scored=True))
