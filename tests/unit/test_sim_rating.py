"""sim.rating on the real state machine: a short run is deterministic for a seed (in other
processes too), the chain scores every result, and the ratings it reports order the
validators by their noise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.chain import SimChain
from sim.rating import RatingConfig, RatingRun, run_rating

ROOT = Path(__file__).resolve().parents[2]
SIGMAS = (20_000, 80_000, 140_000, 200_000)


def tiny(seed: int, rounds: int = 8) -> RatingRun:
    return run_rating(RatingConfig(seed, rounds, sigmas_ppm=SIGMAS, results_per_round=6, invariant_period=1))


def test_a_short_run_scores_everything_and_is_deterministic() -> None:
    a, b = tiny(7), tiny(7)
    assert (a.trace, a.reveals, a.app_hash) == (b.trace, b.reveals, b.app_hash)
    assert len(a.trace) == 8 and all(len(row) == len(SIGMAS) for row in a.trace)
    assert (a.scored, a.failed) == (8 * 6, 0)
    assert sum(a.reveals) == 8 * 6 * 3  # committee_size 3: every member revealed
    assert a.blocks == 1 + 8 + 4  # set-up block, one block per round, 4 more to drain the pipeline
    c = tiny(8)  # another seed: other block hashes, committees and noise
    assert c.trace != a.trace and c.app_hash != a.app_hash


def test_the_same_seed_gives_the_same_chain_in_other_processes() -> None:
    code = (
        "import json; from sim.rating import RatingConfig, run_rating; "
        "r = run_rating(RatingConfig(5, 4, sigmas_ppm=(20_000, 80_000, 140_000, 200_000), results_per_round=6)); "
        "print(json.dumps([r.app_hash, r.trace]))"
    )
    outs = []
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        outs.append(json.loads(p.stdout))
    assert outs[0] == outs[1]
    here = run_rating(RatingConfig(5, 4, sigmas_ppm=SIGMAS, results_per_round=6))
    assert outs[0] == [here.app_hash, here.trace]


def test_the_lowest_noise_validator_does_not_end_with_the_lowest_rating() -> None:
    for seed in (1, 2, 3):
        final = tiny(seed).trace[-1]
        assert final[0] > min(final), (seed, final)
        assert final[0] > final[-1], (seed, final)  # 20k vs 200k noise: far apart


def test_spearman_at_compares_ratings_with_less_noise_is_better() -> None:
    run = RatingRun(RatingConfig(1, 2, sigmas_ppm=(10, 20, 30)))
    run.trace = [[900, 800, 700], [700, 800, 900]]
    assert run.spearman_at(1) == pytest.approx(1.0)  # the least noisy rated highest
    assert run.spearman_at(2) == pytest.approx(-1.0)


def test_sim_chain_blocks_and_invariants() -> None:
    c = SimChain(seed=1, validators={"a": 10, "b": 10}, accounts=["u"])
    assert c.height == 0 and len(c.powers) == 2
    c.block([])
    assert c.height == 1 and c.invariants() == []
    assert c.block_hash(2) != SimChain(seed=2, validators={"a": 10}, accounts=[]).block_hash(2)
