"""Simulation `rating`: do on-chain ratings rank validators by how well they score?
(Fortytwo §3.3.2, figures 3-5.)

Set-up, as in the paper: 10 validators with equal stake (10 POLY each) and
different scoring noise. Each answer has a hidden true quality q* drawn
uniformly from [400k, 900k] ppm (an answer's worth, known only to the
simulation); validator i scores it q* + N(0, sigma_i), sigma_i = 100k, 110k,
..., 190k ppm, rounded and clipped to [0, 10^6]. Neighbours differ by 5-10% of
their noise, so ordering them takes many scores, as in the paper's figures
where 10 rounds give only a rough estimate (a wide grid, 20k..200k, is
ordered almost perfectly within 10 rounds: rho 0.96 for seeds 1-2).

The chain does the rest: one user asks `RESULTS_PER_ROUND` single-worker
requests per block, one worker answers them, the tiqe module draws each result's committee (committee_size 3,
by power x rating, from the block hash), the validators commit and reveal
through signed txs, and tiqe aggregates (weighted median) and updates each
rating (1 - sigma of the last rating_window deviations).

A round is one block's `RESULTS_PER_ROUND` = 10 results: with committees of 3
out of 10 validators, each validator then scores about 3 answers per round,
which is what a Fortytwo agent does in one consensus round (it ranks about
(|A| - 1) / 3 = 3 of the 9 others). Rounds are pipelined (request, answer,
commit, reveal, aggregate in consecutive blocks), so each block carries the
work of four rounds, and "after r rounds" means right after the block whose
BeginBlock closed round r's last request (no later round has been aggregated
by then).

After each round every validator's rating is read back with the tiqe
`Rating` query; Spearman's rho between the ratings and the truth (-sigma_i:
less noise is better) is reported after 10, 100 and 1000 rounds, over a few
seeds (the seed draws the block hashes, hence the committees, the answers'
quality and the noise), with the chain's default tiqe params; and after 10,
100 and 300 rounds with rating_window = 1000 (its upper bound, which holds
about every deviation of 300 rounds, like the paper's sigma over all rounds),
which shows what the default window of 50 deviations costs.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from polylink.tiqe.v1 import query_pb2 as tiqe_q
from polylink.tiqe.v1 import types_pb2 as tiqe_types

from chain.modules.tiqe.params import MAX_RATING_WINDOW, default_params
from sim.actors import Actor, ScoreFn, Scorer, User, Worker, clip_ppm, register_model, register_worker
from sim.chain import SimChain, SimError, events_of
from sim.framework import Claim, Options, Outcome, Simulation, Verdict
from sim.stats import Spread, spearman

NAME = "rating"
TITLE = "Validator ratings vs. scoring noise (Fortytwo figures 3-5)"
VALIDATORS = 10
SIGMAS_PPM = tuple(100_000 + 10_000 * i for i in range(VALIDATORS))
TRUTH_PPM = (400_000, 900_000)
RESULTS_PER_ROUND = 10
CHECKPOINTS = (10, 100, 1000)
SEEDS = (1, 2, 3)
# The first checkpoint is cheap to run and close to the line, so it gets more seeds: rounds
# 1..10 of a 10-round run are exactly those of a longer run with the same seed (later rounds
# are asked, drawn and aggregated only after them).
FIRST_CHECKPOINT_SEEDS = tuple(range(1, 21))
QUICK_ROUNDS, QUICK_SEEDS = 30, (1, 2)
WIDE_WINDOW, WIDE_ROUNDS = MAX_RATING_WINDOW, 300
MODEL, PRICE, MAX_TOKENS = "sim-model", 1000, 10
INVARIANT_PERIOD = 250  # the app asserts every invariant every 250 blocks (each check reads every round)
# When the paper's claims count as holding (fixed before running):
# "a rough estimation" after 10 rounds: mean rho >= 0.564, the one-sided 5% critical value of
# Spearman's rho for n = 10 (an ordering chance alone rarely gives)
ROUGH_RHO = 0.564
GOOD_RHO = 0.9  # ratings order validators by noise after 1000 rounds: mean rho >= 0.9
# "sharpens with rounds": from each checkpoint to the next, mean rho gains >= 0.05 or is
# already >= 0.95 (nothing left to gain)
STEP, SATURATED = 0.05, 0.95


@dataclass(frozen=True)
class RatingConfig:
    seed: int
    rounds: int = 1000
    rating_window: int | None = None  # None: the chain's default
    sigmas_ppm: tuple[int, ...] = SIGMAS_PPM
    results_per_round: int = RESULTS_PER_ROUND
    invariant_period: int = INVARIANT_PERIOD
    verbose: bool = False

    @property
    def window(self) -> int:
        return self.rating_window or default_params().rating_window


@dataclass
class RatingRun:
    config: RatingConfig
    # trace[r - 1][i]: validator i's on-chain rating (ppm) after round r
    trace: list[list[int]] = field(default_factory=list)
    reveals: list[int] = field(default_factory=list)  # per validator, at the end
    scored: int = 0  # results scored by a committee
    failed: int = 0  # requests that failed (none expected)
    blocks: int = 0
    txs: int = 0
    app_hash: str = ""  # hex, after the last block: the same seed gives the same chain
    seconds: float = 0.0  # wall
    cpu_seconds: float = 0.0

    def spearman_at(self, rounds: int) -> float:
        """rho between the ratings after `rounds` rounds and the truth (-sigma)."""
        return spearman([float(x) for x in self.trace[rounds - 1]], [-float(s) for s in self.config.sigmas_ppm])


def run_rating(cfg: RatingConfig) -> RatingRun:
    """One run on a fresh chain; deterministic for a config."""
    t0, cpu0 = time.monotonic(), time.process_time()
    names = [f"val{i}" for i in range(len(cfg.sigmas_ppm))]
    overrides: dict[str, Any] = {}
    if cfg.rating_window is not None:
        overrides["tiqe"] = {"params": {"rating_window": str(cfg.rating_window)}}
    c = SimChain(
        seed=cfg.seed, validators={n: 10 for n in names}, accounts=["user", "worker", "provider"],
        overrides=overrides, invariant_period=cfg.invariant_period,
    )  # fmt: skip
    c.block([
        c.tx("provider", [register_model(c, "provider", MODEL, PRICE)]),
        c.tx("worker", [register_worker(c, "worker", MODEL, capacity=100 * MAX_TOKENS * cfg.results_per_round,
                                        bond_poly=1000)]),
    ])  # fmt: skip
    world = random.Random(f"rating/{cfg.seed}/world")
    user = User(c, "user", MODEL, MAX_TOKENS, max_price=100 * PRICE)
    worker = Worker(c, "worker", lambda _rid: world.randint(*TRUTH_PPM), MAX_TOKENS)
    truth = worker.answered

    def noisy(rng: random.Random, sigma: int) -> ScoreFn:
        return lambda task: clip_ppm(truth[task.request_id] + rng.gauss(0, sigma))

    scorers = []
    for n, sigma in zip(names, cfg.sigmas_ppm, strict=True):
        rng = random.Random(f"rating/{cfg.seed}/{n}")
        scorers.append(Scorer(c, n, noisy(rng, sigma), rng))
    actors: list[Actor] = [worker, *scorers]
    run = RatingRun(cfg)
    round_of: dict[int, int] = {}  # request id -> round
    open_in: dict[int, int] = {}  # round -> requests not closed yet
    asked = done = 0
    while done < cfg.rounds:
        if c.height > cfg.rounds + 50:
            raise SimError(f"stalled: {done} of {cfg.rounds} rounds done at height {c.height}")
        txs = []
        if asked < cfg.rounds:
            txs.append(c.tx("user", user.ask(cfg.results_per_round)))
        for actor in actors:
            msgs = actor.act()
            if msgs:
                txs.append(c.tx(actor.name, msgs))
        r = c.block(txs)
        if asked < cfg.rounds:
            asked += 1
            for ev in events_of(r, "inference.requested"):
                round_of[int(ev["request_id"])] = asked
            open_in[asked] = cfg.results_per_round
        run.scored += sum(ev["scored"] == "true" for ev in events_of(r, "tiqe.finalized"))
        closed = events_of(r, "inference.completed") + events_of(r, "inference.failed")
        run.failed += len(events_of(r, "inference.failed"))
        for ev in closed:
            open_in[round_of[int(ev["request_id"])]] -= 1
        before = done
        while done < asked and open_in[done + 1] == 0:
            done += 1
        if done - before > 1:  # a snapshot must hold exactly the rounds up to its own
            raise SimError(f"rounds {before + 1}..{done} closed in one block {c.height}: the pipeline slipped")
        if done > before:
            run.trace.append([_rating(c, n).rating_ppm for n in names])
            if cfg.verbose and done % 250 == 0:
                print(f"    [{NAME} seed={cfg.seed} window={cfg.window}] round {done}/{cfg.rounds} "
                      f"({time.monotonic() - t0:.1f} s)", flush=True)  # fmt: skip
    broken = c.invariants()
    if broken:
        raise SimError(f"invariants broken: {broken}")
    run.reveals = [int(_rating(c, n).reveals) for n in names]
    run.blocks, run.txs, run.app_hash = c.height, c.txs_sent, c.app.app_hash.hex()
    run.seconds, run.cpu_seconds = time.monotonic() - t0, time.process_time() - cpu0
    return run


def _rating(c: SimChain, name: str) -> tiqe_types.ValidatorRating:
    req = tiqe_q.QueryRatingRequest(validator=c.address(name))
    return c.query("/polylink.tiqe.v1.Query/Rating", req, tiqe_q.QueryRatingResponse).rating


def run_all(configs: Sequence[RatingConfig], jobs: int) -> list[RatingRun]:
    """Independent runs, in `jobs` processes (in this one when jobs <= 1), in config order."""
    if jobs <= 1 or len(configs) <= 1:
        return [run_rating(cfg) for cfg in configs]
    with ProcessPoolExecutor(max_workers=min(jobs, len(configs))) as pool:
        return list(pool.map(run_rating, configs))


# --- the simulation ---------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One set of runs: a rating window (None: the chain's default) and how long they go."""

    window: int | None
    rounds: int

    @property
    def label(self) -> str:
        w = self.window or default_params().rating_window
        return f"rating_window {w}" + (" (default)" if self.window is None else "")


def variants(quick: bool) -> list[Variant]:
    """The chain's default params to 1000 rounds, and the widest window while it still holds
    (about) every deviation: 3 per round, so 1000 deviations last ~330 rounds."""
    if quick:
        return [Variant(None, QUICK_ROUNDS), Variant(WIDE_WINDOW, QUICK_ROUNDS)]
    return [Variant(None, CHECKPOINTS[-1]), Variant(WIDE_WINDOW, WIDE_ROUNDS)]


def checkpoints_for(rounds: int) -> list[int]:
    return sorted({c for c in CHECKPOINTS if c <= rounds} | {rounds})


def _sharpens(rhos: Sequence[float]) -> bool:
    return all(b - a >= STEP or b >= SATURATED for a, b in itertools.pairwise(rhos))


def run(opts: Options) -> Outcome:
    t0 = time.monotonic()
    seeds = QUICK_SEEDS if opts.quick else SEEDS
    vs = variants(opts.quick)
    configs = [RatingConfig(s, v.rounds, v.window, verbose=True) for v in vs for s in seeds]
    short = [] if opts.quick else [
        RatingConfig(s, CHECKPOINTS[0], v.window) for v in vs for s in FIRST_CHECKPOINT_SEEDS if s not in seeds
    ]
    opts.progress(
        f"  {len(configs)} runs: seeds {list(seeds)} x " + ", ".join(f"{v.label} to {v.rounds} rounds" for v in vs)
        + f"; {len(short)} more to {CHECKPOINTS[0]} rounds (seeds {FIRST_CHECKPOINT_SEEDS[0]}-"
        f"{FIRST_CHECKPOINT_SEEDS[-1]}); {RESULTS_PER_ROUND} results per round; "
        f"{opts.jobs} processes"
    )
    runs = run_all([*configs, *short], opts.jobs)
    # the long runs (figures, later checkpoints), and every run that reached a checkpoint
    by = {v: [r for r in runs if r.config.rating_window == v.window and r.config.rounds == v.rounds] for v in vs}
    cps = {v: checkpoints_for(v.rounds) for v in vs}

    def reached(v: Variant, cp: int) -> list[RatingRun]:
        return [r for r in runs if r.config.rating_window == v.window and r.config.rounds >= cp]

    rho = {v: {cp: Spread.of([r.spearman_at(cp) for r in reached(v, cp)]) for cp in cps[v]} for v in vs}
    default, wide = vs
    d, w = rho[default], rho[wide]
    all_cps = sorted(set(cps[default]) | set(cps[wide]))
    table = [["rounds", *(f"rho, {v.label}" for v in vs)]]
    table += [[str(cp), *(str(rho[v][cp]) if cp in rho[v] else "-" for v in vs)] for cp in all_cps]
    first, last, wide_last = cps[default][0], cps[default][-1], cps[wide][-1]

    def fig(v: Variant) -> str:
        return ", ".join(f"{cp}: {rho[v][cp]}" for cp in cps[v])

    claims = [
        Claim(
            "Fortytwo §3.3.2 (figure 3, 10 rounds)",
            "As we observed, even 10 simulation rounds are sufficient to provide a rough estimation of an "
            "agent's ranking ability.",
            f"Spearman rho (on-chain rating vs. truth) after {first} rounds, default params: {d[first]}",
            Verdict.HOLDS if d[first].mean >= ROUGH_RHO else Verdict.FAILS,
            f"holds if the mean rho after {first} rounds is >= {ROUGH_RHO}, the one-sided 5% critical value "
            "for 10 validators",
        ),
        Claim(
            "Fortytwo §3.3.1, eq. 4-5",
            "Nodes with lower values of σi are considered more aligned with the collective decision-making "  # noqa: RUF001
            "process, indicating a higher reliability in their ranking assessments",
            f"rho after {last} rounds, default params: {d[last]}; {wide.label} after {wide_last} rounds: "
            f"{w[wide_last]}",
            _ordering_verdict(d[last].mean, w[wide_last].mean),
            f"holds if the mean rho after {last} rounds with the default params is >= {GOOD_RHO}; partly if "
            f"it is >= {ROUGH_RHO} or only the wide window reaches {GOOD_RHO}",
        ),
        Claim(
            "Fortytwo §3.3.2, figures 3-5 (10, 100, 1000 rounds)",
            "Figure 3: Ranking Estimation Simulation - 10 Rounds [...] Figure 4: [...] - 100 Rounds [...] "
            "Figure 5: [...] - 1000 Rounds [...] This ranking estimation mechanism provides a statistically "
            "sound method for assessing the reliability and accuracy of agents in consensus.",
            f"rho by rounds, {default.label}: {fig(default)}; {wide.label}: {fig(wide)}",
            _verdict(_sharpens([d[cp].mean for cp in cps[default]]), _sharpens([w[cp].mean for cp in cps[wide]])),
            f"read as: the estimate sharpens as rounds accumulate (from each checkpoint to the next the mean "
            f"rho gains >= {STEP} or is already >= {SATURATED}); holds with the default params, partly if only "
            "with the wide window",
        ),
    ]
    figures = []
    if opts.plots:
        from sim import plots  # matplotlib only where figures are drawn

        r0 = by[default][0]
        figures.append(plots.rating_trace(
            opts.out / "rating_trace.png", r0.trace, [f"sigma = {s // 1000}k" for s in r0.config.sigmas_ppm],
            f"On-chain rating of each validator by round (seed {r0.config.seed}, {default.label})",
        ))  # fmt: skip
        curves = {v.label: [[r.spearman_at(k) for r in by[v]] for k in range(1, v.rounds + 1)] for v in vs}
        figures.append(plots.spearman_curve(
            opts.out / "rating_spearman.png", curves, all_cps,
            f"Spearman rho (on-chain rating vs. truth): mean, min-max over seeds {list(seeds)}",
        ))  # fmt: skip
    r0 = by[default][0]
    notes = [
        f"{VALIDATORS} validators, 10 POLY each; scoring noise sigma = "
        f"{', '.join(str(s // 1000) + 'k' for s in SIGMAS_PPM)} ppm; true quality uniform in "
        f"[{TRUTH_PPM[0] // 1000}k, {TRUTH_PPM[1] // 1000}k] ppm; {RESULTS_PER_ROUND} results per round (one "
        f"block); committee_size {default_params().committee_size} (the chain's default; the paper's "
        f"(|A|-1)/3 for 10 agents); seeds {list(seeds)} for the long runs"
        + (f", and seeds {FIRST_CHECKPOINT_SEEDS[0]}-{FIRST_CHECKPOINT_SEEDS[-1]} for the {first}-round "
           "checkpoint." if short else "."),
        f"A {r0.config.rounds}-round run: {r0.blocks} blocks, {r0.txs} signed txs through PrepareProposal, "
        f"FinalizeBlock and Commit; in all runs {sum(r.scored for r in runs)} results scored, "
        f"{sum(r.failed for r in runs)} requests failed; invariants asserted every {INVARIANT_PERIOD} blocks "
        f"and at the end; {sum(r.cpu_seconds for r in runs):.0f} s of CPU in all.",
        f"The default rating_window ({default_params().rating_window} deviations, ~"
        f"{default_params().rating_window // 3} rounds of ~3 scores each) makes a rating a moving estimate: "
        f"once the window is full, more rounds do not sharpen it. The wide variant ({wide.label}, the "
        f"bound) keeps about every deviation up to {wide_last} rounds, as the paper's sigma over all rounds does.",
    ]
    return Outcome(NAME, TITLE, claims, table, figures, notes, time.monotonic() - t0)


def _verdict(default_ok: bool, wide_ok: bool) -> Verdict:
    if default_ok:
        return Verdict.HOLDS
    return Verdict.PARTLY if wide_ok else Verdict.FAILS


def _ordering_verdict(default_rho: float, wide_rho: float) -> Verdict:
    if default_rho >= GOOD_RHO:
        return Verdict.HOLDS
    return Verdict.PARTLY if wide_rho >= GOOD_RHO or default_rho >= ROUGH_RHO else Verdict.FAILS


SIMULATION = Simulation(NAME, TITLE, run)
