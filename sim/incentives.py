"""Simulation `incentives`: do rewards follow quality, and do bad strategies pay? (PolyLink, SPEC §3.8)

Set-up: nine workers and nine validators, three of each class, equal bonds
(every worker 1000 POLY, every validator 100 POLY self-bond, commission 0):

* workers: honest (answers of true quality ~ N(850k, 50k) ppm), lazy (a cheap
  model: ~ N(450k, 80k)) and malicious (garbage: ~ N(100k, 50k));
* validators: honest (score = truth + N(0, 50k)), lazy (commits a score to
  every task and never reveals it: the free rider who wants the committee
  share without the work; it sends MsgUnjail as soon as its jail period is
  over, to get its emission back) and malicious (a uniform random score).

Every round (one block) a user asks `RESULTS_PER_ROUND` single-worker
requests; everything else is the chain's own doing with its default params:
inference assigns each request to an eligible worker by bond x quality EMA,
tiqe draws a committee of 3 by power x rating, aggregates the revealed scores
(weighted median), jails and slashes a degraded worker (quality EMA <
min_quality_ppm after min_results) and slashes (then jails, after max_misses
in a row) a validator that does not reveal; rewards splits each fee (70%
worker unless the result was rejected, 20% the committee members within
outlier_ppm of the final quality by power x rating, the rest the community
pool) and pays every bonded validator its part of the block emission.

Earnings of an actor after round r = (its bank balance + its bond) now -
the same after the set-up block, read through the bank, registry (worker
bond) and staking (validator tokens) queries: fees and emission in, its own
tx fees and slashes out. Jails are read from the tiqe events.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from google.protobuf.message import Message
from polylink.bank.v1 import query_pb2 as bank_q
from polylink.registry.v1 import query_pb2 as reg_q
from polylink.slashing.v1 import query_pb2 as slash_q
from polylink.slashing.v1 import tx_pb2 as slash_tx
from polylink.staking.v1 import query_pb2 as staking_q

from chain.core.coins import BOND_DENOM
from sim.actors import Actor, ScoreFn, Scorer, User, Worker, clip_ppm, register_model, register_worker
from sim.chain import POLY, SimChain, SimError, events_of
from sim.framework import Claim, Options, Outcome, Simulation, Verdict
from sim.stats import Spread

NAME = "incentives"
TITLE = "Incentive alignment: earnings of honest, lazy and malicious workers and validators (PolyLink)"
CLASSES = ("honest", "lazy", "malicious")
PER_CLASS = 3
# true answer quality (mean, sd) in ppm per worker class
WORKER_QUALITY = {"honest": (850_000, 50_000), "lazy": (450_000, 80_000), "malicious": (100_000, 50_000)}
HONEST_NOISE = 50_000  # an honest validator's scoring noise (sd, ppm)
WORKER_BOND_POLY, VALIDATOR_POLY = 1000, 100
RESULTS_PER_ROUND = 12
MODEL, MAX_TOKENS = "sim-model", 100
PRICE = 10 * POLY  # upoly per 1000 tokens: a full answer's fee is 1 POLY, as much as a block's emission
ROUNDS, SEEDS = 300, (1, 2, 3)
QUICK_ROUNDS, QUICK_SEEDS = 40, (1,)
DRAIN = 5  # blocks after the last request, to settle the rounds still open
INVARIANT_PERIOD = 100
# Verdict rules (fixed before running):
# "honest earns the most": in every seed the honest class's mean earnings per member are above
# each other class's (of the same kind); "penalised": in every seed at least one member of the
# class was jailed or slashed.


def kind_name(kind: str, cls: str, i: int) -> str:
    return f"{kind}-{cls}-{i}"


@dataclass(frozen=True)
class IncentivesConfig:
    seed: int
    rounds: int = ROUNDS
    invariant_period: int = INVARIANT_PERIOD
    results_per_round: int = RESULTS_PER_ROUND


@dataclass
class IncentivesRun:
    config: IncentivesConfig
    names: dict[str, list[str]] = field(default_factory=dict)  # "worker-honest" -> member names
    # trace[name][r - 1]: the actor's earnings (upoly) after round r
    trace: dict[str, list[int]] = field(default_factory=dict)
    jails: list[tuple[int, str]] = field(default_factory=list)  # (round, name)
    slashed: dict[str, int] = field(default_factory=dict)  # name -> upoly slashed in all
    results: dict[str, int] = field(default_factory=dict)  # worker name -> results finalized
    passed: dict[str, int] = field(default_factory=dict)  # worker name -> results passed
    failed: int = 0  # requests that failed (no eligible worker, timeouts)
    blocks: int = 0
    txs: int = 0
    app_hash: str = ""
    seconds: float = 0.0

    def group(self, kind: str, cls: str) -> list[str]:
        return self.names[f"{kind}-{cls}"]

    def mean_earnings(self, kind: str, cls: str, at: int | None = None) -> float:
        """Mean earnings (POLY) per member of the class after round `at` (default: the end)."""
        names = self.group(kind, cls)
        k = (at or len(self.trace[names[0]])) - 1
        return sum(self.trace[n][k] for n in names) / len(names) / POLY

    def jailed(self, kind: str, cls: str) -> int:
        names = set(self.group(kind, cls))
        return sum(n in names for _, n in self.jails)

    def members_jailed(self, kind: str, cls: str) -> int:
        names = set(self.group(kind, cls))
        return len({n for _, n in self.jails if n in names})

    def penalised(self, kind: str, cls: str) -> bool:
        return self.jailed(kind, cls) > 0 or any(self.slashed.get(n, 0) for n in self.group(kind, cls))


class Operator:
    """A validator: its scorer's messages, and MsgUnjail once it is jailed and may leave."""

    def __init__(self, c: SimChain, scorer: Scorer) -> None:
        self.c, self.scorer, self.name = c, scorer, scorer.name

    def act(self) -> list[Message]:
        out = self.scorer.act()
        a = self.c.address(self.name)
        v = self.c.query("/polylink.staking.v1.Query/Validator", staking_q.QueryValidatorRequest(validator_address=a),
                         staking_q.QueryValidatorResponse).validator  # fmt: skip
        if v.jailed:
            info = self.c.query(
                "/polylink.slashing.v1.Query/SigningInfo", slash_q.QuerySigningInfoRequest(validator_address=a),
                slash_q.QuerySigningInfoResponse,
            ).val_signing_info  # fmt: skip
            if self.c.height + 1 >= info.jailed_until_height:
                out.append(slash_tx.MsgUnjail(validator_address=a))
        return out


def _worker_quality(cls: str, rng: random.Random) -> Callable[[int], int]:
    mu, sd = WORKER_QUALITY[cls]
    return lambda _rid: clip_ppm(rng.gauss(mu, sd))


def _score_fn(cls: str, rng: random.Random, truth: dict[int, int]) -> ScoreFn:
    """What a validator of the class believes an answer deserves (a lazy one commits the truth
    and never reveals it, so its score never counts)."""
    if cls == "honest":
        return lambda t: clip_ppm(truth[t.request_id] + rng.gauss(0, HONEST_NOISE))
    if cls == "lazy":
        return lambda t: truth[t.request_id]
    return lambda _t: rng.randint(0, 10**6)


def run_incentives(cfg: IncentivesConfig) -> IncentivesRun:
    """One run on a fresh chain; deterministic for a config."""
    t0 = time.monotonic()
    run = IncentivesRun(cfg)
    for kind in ("worker", "validator"):
        for cls in CLASSES:
            run.names[f"{kind}-{cls}"] = [kind_name(kind, cls, i) for i in range(PER_CLASS)]
    workers = [n for cls in CLASSES for n in run.group("worker", cls)]
    validators = [n for cls in CLASSES for n in run.group("validator", cls)]
    c = SimChain(
        seed=cfg.seed, validators={n: VALIDATOR_POLY for n in validators}, accounts=["user", "provider", *workers],
        invariant_period=cfg.invariant_period,
    )  # fmt: skip
    capacity = 100 * MAX_TOKENS * cfg.results_per_round
    c.block([
        c.tx("provider", [register_model(c, "provider", MODEL, PRICE)]),
        *(c.tx(w, [register_worker(c, w, MODEL, capacity, WORKER_BOND_POLY)]) for w in workers),
    ])  # fmt: skip
    user = User(c, "user", MODEL, MAX_TOKENS, max_price=PRICE)
    actors: list[Actor] = []
    truth: dict[int, int] = {}  # request id -> true quality, over all workers
    for cls in CLASSES:
        for n in run.group("worker", cls):
            w = Worker(c, n, _worker_quality(cls, random.Random(f"{NAME}/{cfg.seed}/{n}")), MAX_TOKENS)
            w.answered = truth  # one shared map: request ids are unique
            actors.append(w)
    for cls in CLASSES:
        for n in run.group("validator", cls):
            rng = random.Random(f"{NAME}/{cfg.seed}/{n}")
            scorer = Scorer(c, n, _score_fn(cls, rng, truth), rng, reveals=cls != "lazy")
            actors.append(Operator(c, scorer))
    base = {n: _holdings(c, n, n in workers) for n in [*workers, *validators]}
    run.trace = {n: [] for n in base}
    by_address = {c.address(n): n for n in base}
    total = cfg.rounds + DRAIN
    for rnd in range(1, total + 1):
        txs = [c.tx("user", user.ask(cfg.results_per_round))] if rnd <= cfg.rounds else []
        for actor in actors:
            msgs = actor.act()
            if msgs:
                txs.append(c.tx(actor.name, msgs))
        r = c.block(txs)
        for ev in events_of(r, "tiqe.worker_degraded"):
            n = by_address[ev["worker"]]
            run.jails.append((rnd, n))
            run.slashed[n] = run.slashed.get(n, 0) + int(ev["slashed"])
        for ev in events_of(r, "tiqe.no_reveal"):
            n = by_address[ev["validator"]]
            run.slashed[n] = run.slashed.get(n, 0) + int(ev["slashed"])
            if int(ev["jailed_until"]):
                run.jails.append((rnd, n))
        for ev in events_of(r, "tiqe.finalized"):
            n = by_address[ev["worker"]]
            run.results[n] = run.results.get(n, 0) + 1
            run.passed[n] = run.passed.get(n, 0) + (ev["passed"] == "true")
        run.failed += len(events_of(r, "inference.failed"))
        for n, b in base.items():
            run.trace[n].append(_holdings(c, n, n in workers) - b)
    broken = c.invariants()
    if broken:
        raise SimError(f"invariants broken: {broken}")
    run.blocks, run.txs, run.app_hash = c.height, c.txs_sent, c.app.app_hash.hex()
    run.seconds = time.monotonic() - t0
    return run


def _holdings(c: SimChain, name: str, worker: bool) -> int:
    """upoly the actor holds: bank balance plus its worker bond or its validator's tokens."""
    a = c.address(name)
    bal = c.query("/polylink.bank.v1.Query/Balance", bank_q.QueryBalanceRequest(address=a, denom=BOND_DENOM),
                  bank_q.QueryBalanceResponse).balance.amount  # fmt: skip
    if worker:
        bond = c.query("/polylink.registry.v1.Query/Worker", reg_q.QueryWorkerRequest(address=a),
                       reg_q.QueryWorkerResponse).worker.bond  # fmt: skip
    else:
        bond = c.query("/polylink.staking.v1.Query/Validator", staking_q.QueryValidatorRequest(validator_address=a),
                       staking_q.QueryValidatorResponse).validator.tokens  # fmt: skip
    return int(bal) + int(bond or 0)


def run_all(configs: Sequence[IncentivesConfig], jobs: int) -> list[IncentivesRun]:
    if jobs <= 1 or len(configs) <= 1:
        return [run_incentives(cfg) for cfg in configs]
    with ProcessPoolExecutor(max_workers=min(jobs, len(configs))) as pool:
        return list(pool.map(run_incentives, configs))


# --- the simulation ---------------------------------------------------------------
def _honest_first(runs: Sequence[IncentivesRun], kind: str) -> bool:
    return all(
        r.mean_earnings(kind, "honest") > max(r.mean_earnings(kind, cls) for cls in CLASSES[1:]) for r in runs
    )


def _earn_fig(runs: Sequence[IncentivesRun], kind: str) -> str:
    return "; ".join(f"{cls} {Spread.of([r.mean_earnings(kind, cls) for r in runs])}" for cls in CLASSES)


def run(opts: Options) -> Outcome:
    t0 = time.monotonic()
    seeds, rounds = (QUICK_SEEDS, QUICK_ROUNDS) if opts.quick else (SEEDS, ROUNDS)
    opts.progress(
        f"  {len(seeds)} runs: seeds {list(seeds)}, {rounds} rounds of {RESULTS_PER_ROUND} requests; "
        f"{PER_CLASS} workers and {PER_CLASS} validators per class; {opts.jobs} processes"
    )
    runs = run_all([IncentivesConfig(s, rounds) for s in seeds], opts.jobs)
    table = [[
        "class", "earnings / member, POLY (mean ± sd [min, max] over seeds)",
        "jail events (members jailed), all seeds", "slashed, POLY (all seeds)", "results passed / finalized",
    ]]  # fmt: skip
    for kind in ("worker", "validator"):
        for cls in CLASSES:
            names = [n for r in runs for n in r.group(kind, cls)]
            members = [(r, n) for r in runs for n in r.group(kind, cls)]
            slashed = sum(r.slashed.get(n, 0) for r, n in members) / POLY
            done = "-"
            if kind == "worker":
                done = f"{sum(r.passed.get(n, 0) for r, n in members)} / {sum(r.results.get(n, 0) for r, n in members)}"
            table.append([
                f"{kind} {cls} (x{len(names) // len(runs)})",
                str(Spread.of([r.mean_earnings(kind, cls) for r in runs])),
                f"{sum(r.jailed(kind, cls) for r in runs)} ({sum(r.members_jailed(kind, cls) for r in runs)})",
                f"{slashed:.2f}",
                done,
            ])  # fmt: skip
    bad = [(k, cls) for k in ("worker", "validator") for cls in CLASSES[1:]]
    penalised = {(k, cls): all(r.penalised(k, cls) for r in runs) for k, cls in bad}
    never = [f"{cls} {k}s" for (k, cls), ok in penalised.items() if not ok]
    earn_less = _honest_first(runs, "worker") and _honest_first(runs, "validator")
    claims = [
        Claim(
            "PolyLink, key results",
            "Reward distribution mechanisms ensure fair allocation based on model quality scores and validator "
            "stakes, with results validating the effectiveness of the incentive model.",
            f"earnings per worker after {rounds} rounds (POLY): {_earn_fig(runs, 'worker')}",
            Verdict.HOLDS if _honest_first(runs, "worker") else Verdict.FAILS,
            "holds if, in every seed, the honest workers' mean earnings exceed the lazy and the malicious ones'",
        ),
        Claim(
            "SPEC §3.8, §3.6 (committee share; outliers)",
            "committee `validator_share_ppm` (200_000), split among revealers with |d_i| <= outlier_ppm by power "
            "x rating [...] |d_i| > `outlier_ppm` earns no validator reward for that result.",
            f"earnings per validator after {rounds} rounds (POLY): {_earn_fig(runs, 'validator')}",
            Verdict.HOLDS if _honest_first(runs, "validator") else Verdict.FAILS,
            "holds if, in every seed, the honest validators' mean earnings exceed the lazy and the malicious ones'",
        ),
        Claim(
            "SPEC §3.6 (penalties), read as: lazy and malicious actors earn less and are jailed or slashed",
            "a committee member that does not reveal is slashed `slash_fraction_no_reveal` and takes a miss; "
            "`max_misses` misses in a row jail it. [...] After >= `min_results`, ema < `min_quality_ppm` -> worker "
            "jailed for `worker_jail_blocks` and slashed `slash_fraction_degradation`",
            f"earn less than the honest class of their kind in every seed: {'yes' if earn_less else 'no'}; "
            "penalised (jailed or slashed) in every seed: "
            + ", ".join(f"{cls} {k}s {'yes' if ok else 'no'}" for (k, cls), ok in penalised.items()),
            Verdict.HOLDS if earn_less and not never else Verdict.PARTLY if earn_less else Verdict.FAILS,
            "holds if all four classes earn less than the honest one and each is jailed or slashed in every "
            "seed; partly if they all earn less but some class is never penalised; else does not hold",
        ),
    ]
    figures = []
    if opts.plots:
        from sim import plots  # matplotlib only where figures are drawn

        total = rounds + DRAIN
        panels = {
            f"{kind}s": {
                cls: [[sum(r.trace[n][k] for n in r.group(kind, cls)) / PER_CLASS / POLY for r in runs]
                      for k in range(total)]
                for cls in CLASSES
            }
            for kind in ("worker", "validator")
        }  # fmt: skip
        jails = {
            f"{kind}s": {
                cls: sorted({rnd for r in runs for rnd, n in r.jails if n in r.group(kind, cls)}) for cls in CLASSES
            }
            for kind in ("worker", "validator")
        }
        figures.append(plots.class_earnings(
            opts.out / "incentives_earnings.png", panels, jails,
            f"Cumulative earnings per member by class (mean, min-max over seeds {list(seeds)}); ticks: jails",
        ))  # fmt: skip
    r0 = runs[0]
    notes = [
        f"{PER_CLASS} workers per class (bond {WORKER_BOND_POLY} POLY each; true quality ~ N(mean, sd) ppm: "
        + ", ".join(f"{cls} ({m // 1000}k, {s // 1000}k)" for cls, (m, s) in WORKER_QUALITY.items())
        + f") and {PER_CLASS} validators per class ({VALIDATOR_POLY} POLY each, commission 0): honest score truth "
        f"+ N(0, {HONEST_NOISE // 1000}k); lazy commit and never reveal (and unjail as soon as allowed); malicious "
        f"score uniformly at random. {RESULTS_PER_ROUND} requests per round (block) of {MAX_TOKENS} tokens at "
        f"{PRICE // POLY} POLY per 1000 tokens (1 POLY a result; royalty 0); the chain's default params "
        "(block_reward 1 POLY, committee_size 3, pass_ppm 500k, min_quality_ppm 400k, jails of 100 blocks).",
        "Earnings = (bank balance + worker bond or validator tokens) minus the same after the set-up block: "
        "fees and emission in, own tx fees and slashes out. Jails from tiqe.worker_degraded and tiqe.no_reveal "
        "events; a lazy validator is slashed on every missed reveal and jailed after max_misses in a row.",
        f"A {r0.config.rounds}-round run: {r0.blocks} blocks, {r0.txs} signed txs; "
        f"{sum(r.failed for r in runs)} requests failed in all runs; invariants asserted every "
        f"{INVARIANT_PERIOD} blocks and at the end; {sum(r.seconds for r in runs):.0f} s of run time in all.",
        "What the chain does here: a degraded worker is jailed and slashed again for each of its results that "
        "finalizes while its quality EMA is below min_quality_ppm, the ones already in flight when it was jailed "
        "included (hence more jail events than jail periods), so its losses come in bursts. A validator scoring at "
        "random is never slashed or jailed: SPEC's only sanction for an outlier is no committee reward for that "
        "result (and a lower rating, so fewer committee seats); it keeps its full emission, which is why it still "
        "earns about 60% of what an honest one does, and why the penalty claim only partly holds.",
    ]
    return Outcome(NAME, TITLE, claims, table, figures, notes, time.monotonic() - t0)


SIMULATION = Simulation(NAME, TITLE, run)
