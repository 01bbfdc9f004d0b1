"""The `sybil` simulation: a quick run, the state machine against the formula, the ticket's effect."""

from __future__ import annotations

import itertools
from pathlib import Path

from sim import sybil
from sim.chain import POLY
from sim.framework import Options, Verdict


def test_quick_run_is_deterministic(tmp_path: Path) -> None:
    opts = Options(out=tmp_path, quick=True, plots=False, jobs=1, progress=lambda _: None)
    a, b = sybil.run(opts), sybil.run(opts)
    assert a.table == b.table
    assert [c.figure for c in a.claims] == [c.figure for c in b.claims]
    assert a.claims[0].verdict == Verdict.HOLDS


def test_state_machine_matches_formula() -> None:
    for ticket in (0, sybil.CLAIM_TICKET):
        r = sybil.run_chain(10, ticket, 3)
        assert r.seats == [5, 5, 5]  # N = 10: the swarm is the whole network
        assert r.measured == r.formula == 3 * sybil.request_profit(5, 0, 10, ticket)
        assert r.measured == round(3 * sybil.expected_profit(10, ticket))
        assert r.forfeited == 3 * 5 * ticket


def test_profit_decreases_with_ticket() -> None:
    for n in sybil.SIZES:
        for p in sybil.P_PASS:
            ys = [sybil.expected_profit(n, t, p) for t in sybil.TICKETS]
            assert all(b < a for a, b in itertools.pairwise(ys))
    assert sybil.break_even(100) is None  # honest validators: no ticket makes garbage pay
    be = sybil.break_even(100, 0.05)
    assert be is not None and 0 < be < 2 * POLY
    assert abs(sybil.expected_profit(100, round(be), 0.05)) < 1e-3 * POLY
