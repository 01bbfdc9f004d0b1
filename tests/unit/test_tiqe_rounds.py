"""TIQE rounds on the real keepers: committee sampling (never the worker, never a jailed
validator, deterministic), aggregation (weighted medians of quality and fidelity, deviations on
both, outliers on either), ratings (the larger deviation of each round), no-reveal slashing and
jailing, the worker's quality and fidelity EMAs, degradation and substitution, unscored rounds."""

from __future__ import annotations

import math

from chain.core.address import from_bech32
from chain.core.sampling import block_seed, sample_weighted
from chain.modules.tiqe.keeper import COMMIT, FINAL, REVEAL
from tests.unit.tiqe_env import COMMUNITY_ADDR, POLY, PPM, USER, Env, addr, block_hash, cons


def one_result(e: Env) -> tuple[int, int]:
    """(request id, result id) of a single-worker request answered in this block."""
    rid = e.answer()
    (res,) = e.result_ids(rid)
    return rid, res


# --- committees ----------------------------------------------------------------------
def test_committee_is_sampled_by_power_times_rating_and_never_holds_the_worker() -> None:
    powers = {"val0": 10, "val1": 40, "val2": 20, "val3": 5, "val4": 25}
    e = Env(validators=powers, workers=("val0",))  # the worker is also val0's operator
    rid, res = one_result(e)
    rd = e.round(res)
    worker = addr("val0")
    assert rd.worker == worker and worker not in e.committee(res)
    cands = sorted(((addr(v), p * 500_000) for v, p in powers.items() if v != "val0"), key=lambda c: from_bech32(c[0]))
    assert e.committee(res) == sample_weighted(block_seed(block_hash(rd.created_height), res), cands, 3)
    assert [x["validator"] for x in e.events_of("tiqe.committee")] == e.committee(res)
    assert e.events_of("tiqe.committee")[0] == {
        "result_id": str(res), "request_id": str(rid), "validator": e.committee(res)[0],
        "deadline": str(rd.created_height + 10),
    }  # fmt: skip
    # the same chain gives the same committee
    again = Env(validators=powers, workers=("val0",))
    _, res2 = one_result(again)
    assert again.committee(res2) == e.committee(res)
    assert e.invariants() == []


def test_jailed_validators_are_never_sampled() -> None:
    e = Env(validators={f"val{i}": 10 for i in range(5)})
    # val1 jailed in this block: still BONDED until staking's end_block, yet already left out
    e.run(lambda ctx: e.m.slashing.jail(ctx, cons("val1"), e.height + 100, "test"))
    _, res = one_result(e)
    assert addr("val1") not in e.committee(res)
    assert len(e.committee(res)) == 3
    # later (unbonding now), still left out
    for _ in range(5):
        _, res = one_result(e)
        assert addr("val1") not in e.committee(res)


def test_committee_is_capped_at_the_candidates() -> None:
    e = Env(validators={"val0": 10, "val1": 10})
    _, res = one_result(e)
    assert sorted(e.committee(res)) == sorted([addr("val0"), addr("val1")])


def test_a_result_nobody_can_score_is_final_at_once_unscored_and_paid() -> None:
    e = Env(validators={"val0": 10}, workers=("val0",))
    user = e.balance(USER)
    rid, res = one_result(e)
    rd = e.round(res)
    assert (rd.phase, rd.scored, rd.passed, rd.quality_ppm, len(rd.members)) == (FINAL, False, True, 0, 0)
    r = e.request(rid)
    assert r.status == 4 and r.answer_result_id == res  # COMPLETED in the submit tx itself
    x = e.result(res)
    # SPEC 3.8 on a fee of 10: worker 7; the committee's 2 has no earner: pool 2 + 1
    assert (x.scored, x.passed, x.worker_paid, x.validators_paid, x.community_paid) == (False, True, "7", "0", "3")
    assert e.balance(USER) == user - 10  # 10 tokens at 1000 per 1000; the rest refunded
    assert e.events_of("tiqe.finalized")[-1]["scored"] == "false"
    assert e.invariants() == []


# --- aggregation and ratings ---------------------------------------------------------------
def test_quality_is_the_power_weighted_median_with_deviations_and_outliers() -> None:
    powers = {"val0": 10, "val1": 30, "val2": 25, "val3": 5}
    e = Env(validators=powers, workers=("val0",))
    rid, res = one_result(e)
    assert sorted(e.committee(res)) == sorted(addr(v) for v in ("val1", "val2", "val3"))
    scores = {addr("val1"): 900_000, addr("val2"): 600_000, addr("val3"): 100_000}
    e.score(res, scores)
    e.end_block()
    rd = e.round(res)
    # weights 30:25:5 (x 500_000): 100k has 5/60, 600k reaches 30/60 -> the median is 600_000
    assert (rd.phase, rd.quality_ppm, rd.scored, rd.passed) == (FINAL, 600_000, True, True)
    by = {m.validator: m for m in rd.members}
    assert by[addr("val1")].deviation_ppm == 300_000 and by[addr("val1")].outlier
    assert by[addr("val2")].deviation_ppm == 0 and not by[addr("val2")].outlier
    assert by[addr("val3")].deviation_ppm == -500_000 and by[addr("val3")].outlier
    assert by[addr("val1")].weight == str(30 * 500_000)
    # one deviation each: N < 2, ratings stay initial but the deviation is kept
    r1 = e.rating(addr("val1"))
    assert (r1.rating_ppm, list(r1.deviations), r1.reveals) == (500_000, [300_000], 1)
    assert e.request(rid).status == 4 and e.result(res).quality_ppm == 600_000
    assert e.events_of("tiqe.finalized")[-1] == {
        "result_id": str(res), "request_id": str(rid), "worker": addr("val0"), "quality_ppm": "600000",
        "fidelity_ppm": str(PPM), "scored": "true", "passed": "true",
    }  # fmt: skip
    assert e.invariants() == []


def test_fidelity_is_a_second_weighted_median_and_an_outlier_on_either_number_earns_nothing() -> None:
    powers = {"val0": 10, "val1": 30, "val2": 25, "val3": 5}
    e = Env(validators=powers, workers=("val0",))
    _, res = one_result(e)
    v1, v2, v3 = (addr(v) for v in ("val1", "val2", "val3"))
    e.score(res, {v1: (900_000, 850_000), v2: (600_000, 900_000), v3: (620_000, 500_000)})
    e.end_block()
    rd = e.round(res)
    # the same weights 30:25:5 for both numbers, each sorted on its own: quality 600k (25) -> 620k
    # (5) reaches 30/60; fidelity 500k (5) -> 850k (30) reaches 35/60
    assert (rd.quality_ppm, rd.fidelity_ppm, rd.scored, rd.passed) == (620_000, 850_000, True, True)
    assert (e.result(res).quality_ppm, e.result(res).fidelity_ppm) == (620_000, 850_000)
    by = {m.validator: m for m in rd.members}
    assert [(by[v].deviation_ppm, by[v].fidelity_deviation_ppm, by[v].outlier) for v in (v1, v2, v3)] == [
        (280_000, 0, True),  # off on quality
        (-20_000, 50_000, False),  # within outlier_ppm on both
        (0, -350_000, True),  # on the quality median, off on fidelity: an outlier all the same
    ]
    # each rating window takes the larger magnitude of the two, signed
    assert [list(e.rating(v).deviations) for v in (v1, v2, v3)] == [[280_000], [50_000], [-350_000]]
    # only the member within outlier_ppm on both numbers earns the committee's share
    assert e.m.tiqe.earners(e.q(), res) == [(v2, 25 * 500_000)]
    assert e.invariants() == []


def test_deviating_on_fidelity_alone_costs_rating() -> None:
    """val3 always hits the quality median but is 300k off on fidelity; val2 is 10k off on quality
    and 20k on fidelity: each round's deviation is the larger one."""
    e = Env(validators={"val0": 10, "val1": 10, "val2": 10, "val3": 10}, workers=("val0",))
    v1, v2, v3 = (addr(v) for v in ("val1", "val2", "val3"))
    for _ in range(3):
        _, res = one_result(e)
        e.score(res, {v1: (700_000, 900_000), v2: (710_000, 880_000), v3: (700_000, 600_000)})
        e.end_block()
        assert (e.round(res).quality_ppm, e.round(res).fidelity_ppm) == (700_000, 880_000)
    assert list(e.rating(v3).deviations) == [-280_000] * 3
    assert list(e.rating(v2).deviations) == [10_000] * 3  # quality 10k vs fidelity 0: the quality one
    assert list(e.rating(v1).deviations) == [20_000] * 3  # quality 0, fidelity +20k
    sigma = math.isqrt(3 * 280_000**2 // 2)
    assert e.rating(v3).rating_ppm == 1_000_000 - sigma
    assert e.rating(v3).rating_ppm < e.rating(v1).rating_ppm < e.rating(v2).rating_ppm
    assert e.invariants() == []


def test_ratings_follow_the_integer_sqrt_formula_and_floor_at_min_rating() -> None:
    e = Env(validators={"val0": 10, "val1": 10, "val2": 10, "val3": 10}, workers=("val0",))
    devs: dict[str, list[int]] = {addr(v): [] for v in ("val1", "val2", "val3")}
    plan = [(500_000, 520_000, 1_000_000), (0, 10_000, 1_000_000), (1_000_000, 990_000, 0)]
    for s1, s2, s3 in plan:
        _, res = one_result(e)
        scores = {addr("val1"): s1, addr("val2"): s2, addr("val3"): s3}
        e.score(res, scores)
        e.end_block()
        q = e.round(res).quality_ppm
        assert q == sorted(scores.values())[1]  # the middle score: val3 never holds half the weight
        for v, s in scores.items():
            devs[v].append(s - q)
    for v, d in devs.items():
        sigma = math.isqrt(sum(x * x for x in d) // (len(d) - 1))
        assert e.rating(v).rating_ppm == max(50_000, 1_000_000 - sigma), v
        assert list(e.rating(v).deviations) == d
    assert e.rating(addr("val3")).rating_ppm == 50_000  # deviations near 10^6: sigma > 10^6, the floor
    assert e.invariants() == []


def test_the_rating_window_keeps_the_last_deviations() -> None:
    e = Env(validators={"val0": 10, "val1": 10, "val2": 10, "val3": 10}, workers=("val0",),
            tiqe={"rating_window": "2"})  # fmt: skip
    for i in range(3):
        _, res = one_result(e)
        e.score(res, {addr("val1"): 500_000, addr("val2"): 500_000, addr("val3"): 500_000 + 1000 * (i + 1)})
        e.end_block()
    r = e.rating(addr("val3"))
    assert list(r.deviations) == [2000, 3000]
    assert r.rating_ppm == 1_000_000 - math.isqrt((2000**2 + 3000**2) // 1)


# --- penalties ---------------------------------------------------------------------------
def test_no_reveal_is_slashed_and_jailed_after_max_misses_in_a_row() -> None:
    # the two revealers hold 40 of the committee's 50 power: above the 2/3 quorum, so scored
    e = Env(validators={"val0": 10, "val1": 20, "val2": 20, "val3": 10}, workers=("val0",))
    lazy = addr("val3")
    for n in (1, 2, 3):
        tokens = int(e.validator("val3").tokens)
        cut = tokens // POLY * POLY * 1_000 // 1_000_000  # slash_fraction_no_reveal of its current power
        _, res = one_result(e)
        assert lazy in e.committee(res)
        for v in (addr("val1"), addr("val2")):
            e.commit(v, res, 800_000)
        e.advance(e.round(res).commit_deadline_height - e.height + 1)  # commit window over
        assert e.round(res).phase == REVEAL
        for v in (addr("val1"), addr("val2")):
            e.reveal(v, res, 800_000)
        e.end_block()
        rd = e.round(res)
        assert rd.phase == FINAL and rd.scored and rd.quality_ppm == 800_000
        ev = e.events_of("tiqe.no_reveal")[-1]
        assert (ev["validator"], ev["slashed"], ev["misses"]) == (lazy, str(cut), str(n))
        assert {m.validator: m.slashed for m in rd.members}[lazy] == str(cut)
        assert int(e.validator("val3").tokens) == tokens - cut
        if n < 3:
            assert e.rating(lazy).misses_in_row == n and not e.validator("val3").jailed
            assert ev["jailed_until"] == "0"
    # the third miss in a row jailed it (until h + no_reveal_jail_blocks) and reset the count
    assert e.validator("val3").jailed
    info = e.m.slashing.get_signing_info(e.q(), cons("val3"))
    assert info is not None and info.jailed_until_height == int(ev["jailed_until"]) > 0
    r = e.rating(lazy)
    assert (r.misses_in_row, r.misses, r.reveals) == (0, 3, 0)
    assert e.invariants() == []
    e.end_block()  # staking's end_block took it out of the bonded set; it is never sampled again
    _, res = one_result(e)
    assert lazy not in e.committee(res)


def test_a_reveal_resets_the_misses_in_a_row() -> None:
    e = Env(validators={"val0": 10, "val1": 10, "val2": 10, "val3": 10}, workers=("val0",))
    v3 = addr("val3")
    for _ in range(2):
        _, res = one_result(e)
        e.advance(e.round(res).commit_deadline_height - e.height + 1)  # nobody commits
        assert e.round(res).phase == FINAL and not e.round(res).scored
    assert e.rating(v3).misses_in_row == 2
    _, res = one_result(e)
    e.score(res, {v: 700_000 for v in e.committee(res)})
    e.end_block()
    assert e.rating(v3).misses_in_row == 0 and e.rating(v3).misses == 2
    _, res = one_result(e)
    e.advance(e.round(res).commit_deadline_height - e.height + 1)
    assert e.rating(v3).misses_in_row == 1 and not e.validator("val3").jailed


def test_the_last_unjailed_validator_is_slashed_but_never_jailed() -> None:
    e = Env(validators={"val1": 10})
    for _ in range(3):
        _, res = one_result(e)
        e.advance(e.round(res).commit_deadline_height - e.height + 1)
    assert e.events_of("tiqe.no_reveal")[-1]["misses"] == "3"
    assert e.events_of("tiqe.no_reveal")[-1]["jailed_until"] == "0"
    assert not e.validator("val1").jailed and e.rating(addr("val1")).misses_in_row == 0
    slashed = sum(int(x["slashed"]) for x in e.events_of("tiqe.no_reveal"))
    assert slashed == 10_000 + 9_000 + 9_000  # 1000 ppm of its power (10, then 9) each time
    assert int(e.validator("val1").tokens) == 10 * POLY - slashed


# --- unscored rounds ------------------------------------------------------------------------
def test_a_round_short_of_the_quorum_is_final_unscored_and_moves_no_rating() -> None:
    """Equal weights, one member silent: the other two hold exactly 2/3, short of the quorum.
    Were they aggregated, the attacker's 0 would tie the honest 10^6 and win the lower median."""
    e = Env(validators={"val0": 10, "val1": 10, "val2": 10, "val3": 10}, workers=("val0",))
    rid, res = one_result(e)
    worker = e.round(res).worker
    before = e.m.registry.get_stats(e.q(), worker, "tiny")
    attacker, honest, silent = addr("val1"), addr("val2"), addr("val3")
    e.commit(attacker, res, 0)
    e.commit(honest, res, 1_000_000)
    e.advance(e.round(res).commit_deadline_height - e.height + 1)
    e.reveal(attacker, res, 0)
    e.reveal(honest, res, 1_000_000)
    e.end_block()
    rd = e.round(res)
    assert (rd.phase, rd.scored, rd.passed, rd.quality_ppm, rd.fidelity_ppm) == (FINAL, False, True, 0, 0)
    assert [m.weight for m in rd.members] == [str(10 * 500_000)] * 3  # every member's weight is recorded
    assert e.events_of("tiqe.no_quorum")[-1] == {
        "result_id": str(res), "request_id": str(rid), "revealed": "2", "members": "3",
    }  # fmt: skip
    # the silent member is penalised; the revealers' ratings and the worker's EMA do not move
    assert [x["validator"] for x in e.events_of("tiqe.no_reveal")] == [silent]
    for v in (attacker, honest):
        r = e.rating(v)
        assert (list(r.deviations), r.reveals, r.rating_ppm) == ([], 0, 500_000)
    after = e.m.registry.get_stats(e.q(), worker, "tiny")
    assert (after.quality_ema_ppm, after.fidelity_ema_ppm) == (before.quality_ema_ppm, before.fidelity_ema_ppm)
    # nobody earns the committee's share: it goes to the community pool with the remainder
    assert e.m.tiqe.earners(e.q(), res) == []
    assert e.result(res).validators_paid in ("", "0")
    assert e.request(rid).status == 4
    assert e.invariants() == []


def test_no_commit_at_all_ends_unscored_after_the_commit_window() -> None:
    e = Env()
    rid, res = one_result(e)
    worker = e.round(res).worker
    quality = e.m.registry.get_stats(e.q(), worker, "tiny").quality_ema_ppm
    deadline = e.round(res).commit_deadline_height
    e.advance(deadline - e.height)
    assert e.round(res).phase == COMMIT and e.request(rid).status == 6  # SCORING
    e.end_block()
    rd = e.round(res)
    assert (rd.phase, rd.scored, rd.passed, rd.quality_ppm) == (FINAL, False, True, 0)
    assert rd.finalized_height == deadline + 1  # closed at the start of the block after the deadline
    assert len(e.events_of("tiqe.no_reveal")) == 3
    assert e.request(rid).status == 4 and e.result(res).worker_paid == "7"  # 70% of the fee of 10
    # unscored: the worker's quality does not move
    assert e.m.registry.get_stats(e.q(), worker, "tiny").quality_ema_ppm == quality
    assert e.invariants() == []


def test_commitments_without_reveals_end_unscored_after_the_reveal_window() -> None:
    e = Env()
    rid, res = one_result(e)
    for v in e.committee(res):
        e.commit(v, res, 300_000)
    rd = e.round(res)
    assert rd.phase == REVEAL
    e.advance(rd.reveal_deadline_height - e.height + 1)
    rd = e.round(res)
    assert (rd.phase, rd.scored, rd.passed) == (FINAL, False, True)
    assert all(m.slashed == "10000" for m in rd.members)
    assert e.request(rid).status == 4
    assert e.invariants() == []


# --- the worker's quality --------------------------------------------------------------------
def test_the_worker_ema_moves_and_a_degraded_worker_is_jailed_and_slashed() -> None:
    e = Env(tiqe={"min_results": "2"})
    worker = e.workers[0]
    stats = e.m.registry.get_stats
    bond = int(e.m.registry.must_worker(e.q(), worker).bond)
    pool = e.balance(COMMUNITY_ADDR)
    _, res = one_result(e)
    e.score(res, {v: 100_000 for v in e.committee(res)})
    e.end_block()
    assert stats(e.q(), worker, "tiny").quality_ema_ppm == 420_000  # 500k + 0.2 x (100k - 500k)
    assert stats(e.q(), worker, "tiny").fidelity_ema_ppm == 600_000  # 500k + 0.2 x (10^6 - 500k)
    assert e.events_of("tiqe.worker_degraded") == []  # 1 result < min_results
    # a low quality is rejected: the worker is unpaid
    assert (e.result(res).passed, e.result(res).worker_paid) == (False, "0")
    fee_shares = [res]
    _, res = one_result(e)
    fee_shares.append(res)
    e.score(res, {v: 100_000 for v in e.committee(res)})
    e.end_block()
    assert stats(e.q(), worker, "tiny").quality_ema_ppm == 356_000  # < min_quality 400k after 2 results
    (ev,) = e.events_of("tiqe.worker_degraded")
    assert e.events_of("tiqe.worker_substituted") == []  # its fidelity is fine
    w = e.m.registry.must_worker(e.q(), worker)
    slashed = bond * 50_000 // 1_000_000
    assert ev == {
        "result_id": str(res), "worker": worker, "model_id": "tiny", "quality_ema_ppm": "356000",
        "slashed": str(slashed), "jailed_until": str(e.height + 20),
    }  # fmt: skip
    # aggregated at the start of this block: jailed for worker_jail_blocks (localnet 20) from here
    assert w.jailed_until_height == e.height + 20 and int(w.bond) == bond - slashed
    # the pool also holds each rejected result's committee and pool shares (SPEC 3.8)
    to_pool = sum(int(e.result(x).community_paid) for x in fee_shares)
    assert to_pool == 2 * 3  # of a fee of 10: pool 1, and the committee's 2 rounds to 0 for each of 3 members
    assert e.balance(COMMUNITY_ADDR) == pool + slashed + to_pool
    # jailed: the next request finds no worker
    rid = e.ask()
    e.end_block()
    assert e.request(rid).status == 5  # FAILED
    assert e.invariants() == []


# --- the worker's fidelity ---------------------------------------------------------------------
def test_a_worker_is_jailed_on_fidelity_alone_while_its_results_pass_and_are_paid() -> None:
    """Good answers, unlike the registered model's: quality passes and pays every result, the
    fidelity EMA falls below min_fidelity_ppm after min_results -> jailed, slashed 10%."""
    e = Env(tiqe={"min_results": "2"})
    worker = e.workers[0]
    stats = e.m.registry.get_stats
    assert (stats(e.q(), worker, "tiny").quality_ema_ppm, stats(e.q(), worker, "tiny").fidelity_ema_ppm) == (
        500_000, 500_000
    )  # both EMAs start at initial_quality_ppm
    bond = int(e.m.registry.must_worker(e.q(), worker).bond)
    pool = e.balance(COMMUNITY_ADDR)
    results = []
    for _ in range(2):
        _, res = one_result(e)
        results.append(res)
        e.score(res, {v: (900_000, 100_000) for v in e.committee(res)})
        e.end_block()
    s = stats(e.q(), worker, "tiny")
    # quality 500k -> 580k -> 644k; fidelity 500k -> 420k -> 356k (< 400k after 2 results)
    assert (s.quality_ema_ppm, s.fidelity_ema_ppm, s.results) == (644_000, 356_000, 2)
    for res in results:  # fidelity never decides pass/fail or payment
        x = e.result(res)
        assert (x.quality_ppm, x.fidelity_ppm, x.passed, x.worker_paid) == (900_000, 100_000, True, "7")
        assert e.round(res).passed
    assert e.events_of("tiqe.worker_degraded") == []
    (ev,) = e.events_of("tiqe.worker_substituted")
    slashed = bond * 100_000 // 1_000_000  # slash_fraction_substitution_ppm
    assert ev == {
        "result_id": str(results[1]), "worker": worker, "model_id": "tiny", "fidelity_ema_ppm": "356000",
        "slashed": str(slashed), "jailed_until": str(e.height + 20), "reason": "tiqe fidelity: substitution suspected",
    }  # fmt: skip
    w = e.m.registry.must_worker(e.q(), worker)
    assert w.jailed_until_height == e.height + 20 and int(w.bond) == bond - slashed
    (jailed,) = e.events_of("registry.worker_jailed")
    assert jailed["reason"] == "tiqe fidelity: substitution suspected"
    assert e.balance(COMMUNITY_ADDR) == pool + slashed + sum(int(e.result(x).community_paid) for x in results)
    rid = e.ask()  # jailed: the next request finds no worker
    e.end_block()
    assert e.request(rid).status == 5
    assert e.invariants() == []


def _both_rules_fire(tiqe: dict[str, str]) -> tuple[Env, str, int, int]:
    """Two results of quality 100k and fidelity 100k with min_results 2: (env, worker, its bond
    before, the second result id)."""
    e = Env(tiqe={"min_results": "2", **tiqe})
    worker = e.workers[0]
    bond = int(e.m.registry.must_worker(e.q(), worker).bond)
    res = 0
    for _ in range(2):
        _, res = one_result(e)
        e.score(res, {v: (100_000, 100_000) for v in e.committee(res)})
        e.end_block()
    return e, worker, bond, res


def test_both_rules_in_one_round_jail_once_and_slash_once_by_the_larger_fraction() -> None:
    e, worker, bond, res = _both_rules_fire({})
    slashed = bond * 100_000 // 1_000_000  # substitution's 10% > degradation's 5%
    assert [x["amount"] for x in e.events_of("registry.worker_slashed")] == [str(slashed)]
    assert [x["reason"] for x in e.events_of("registry.worker_jailed")] == ["tiqe fidelity: substitution suspected"]
    (deg,) = e.events_of("tiqe.worker_degraded")
    (sub,) = e.events_of("tiqe.worker_substituted")
    assert (deg["slashed"], sub["slashed"]) == ("0", str(slashed))  # the amount once, on the rule that slashed
    assert deg["jailed_until"] == sub["jailed_until"] == str(e.height + 20)
    assert (deg["result_id"], deg["quality_ema_ppm"], sub["fidelity_ema_ppm"]) == (str(res), "356000", "356000")
    assert int(e.m.registry.must_worker(e.q(), worker).bond) == bond - slashed
    assert e.invariants() == []


def test_both_rules_with_equal_fractions_slash_for_degradation() -> None:
    e, worker, bond, _ = _both_rules_fire({"slash_fraction_substitution_ppm": "50000"})
    slashed = bond * 50_000 // 1_000_000
    assert [x["reason"] for x in e.events_of("registry.worker_slashed")] == ["tiqe quality degradation"]
    (deg,) = e.events_of("tiqe.worker_degraded")
    (sub,) = e.events_of("tiqe.worker_substituted")
    assert (deg["slashed"], sub["slashed"]) == (str(slashed), "0")
    assert int(e.m.registry.must_worker(e.q(), worker).bond) == bond - slashed


def test_the_fidelity_ema_uses_its_own_alpha_and_threshold() -> None:
    e = Env(tiqe={"min_results": "1", "fidelity_alpha_ppm": "500000", "min_fidelity_ppm": "0"})
    worker = e.workers[0]
    _, res = one_result(e)
    e.score(res, {v: (800_000, 0) for v in e.committee(res)})
    e.end_block()
    s = e.m.registry.get_stats(e.q(), worker, "tiny")
    assert (s.quality_ema_ppm, s.fidelity_ema_ppm) == (560_000, 250_000)  # alphas 0.2 and 0.5
    # min_fidelity_ppm 0: no EMA is below it, nobody is jailed
    assert e.events_of("tiqe.worker_substituted") == []
    assert e.m.registry.must_worker(e.q(), worker).jailed_until_height == 0
