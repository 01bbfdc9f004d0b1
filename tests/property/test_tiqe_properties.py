"""Properties of TIQE's verdicts and committees.

- the weighted median is one of the revealed scores, ignores input order, and whoever holds
  less than half the weight cannot move it outside the range of the other (honest) scores,
  wherever it puts its own; with the reveal quorum, an attacker under 1/3 of the committee's
  weight stays inside the honest range on both numbers (quality and fidelity, one set of
  weights) at once;
- a round's rating deviation is the larger-magnitude one of the two, signed (quality on a tie);
  ratings stay in [min_rating, 10^6] for any window of deviations, and each worker EMA stays
  between its old value and the new number;
- committees drawn by the keeper over a fixed, deterministically derived set of block hashes
  never hold the worker or a jailed validator, and each validator's inclusion frequency
  follows successive sampling's exact probabilities for power x rating (5 standard
  deviations; the seeds are fixed, so the test cannot flake);
- random rounds (random scores, commits, reveals, silences) on the real keepers keep every
  invariant, put the quality among the revealed scores and the ratings in bounds.
"""

from __future__ import annotations

import hashlib
import itertools
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.core.address import from_bech32
from chain.core.context import BlockHeader, Context, ExecMode
from chain.core.store import CacheStore
from chain.modules.tiqe.aggregate import PPM, ema_update, has_quorum, rating_deviation, rating_of, weighted_median
from chain.modules.tiqe.keeper import COMMIT, FINAL, REVEAL
from tests.unit.tiqe_env import CHAIN, Env, addr, cons

scores = st.integers(0, PPM)
weights = st.integers(1, 10**15)
addrs = st.binary(min_size=20, max_size=20)


@st.composite
def entries(draw: st.DrawFn, min_size: int = 1) -> list[tuple[int, bytes, int]]:
    raws = draw(st.lists(addrs, min_size=min_size, max_size=12, unique=True))
    return [(draw(scores), a, draw(weights)) for a in raws]


# --- weighted median --------------------------------------------------------------------------
@given(entries(), st.randoms(use_true_random=False))
def test_the_median_is_a_revealed_score_whatever_the_order(es: list[tuple[int, bytes, int]], rnd: object) -> None:
    q = weighted_median(es)
    assert q in {s for s, _, _ in es}
    shuffled = list(es)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert weighted_median(shuffled) == q


@given(entries(), st.data())
def test_a_minority_cannot_move_the_median_outside_the_honest_range(
    honest: list[tuple[int, bytes, int]], data: st.DataObject
) -> None:
    h_weight = sum(w for _, _, w in honest)
    taken = {a for _, a, _ in honest}
    n = data.draw(st.integers(0, 6))
    raws = data.draw(st.lists(addrs.filter(lambda a: a not in taken), min_size=n, max_size=n, unique=True))
    # split at most h_weight - 1 among the adversaries: strictly less than half the total
    budget = data.draw(st.integers(0, h_weight - 1))
    cuts = sorted(data.draw(st.lists(st.integers(0, budget), min_size=max(len(raws) - 1, 0),
                                     max_size=max(len(raws) - 1, 0))))  # fmt: skip
    parts = [b - a for a, b in itertools.pairwise([0, *cuts, budget])] if raws else []
    adversary = [(data.draw(scores), a, w) for a, w in zip(raws, parts, strict=True)]
    q = weighted_median(honest + adversary)
    lo, hi = min(s for s, _, _ in honest), max(s for s, _, _ in honest)
    assert lo <= q <= hi


@given(entries(), st.lists(st.booleans(), min_size=12, max_size=12), st.data())
def test_with_a_quorum_an_attacker_under_a_third_of_the_committee_stays_inside_the_honest_range(
    honest: list[tuple[int, bytes, int]], shows: list[bool], data: st.DataObject
) -> None:
    """Some honest members may not reveal; an attacker holding < 1/3 of the committee's weight
    always reveals. Whenever the round reaches the 2/3 quorum, the median lies within the
    honest revealed scores (the e2e Byzantine tests' claim, for any weights)."""
    taken = {a for _, a, _ in honest}
    h_weight = sum(w for _, _, w in honest)
    # attacker weight a with 3a < h_weight + a, i.e. a < h_weight / 2: under 1/3 of the committee
    a_weight = data.draw(st.integers(0, max((h_weight - 1) // 2, 0)))
    a_addr = data.draw(addrs.filter(lambda a: a not in taken))
    shown = [e for e, show in zip(honest, shows, strict=False) if show]
    revealed = shown + ([(data.draw(scores), a_addr, a_weight)] if a_weight else [])
    committee = h_weight + a_weight
    rev_weight = sum(w for _, _, w in revealed)
    if not shown or not has_quorum(rev_weight, committee, len(revealed), len(honest) + 1, 666_667):
        return
    q = weighted_median(revealed)
    assert min(s for s, _, _ in shown) <= q <= max(s for s, _, _ in shown)


@given(
    st.lists(st.tuples(scores, scores, addrs, weights), min_size=1, max_size=12, unique_by=lambda x: x[2]),
    st.lists(st.booleans(), min_size=12, max_size=12),
    st.tuples(scores, scores),
    st.data(),
)
def test_an_attacker_under_a_third_stays_inside_the_honest_range_on_both_numbers(
    honest: list[tuple[int, int, bytes, int]], shows: list[bool], attack: tuple[int, int], data: st.DataObject
) -> None:
    """Both medians use the same weights (power x rating); the attacker picks any pair, the
    honest members score the two numbers independently. Whenever the quorum holds, the final
    quality lies within the honest revealed qualities and the final fidelity within the honest
    revealed fidelities."""
    taken = {a for _, _, a, _ in honest}
    h_weight = sum(w for _, _, _, w in honest)
    a_weight = data.draw(st.integers(0, max((h_weight - 1) // 2, 0)))  # < 1/3 of the committee
    a_addr = data.draw(addrs.filter(lambda a: a not in taken))
    shown = [e for e, show in zip(honest, shows, strict=False) if show]
    revealed = shown + ([(attack[0], attack[1], a_addr, a_weight)] if a_weight else [])
    rev_weight = sum(w for _, _, _, w in revealed)
    if not shown or not has_quorum(rev_weight, h_weight + a_weight, len(revealed), len(honest) + 1, 666_667):
        return
    q = weighted_median([(qs, a, w) for qs, _, a, w in revealed])
    f = weighted_median([(fs, a, w) for _, fs, a, w in revealed])
    assert min(x[0] for x in shown) <= q <= max(x[0] for x in shown)
    assert min(x[1] for x in shown) <= f <= max(x[1] for x in shown)


# --- ratings and the EMA -------------------------------------------------------------------------
@given(st.integers(-PPM, PPM), st.integers(-PPM, PPM))
def test_the_rating_deviation_is_the_larger_magnitude_signed(dq: int, df: int) -> None:
    d = rating_deviation(dq, df)
    assert abs(d) == max(abs(dq), abs(df))
    assert d == (df if abs(df) > abs(dq) else dq)
    # deviating on either number never costs less than deviating on that number alone
    assert abs(d) >= abs(rating_deviation(dq, 0)) and abs(d) >= abs(rating_deviation(0, df))


@given(
    st.lists(st.integers(-PPM, PPM), max_size=50),
    st.integers(1, PPM),
    st.data(),
)
def test_ratings_stay_within_their_bounds(devs: list[int], min_rating: int, data: st.DataObject) -> None:
    current = data.draw(st.integers(min_rating, PPM))
    r = rating_of(devs, current, min_rating)
    assert min_rating <= r <= PPM
    if len(devs) < 2:
        assert r == current
    if devs and all(d == 0 for d in devs) and len(devs) >= 2:
        assert r == PPM


@given(scores, scores, st.integers(0, PPM))
def test_the_ema_stays_between_the_old_value_and_the_quality(ema: int, q: int, alpha: int) -> None:
    new = ema_update(ema, q, alpha)
    assert min(ema, q) <= new <= max(ema, q)
    assert 0 <= new <= PPM


# --- committees over fixed seeds -----------------------------------------------------------------
POWERS = {"val0": 10, "val1": 40, "val2": 20, "val3": 5, "val4": 25, "val5": 30}
HASHES = [hashlib.sha256(b"tiqe-committee-%d" % i).digest() for i in range(1500)]


def _within(count: int, n: int, p: Fraction) -> bool:
    mean = n * p
    return (count - mean) ** 2 <= 25 * n * p * (1 - p) + 1


def _inclusion(weights: dict[str, int], k: int) -> dict[str, Fraction]:
    """Exact P(included) under successive sampling without replacement, by enumeration."""
    total = sum(weights.values())
    out = dict.fromkeys(weights, Fraction(0))
    for order in itertools.permutations(weights, k):
        p, left = Fraction(1), total
        for a in order:
            p *= Fraction(weights[a], left)
            left -= weights[a]
        for a in order:
            out[a] += p
    return out


def test_committees_follow_power_times_rating_and_skip_the_worker_and_the_jailed() -> None:
    e = Env(validators=POWERS, workers=("val0",))
    e.run(lambda ctx: e.m.slashing.jail(ctx, cons("val5"), e.height + 100, "test"))
    e.end_block()
    worker = addr("val0")
    k = e.m.tiqe
    p = k.get_params(e.q())
    counts = dict.fromkeys((addr(v) for v in POWERS), 0)
    for i, h in enumerate(HASHES):
        ctx = Context(CacheStore(e.store), BlockHeader(CHAIN, e.height, hash=h), ExecMode.FINALIZE)
        cands = k.committee_candidates(ctx)
        rd = k.open_round(ctx, p, cands, 1000 + i, 1, worker, "tiny")
        members = [m.validator for m in rd.members]
        assert len(members) == 3 == len(set(members))
        assert members == [m.validator for m in k.open_round(ctx, p, cands, 1000 + i, 1, worker, "tiny").members]
        for v in members:
            counts[v] += 1
    assert sum(counts.values()) == 3 * len(HASHES)
    assert counts[worker] == 0 and counts[addr("val5")] == 0
    live = {addr(v): POWERS[v] * p.initial_rating_ppm for v in ("val1", "val2", "val3", "val4")}
    assert [a for a, _ in k.committee_candidates(e.q()) if a != worker] == sorted(live, key=from_bech32)
    for v, prob in _inclusion(live, 3).items():
        assert _within(counts[v], len(HASHES), prob), (v, counts[v], float(prob) * len(HASHES))


# --- random rounds on the real keepers ---------------------------------------------------------------
member_plan = st.tuples(st.sampled_from(["reveal", "commit_only", "silent"]), scores, scores)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(member_plan, min_size=3, max_size=3), min_size=1, max_size=4))
def test_random_rounds_keep_invariants_and_bounds(plans: list[list[tuple[str, int, int]]]) -> None:
    e = Env(validators={"val0": 10, "val1": 20, "val2": 30, "val3": 15}, workers=("val0",))
    for plan in plans:
        rid = e.answer()
        (res,) = e.result_ids(rid)
        com = e.committee(res)  # 3, fewer (even 0) once silent validators are jailed
        assert len(com) <= 3
        acts = list(zip(com, plan, strict=False))
        for v, (action, s, f) in acts:
            if action != "silent":
                e.commit(v, res, s, fidelity=f)
        while e.round(res).phase == COMMIT:
            e.end_block()
        for v, (action, s, f) in acts:
            if action == "reveal" and e.round(res).phase == REVEAL:
                e.reveal(v, res, s, fidelity=f)
        for _ in range(20):
            if e.round(res).phase == FINAL:
                break
            e.end_block()
        rd = e.round(res)
        assert rd.phase == FINAL
        revealed = [(s, f) for _, (a, s, f) in acts if a == "reveal"]
        # scored exactly when the revealers hold >= 2/3 of the committee's recorded weight
        ws = {m.validator: int(m.weight) for m in rd.members}
        rev_w = sum(ws[v] for v, (a, _, _) in acts if a == "reveal")
        assert rd.scored == (bool(revealed) and Fraction(rev_w, sum(ws.values())) >= Fraction(666_667, PPM))
        if rd.scored:
            assert rd.quality_ppm in {s for s, _ in revealed} and rd.fidelity_ppm in {f for _, f in revealed}
            for m in rd.members:
                if not m.revealed:
                    continue
                dq, df = m.quality_ppm - rd.quality_ppm, m.fidelity_ppm - rd.fidelity_ppm
                assert (m.deviation_ppm, m.fidelity_deviation_ppm) == (dq, df)
                assert m.outlier == (max(abs(dq), abs(df)) > 200_000)
                assert e.rating(m.validator).deviations[-1] == rating_deviation(dq, df)
        else:
            assert (rd.quality_ppm, rd.fidelity_ppm) == (0, 0)
        assert e.request(rid).status == 4  # COMPLETED
        assert e.invariants() == []
        for r in e.m.tiqe.iterate_ratings(e.q()):
            assert 50_000 <= r.rating_ppm <= PPM
