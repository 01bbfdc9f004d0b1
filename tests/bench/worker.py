"""Benchmark `worker`: tokens/s through the worker loop vs the same engine called directly.

Same prompts, same greedy sampling, same llama.cpp engine with one thread on
the same CPU core, in one run:
- engine: this process calls `engine.generate` on each prompt in turn;
  engine_tps = completion tokens / wall time.
- worker: a real `polylink worker run` process (concurrency 1, pinned to that
  core) serves the same prompts, sent as one tx of requests to a 1-validator
  localnet whose processes are pinned to the other core(s);
  worker_tps = completion tokens on chain / (time of the last result's block
  - time of the block that assigned the requests), so the worker's queries,
  signing, broadcasts and one block of inclusion latency all count against it.
Repeated REPS times, alternating; medians are reported.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import tx_pb2 as inf_tx
from polylink.inference.v1 import types_pb2 as inf_t
from polylink.registry.v1 import query_pb2 as reg_q
from polylink.registry.v1 import tx_pb2 as reg_tx

from chain.client.rpc import CometRPC
from chain.client.sync import SyncClient
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from chain.localnet.workers import WorkerSpec, start_worker, stop_worker
from worker.engines import make_engine
from worker.engines.base import EngineConfig, GenerationParams
from worker.models import EMBEDDED_MODEL

REPS = 5
MAX_TOKENS = 64
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "Describe a walk through a forest in autumn.",
    "Give advice to someone starting to learn programming.",
    "Explain why exercise is good for health.",
    "Describe the city of Paris to a visitor.",
    "Write a letter to a friend about your weekend.",
    "Explain how plants make food from sunlight.",
]
ENGINE_CORE = 0


def cores() -> tuple[set[int], set[int]]:
    """(the engine's core, the rest) — the chain runs on the rest so it does not steal the engine's CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    engine = {allowed[0]}
    rest = set(allowed[1:]) or engine
    return engine, rest


async def engine_run() -> tuple[int, float]:
    engine = make_engine(EngineConfig(kind="llamacpp", n_threads=1, n_ctx=1024))
    params = GenerationParams(max_tokens=MAX_TOKENS, temperature=0.0)
    async with engine:
        await engine.generate("Hello", GenerationParams(max_tokens=4))  # warm-up, like the worker's first task
        t0 = time.perf_counter()
        tokens = 0
        for p in PROMPTS:
            tokens += (await engine.generate(p, params)).completion_tokens
        return tokens, time.perf_counter() - t0


def rfc3339_ts(t: str) -> float:
    """A CometBFT header time (RFC 3339 with nanoseconds) as a Unix timestamp (microseconds kept)."""
    head, _, frac = t.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()


def block_times(net: Localnet, heights: Iterable[int]) -> dict[int, float]:
    """Header time of each height, read from node 0."""

    async def run() -> dict[int, float]:
        out: dict[int, float] = {}
        async with CometRPC(net.rpc_url(0)) as rpc:
            for h in sorted(set(heights)):
                b = await rpc.call("block", {"height": str(h)})
                out[h] = rfc3339_ts(str(b["block"]["header"]["time"]))
        return out

    return asyncio.run(run())


def block_time(net: Localnet, height: int) -> float:
    return block_times(net, [height])[height]


def register_embedded_model(net: Localnet, c: SyncClient, provider_key: str = "user0") -> None:
    """Register the embedded model (base price 1000 upoly per 1000 tokens, no royalty)."""
    m = EMBEDDED_MODEL
    c.send_and_wait(
        [
            reg_tx.MsgRegisterModel(
                provider=net.keyring().show(provider_key).address,
                model_id=m.model_id,
                family=m.family,
                version=m.version,
                sha256=m.sha256,
                license=m.license,
                context_length=m.context_length,
                royalty_ppm=0,
                base_price="1000",
            )
        ],
        provider_key,
        gas=400_000,
        timeout=60,
    ).raise_for_code()


def worker_run(net: Localnet, c: SyncClient, key: str, rep: int) -> tuple[int, float]:
    user = net.keyring().show("user0").address
    msgs = [
        inf_tx.MsgRequestInference(
            requester=user, model_id=EMBEDDED_MODEL.model_id, prompt=p, max_tokens=MAX_TOKENS, max_price="1000"
        )
        for p in PROMPTS
    ]
    r = c.send_and_wait(msgs, "user0", gas=4_000_000, timeout=60)
    r.raise_for_code()
    rids = [int(a["request_id"]) for a in r.attributes("inference.requested")]
    done = (inf_t.REQUEST_STATUS_COMPLETED, inf_t.REQUEST_STATUS_FAILED)
    deadline = time.monotonic() + 600
    states: list[Any] = []
    while time.monotonic() < deadline:
        states = [
            c.query("/polylink.inference.v1.Query/Request", inf_q.QueryRequestRequest(id=i), inf_q.QueryRequestResponse)
            for i in rids
        ]
        if all(s.request.status in done for s in states):
            break
        time.sleep(1.0)
    failed = [s.request.id for s in states if s.request.status != inf_t.REQUEST_STATUS_COMPLETED]
    if failed:
        raise RuntimeError(f"rep {rep}: requests {failed} did not complete; see {net.home}/services")
    start = min(a.assigned_height for s in states for a in s.request.assignments)
    end = max(res.height for s in states for res in s.results)
    tokens = sum(res.completion_tokens for s in states for res in s.results)
    return tokens, block_time(net, end) - block_time(net, start)


def run() -> dict[str, object]:
    engine_core, rest = cores()
    home = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    net = Localnet(home / "net", nodes=1, accounts=2, base_port=find_free_base_port(1))
    own = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, rest)  # the localnet's processes inherit this
        net.create()
        # the worker takes a rep's 8 requests one after the other (concurrency 1): give the
        # last one room; no scorers run here, so TIQE rounds close at once
        net.set_genesis_params("inference", result_timeout_blocks="1000")
        net.set_genesis_params("tiqe", score_commit_blocks="1", score_reveal_blocks="1",
                               slash_fraction_no_reveal_ppm="0", max_misses="1000000")
        net.up()
        with SyncClient(net.rpc_url(0), keyring=net.keyring()) as c:
            m = EMBEDDED_MODEL
            register_embedded_model(net, c)
            os.sched_setaffinity(0, engine_core)  # the worker process inherits the engine's core
            start_worker(
                net,
                WorkerSpec(
                    key="user1",
                    models=[m.model_id],
                    concurrency=1,
                    capacity=100_000,
                    poll_interval_s=1.0,
                    engine={"kind": "llamacpp", "n_threads": 1, "n_ctx": 1024},
                ),
            )
            os.sched_setaffinity(0, rest)  # this process only polls while the worker works
            addr = net.keyring().show("user1").address
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                ws = c.query(
                    "/polylink.registry.v1.Query/Workers", reg_q.QueryWorkersRequest(), reg_q.QueryWorkersResponse
                ).workers
                if addr in {w.address for w in ws}:
                    break
                time.sleep(0.5)
            eng_tps, wrk_tps = [], []
            eng_tokens = wrk_tokens = 0
            for rep in range(REPS):
                os.sched_setaffinity(0, engine_core)
                tokens, secs = asyncio.run(engine_run())
                os.sched_setaffinity(0, rest)
                eng_tps.append(tokens / secs)
                eng_tokens += tokens
                tokens, secs = worker_run(net, c, "user1", rep)
                wrk_tps.append(tokens / secs)
                wrk_tokens += tokens
                print(
                    f"  rep {rep + 1}/{REPS}: engine {eng_tps[-1]:.1f} tok/s, worker {wrk_tps[-1]:.1f} tok/s",
                    flush=True,
                )
            stop_worker(net, "user1")
    finally:
        os.sched_setaffinity(0, own)
        net.down()
        shutil.rmtree(home, ignore_errors=True)
    e, w = statistics.median(eng_tps), statistics.median(wrk_tps)
    return {
        "engine_tps": round(e, 2),
        "worker_tps": round(w, 2),
        "ratio": round(w / e, 3),
        "reps": REPS,
        "prompts_per_rep": len(PROMPTS),
        "max_tokens": MAX_TOKENS,
        "engine_tokens": eng_tokens,
        "worker_tokens": wrk_tokens,
        "engine_tps_all": [round(x, 2) for x in eng_tps],
        "worker_tps_all": [round(x, 2) for x in wrk_tps],
        "ratio_per_rep": [round(w_ / e_, 3) for w_, e_ in zip(wrk_tps, eng_tps, strict=True)],
        "engine_core": sorted(engine_core),
        "chain_cores": sorted(rest),
    }
