"""Simulation `pricing`: does the dynamic price follow demand, and how fast does it settle? (SPEC §3.7)

Set-up: one model (base price 1000 upoly per 1000 tokens), two workers of
capacity 500 tokens a block each, so with the default `target_util_ppm`
(50%) the target is 500 tokens a block: five requests of 100 tokens. Users
are price-elastic, as real ones are: user i asks one request a block while
the model's price (read with the pricing `Price` query, as a client would)
is at most its budget, 1000 + 100 x i upoly (i = 0..19), and holds back
otherwise. The demand steps:

- blocks 1..LOW: users 0..3 are active (400 tokens, below the target);
- the next HIGH blocks: all 20 (2000 tokens at the base price, 4x the target);
- the next LOW2 blocks: users 0..3 again.

Workers answer every request, honest validators score every answer
(committees of 1, to keep the run short); everything goes through signed
txs on the real state machine, with every invariant asserted every block.
Read back each block: the price, the demand and the target of its step.

With these budgets the price can hold still only where exactly five users
can pay (demand = target): above 2400 and at most 2500, so it should climb
by 1/8 a block and then hover there, and once the demand steps down it should
fall by 1/8 a block back to the base price.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from polylink.pricing.v1 import query_pb2 as pricing_q

from chain.modules.pricing.formula import next_price
from chain.modules.pricing.params import default_params as pricing_params
from sim.actors import Actor, Scorer, User, Worker, register_model, register_worker
from sim.chain import SimChain, SimError
from sim.framework import Claim, Options, Outcome, Simulation, Verdict

NAME = "pricing"
MODEL = "sim-model"
BASE = 1000  # upoly per 1000 tokens
MAX_TOKENS = 100
WORKER_CAPACITY = 500  # tokens a block, each of two workers
USERS = 20
BUDGET_STEP = 100  # user i pays at most BASE + BUDGET_STEP x i
LOW_USERS = 4
PHASES = (30, 60, 60)  # low, high, low again (blocks)
QUICK_PHASES = (5, 30, 30)
SETTLE_BAND = 0.05  # "settled": within 5% of the phase's final level from then on
VALIDATORS = 4


def budget(i: int) -> int:
    return BASE + BUDGET_STEP * i


@dataclass
class PricingRun:
    phases: tuple[int, int, int]
    prices: list[int] = field(default_factory=list)  # the price after each block's step
    demand: list[int] = field(default_factory=list)  # tokens requested in each block
    target: list[int] = field(default_factory=list)
    held_back: int = 0  # requests users did not send because the price was above their budget
    blocks: int = 0
    txs: int = 0
    seconds: float = 0.0


class ElasticUser(User):
    """Asks one request a block while the current price is within its budget."""

    def __init__(self, c: SimChain, name: str, budget_upoly: int) -> None:
        super().__init__(c, name, MODEL, MAX_TOKENS, max_price=budget_upoly)

    def want(self, price: int) -> list[Message]:
        return self.ask(1) if price <= self.max_price else []


def price_now(c: SimChain) -> tuple[int, int, int]:
    """(price, demand, target) of the model's last step, as the Price query answers."""
    mp = c.query(
        "/polylink.pricing.v1.Query/Price", pricing_q.QueryPriceRequest(model_id=MODEL), pricing_q.QueryPriceResponse
    ).price
    return int(mp.price), mp.demand, mp.target


def run_pricing(phases: tuple[int, int, int]) -> PricingRun:
    t0 = time.monotonic()
    vals = [f"val{i}" for i in range(VALIDATORS)]
    users = [f"user{i}" for i in range(USERS)]
    overrides: dict[str, Any] = {
        "tiqe": {"params": {"committee_size": "1"}},
        "rewards": {"params": {"block_reward": "0"}},
    }
    c = SimChain(seed=7, validators={v: 10 for v in vals}, accounts=[*users, "w0", "w1", "provider"],
                 overrides=overrides, invariant_period=1)  # fmt: skip
    c.block([
        c.tx("provider", [register_model(c, "provider", MODEL, BASE)]),
        c.tx("w0", [register_worker(c, "w0", MODEL, capacity=WORKER_CAPACITY, bond_poly=1000)]),
        c.tx("w1", [register_worker(c, "w1", MODEL, capacity=WORKER_CAPACITY, bond_poly=1000)]),
    ])  # fmt: skip
    buyers = [ElasticUser(c, u, budget(i)) for i, u in enumerate(users)]
    actors: list[Actor] = [Worker(c, w, lambda _rid: 900_000, MAX_TOKENS // 2) for w in ("w0", "w1")]
    actors += [Scorer(c, v, lambda _t: 900_000, random.Random(f"{NAME}/{v}")) for v in vals]
    run = PricingRun(phases)
    low, high, low2 = phases
    for block in range(low + high + low2):
        active = USERS if low <= block < low + high else LOW_USERS
        price, _, _ = price_now(c)
        txs = []
        for b in buyers[:active]:
            msgs = b.want(price)
            if msgs:
                txs.append(c.tx(b.name, msgs))
            else:
                run.held_back += 1
        for actor in actors:
            msgs = actor.act()
            if msgs:
                txs.append(c.tx(actor.name, msgs))
        c.block(txs)
        p, d, t = price_now(c)
        run.prices.append(p)
        run.demand.append(d)
        run.target.append(t)
    broken = c.invariants()
    if broken:
        raise SimError(f"invariants broken: {broken}")
    run.blocks, run.txs, run.seconds = c.height, c.txs_sent, time.monotonic() - t0
    return run


def settle_blocks(prices: list[int], start: int, end: int) -> int:
    """Blocks from `start` until the price stays within SETTLE_BAND of its level at `end - 1`."""
    level = prices[end - 1]
    last_out = start - 1
    for i in range(start, end):
        if abs(prices[i] - level) > SETTLE_BAND * level:
            last_out = i
    return last_out + 1 - start + 1


def steps_bounded(run: PricingRun) -> bool:
    """Every step follows the formula from the read-back demand and target, and is bounded."""
    p = pricing_params()
    cap = int(p.max_price)
    prev = BASE
    for price, d, t in zip(run.prices, run.demand, run.target, strict=True):
        if price != next_price(prev, d, t, BASE, cap, p.adjust_denominator):
            return False
        if abs(price - prev) > max(prev // p.adjust_denominator, 1) or not BASE <= price <= cap:
            return False
        prev = price
    return True


def run(opts: Options) -> Outcome:
    t0 = time.monotonic()
    phases = QUICK_PHASES if opts.quick else PHASES
    opts.progress(f"  {sum(phases)} blocks: {LOW_USERS} users, then {USERS}, then {LOW_USERS} again {phases}")
    r = run_pricing(phases)
    low, high, low2 = phases
    up = settle_blocks(r.prices, low, low + high)
    down_at = next((i for i in range(low + high, low + high + low2) if r.prices[i] == BASE), None)
    down = None if down_at is None else down_at - (low + high) + 1
    plateau = r.prices[low + high - 10 : low + high]
    plateau_demand = r.demand[low + high - 10 : low + high]
    target = r.target[low + high - 1]
    mean_demand = sum(plateau_demand) / len(plateau_demand)
    low_flat = all(x == BASE for x in r.prices[:low])
    bounded = steps_bounded(r)
    # the price can hold still only where exactly target / 100 = 5 budgets can pay it:
    # above the 6th-highest budget and at most the 5th-highest, (2400, 2500]
    k = target // MAX_TOKENS
    lo_eq, hi_eq = budget(USERS - k - 1), budget(USERS - k)
    in_band = all(lo_eq * (1 - SETTLE_BAND) <= x <= hi_eq * (1 + SETTLE_BAND) for x in plateau)
    claims = [
        Claim(
            "SPEC §3.7 (PolyLink: dynamic pricing)",
            "price' = price x (1 + (demand - target) / target / adjust_denominator), each step bounded by "
            "+-1/adjust_denominator, floored at the model's base_price, capped at max_price",
            f"{len(r.prices)} blocks: every step equals the formula applied to the demand and target the chain "
            f"reports, moves at most 1/{pricing_params().adjust_denominator}, and stays in [{BASE}, cap]: "
            + ("yes" if bounded else "NO"),
            Verdict.HOLDS if bounded else Verdict.FAILS,
            "holds if every block's price equals next_price(previous, demand, target) and is within the bounds",
        ),
        Claim(
            "PolyLink, abstract",
            "we integrate a comprehensive token-based incentive model with dynamic pricing and reward "
            "mechanisms for all participants.",
            f"demand up 5x (400 -> 2000 tokens at the base price, target {target}): the price rose from {BASE} "
            f"and settled within {SETTLE_BAND:.0%} of {r.prices[low + high - 1]} after {up} blocks, where demand "
            f"averaged {mean_demand:.0f} tokens over the last 10 blocks (target {target}); demand down again: "
            + (f"back at the base price after {down} blocks" if down else "NOT back at the base price")
            + f"; flat at the base price while demand was below the target: {'yes' if low_flat else 'NO'}",
            Verdict.HOLDS if (in_band and down is not None and low_flat) else Verdict.FAILS,
            f"holds if the price stays at {BASE} under low demand, settles (last 10 high-demand blocks) between "
            f"the budgets {lo_eq} and {hi_eq} (+-{SETTLE_BAND:.0%}) where demand meets the target, and returns "
            "to the base price once demand falls",
        ),
    ]
    table = [
        ["phase", "blocks", "active users", "price at the end", "blocks to settle", "mean demand (last 10)", "target"],
        ["low", str(low), str(LOW_USERS), str(r.prices[low - 1]), "-", str(r.demand[low - 1]), str(r.target[low - 1])],
        ["high", str(high), str(USERS), str(r.prices[low + high - 1]), str(up), f"{mean_demand:.0f}", str(target)],
        ["low again", str(low2), str(LOW_USERS), str(r.prices[-1]), str(down) if down else "not settled",
         f"{sum(r.demand[-10:]) / 10:.0f}", str(r.target[-1])],
    ]  # fmt: skip
    figures = []
    if opts.plots:
        from sim import plots

        figures.append(plots.price_path(opts.out / "pricing_path.png", r.prices, r.demand, r.target, phases, BASE))
    notes = [
        f"One model (base {BASE} upoly per 1000 tokens), two workers of {WORKER_CAPACITY} tokens a block each "
        f"(target = 50% of 1000 = {target} tokens); {USERS} users with budgets {budget(0)}..{budget(USERS - 1)} "
        f"upoly, each asking one {MAX_TOKENS}-token request a block while the price is within its budget "
        f"({r.held_back} requests held back over the run). {VALIDATORS} honest validators score every answer "
        f"(committee_size 1). {r.blocks} blocks, {r.txs} signed txs, every invariant asserted every block, "
        f"{r.seconds:.1f} s.",
        "Settling: the number of blocks from the demand step until the price stays within "
        f"{SETTLE_BAND:.0%} of the phase's final price. With inelastic demand (users that pay any price) EIP-1559 "
        "pricing never settles: it climbs 1/8 a block until demand falls or the cap (max_price) stops it.",
    ]
    return Outcome(NAME, SIMULATION.title, claims, table, figures, notes, seconds=time.monotonic() - t0)


SIMULATION = Simulation(NAME, "Dynamic pricing under a demand step up and down (SPEC §3.7, PolyLink)", run)
