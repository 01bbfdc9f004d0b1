"""sim.incentives on the real state machine: a short run is deterministic for a seed, honest
workers out-earn malicious ones, and a malicious worker ends up jailed and slashed."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sim.__main__ import main
from sim.incentives import IncentivesConfig, IncentivesRun, run_incentives


@cache
def short(seed: int) -> IncentivesRun:
    return run_incentives(IncentivesConfig(seed, rounds=25, results_per_round=9, invariant_period=5))


def test_same_seed_same_run() -> None:
    a = short(4)
    b = run_incentives(IncentivesConfig(4, rounds=25, results_per_round=9, invariant_period=5))
    assert (a.trace, a.jails, a.slashed, a.app_hash) == (b.trace, b.jails, b.slashed, b.app_hash)
    assert a.failed == 0


def test_honest_workers_out_earn_malicious_ones() -> None:
    r = short(4)
    assert r.mean_earnings("worker", "honest") > 0
    assert r.mean_earnings("worker", "honest") > r.mean_earnings("worker", "malicious")
    assert r.mean_earnings("validator", "honest") > r.mean_earnings("validator", "lazy")


def test_a_malicious_worker_is_jailed_and_slashed() -> None:
    r = short(4)
    jailed = {n for _, n in r.jails}
    assert jailed & set(r.group("worker", "malicious"))
    assert not jailed & set(r.group("worker", "honest") + r.group("validator", "honest"))
    assert all(r.slashed.get(n, 0) > 0 for n in jailed)


def test_cli_quick_incentives_writes_its_report(tmp_path: Path) -> None:
    assert main(["incentives", "--quick", "--no-plots", "--jobs", "1", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## `incentives`:" in report and "Reward distribution mechanisms ensure fair allocation" in report
    assert (tmp_path / "incentives.json").exists()
