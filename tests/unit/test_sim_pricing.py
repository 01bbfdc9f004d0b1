"""The `pricing` simulation: a quick run on the real state machine holds its claims, is
deterministic, and its settling measure counts what it says."""

from __future__ import annotations

from pathlib import Path

from sim import pricing
from sim.framework import Options, Verdict


def test_quick_run_holds_its_claims_and_is_deterministic(tmp_path: Path) -> None:
    opts = Options(out=tmp_path, quick=True, plots=False, jobs=1, progress=lambda _: None)
    a, b = pricing.run(opts), pricing.run(opts)
    assert a.table == b.table
    assert [c.verdict for c in a.claims] == [Verdict.HOLDS, Verdict.HOLDS]


def test_the_chain_path_climbs_settles_where_demand_meets_the_target_and_returns() -> None:
    low, high, _ = pricing.QUICK_PHASES
    r = pricing.run_pricing(pricing.QUICK_PHASES)
    assert r.prices[:low] == [pricing.BASE] * low and all(d == 400 for d in r.demand[:low])
    rising = r.prices[low : low + 5]
    assert all(b > a for a, b in zip([pricing.BASE, *rising], rising, strict=False))
    assert 2400 < r.prices[low + high - 1] <= 2500  # exactly five budgets can pay
    assert r.prices[-1] == pricing.BASE
    assert pricing.steps_bounded(r)
    r.prices[low + 3] += 1  # a path the formula does not give is seen
    assert not pricing.steps_bounded(r)


def test_settle_blocks_counts_until_the_price_stays_in_the_band() -> None:
    assert pricing.settle_blocks([100, 100, 100], 0, 3) == 1
    assert pricing.settle_blocks([50, 80, 99, 100, 100], 0, 5) == 3
    assert pricing.settle_blocks([50, 100, 80, 100, 100], 0, 5) == 4  # left the band again at index 2
