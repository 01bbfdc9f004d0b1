"""Benchmark `tiqe`: the scoring cascade's latency and accuracy, and a request's time to a final quality on chain.

Two parts in one run:

- stages: the real pipeline (embedded models) scores the labelled evaluation
  set (`tests/data/tiqe_eval`, 314 rows) one answer at a time, as
  `scripts/eval_tiqe.py` does: per-stage and whole-cascade latency (p50,
  p95), the share of answers that needed the judge, AUC per kind.
- e2e: a 4-validator localnet with 4 real scorer processes
  (`polylink validator run`) and one worker on the embedded model. REQUESTS
  prompts are sent one at a time (each waits for the last to close, so the
  figure is latency, not queueing); for each, the blocks and seconds from
  the block that included the request to the block that wrote its final
  quality (request COMPLETED), split into answering (inclusion -> the
  worker's result) and scoring (result -> TIQE round finalized). Seconds
  are block-time differences (CometBFT header times). Medians are reported.

Everything shares this 2-core machine: 4 CometBFT nodes, 4 app processes, 4
scorers and the worker, so the e2e figures are an upper bound for a network
whose validators have their own machines.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import tx_pb2 as inf_tx
from polylink.inference.v1 import types_pb2 as inf_t
from polylink.registry.v1 import query_pb2 as reg_q
from polylink.tiqe.v1 import query_pb2 as tiqe_q

from chain.client.sync import SyncClient
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from chain.localnet.scorers import ScorerSpec, start_scorer
from chain.localnet.workers import WorkerSpec, start_worker
from tests.bench import tiqe_stages
from tests.bench.worker import block_times, register_embedded_model
from worker.models import EMBEDDED_MODEL

ROOT = Path(__file__).resolve().parent.parent.parent
REQUESTS = 6
MAX_TOKENS = 48
PROMPTS = [
    "Name the capital city of France.",
    "What is photosynthesis?",
    "Give two tips for sleeping well.",
    "What does a thermometer measure?",
    "Why is exercise healthy?",
    "Describe a cat in one sentence.",
    "What do bees make?",
    "Explain why the sky is blue in one sentence.",
]
WAIT_S = 300.0


def _wait_scorers_ready(net: Localnet, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    for key in net.validator_keys:
        log = net.home / "services" / f"scorer-{key}.log"
        while '"event": "validator.scoring"' not in (log.read_text() if log.exists() else ""):
            if time.monotonic() > deadline:
                raise RuntimeError(f"scorer {key} did not load its models; see {log}")
            time.sleep(0.5)


def _wait_worker(net: Localnet, c: SyncClient, key: str) -> None:
    addr = net.keyring().show(key).address
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ws = c.query("/polylink.registry.v1.Query/Workers", reg_q.QueryWorkersRequest(), reg_q.QueryWorkersResponse)
        if addr in {w.address for w in ws.workers}:
            return
        time.sleep(0.5)
    raise RuntimeError(f"worker {key} did not register; see {net.home}/services")


def _one_request(c: SyncClient, user: str, prompt: str) -> dict[str, int]:
    """Send one request, wait until it closes; its heights (inclusion, result, final quality)."""
    r = c.send_and_wait(
        [
            inf_tx.MsgRequestInference(
                requester=user, model_id=EMBEDDED_MODEL.model_id, prompt=prompt, max_tokens=MAX_TOKENS, max_price="1000"
            )
        ],
        "user0",
        gas=400_000,
        timeout=60,
    )
    r.raise_for_code()
    rid = int(r.attributes("inference.requested")[0]["request_id"])
    done = (inf_t.REQUEST_STATUS_COMPLETED, inf_t.REQUEST_STATUS_FAILED)
    deadline = time.monotonic() + WAIT_S
    while True:
        st = c.query(
            "/polylink.inference.v1.Query/Request", inf_q.QueryRequestRequest(id=rid), inf_q.QueryRequestResponse
        )
        if st.request.status in done:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"request {rid} did not close in {WAIT_S:.0f} s")
        time.sleep(0.3)
    if st.request.status != inf_t.REQUEST_STATUS_COMPLETED or not st.results:
        raise RuntimeError(f"request {rid} failed: {st.request.failure}")
    res = st.results[0]
    rnd = c.query(
        "/polylink.tiqe.v1.Query/Round", tiqe_q.QueryRoundRequest(result_id=res.id), tiqe_q.QueryRoundResponse
    ).round
    return {
        "request_id": rid,
        "included": st.request.created_height,
        "result": res.height,
        "final": st.request.completed_height,
        "round_finalized": rnd.finalized_height,
        "quality_ppm": res.quality_ppm,
        "members": len(rnd.members),
    }


def e2e() -> dict[str, Any]:
    """Blocks and seconds from a request's inclusion to its final quality on a 4-validator localnet."""
    home = Path(tempfile.mkdtemp(prefix="bench-tiqe-"))
    net = Localnet(home / "net", nodes=4, accounts=2, base_port=find_free_base_port(4))
    try:
        net.up()
        with SyncClient(net.rpc_url(0), keyring=net.keyring()) as c:
            register_embedded_model(net, c)
            for i, key in enumerate(net.validator_keys):
                start_scorer(net, ScorerSpec(key=key, node=i))
            start_worker(
                net,
                WorkerSpec(
                    key="user1",
                    models=[EMBEDDED_MODEL.model_id],
                    concurrency=1,
                    poll_interval_s=1.0,
                    engine={"kind": "llamacpp", "n_threads": 1, "n_ctx": 1024},
                ),
            )
            _wait_scorers_ready(net)
            _wait_worker(net, c, "user1")
            user = net.keyring().show("user0").address
            runs = []
            for i in range(REQUESTS):
                h = _one_request(c, user, PROMPTS[i % len(PROMPTS)])
                runs.append(h)
                print(
                    f"  request {i + 1}/{REQUESTS}: included {h['included']}, result {h['result']},"
                    f" final {h['final']} ({h['final'] - h['included']} blocks, quality {h['quality_ppm']})",
                    flush=True,
                )
            times = block_times(net, {h[k] for h in runs for k in ("included", "result", "final")})
    finally:
        net.down()
        # keep the scorers' and the worker's logs (the figures' evidence) beside the results
        logs = ROOT / "bench" / "results" / "tiqe-logs"
        shutil.rmtree(logs, ignore_errors=True)
        if (net.home / "services").is_dir():
            shutil.copytree(net.home / "services", logs, ignore=shutil.ignore_patterns("*.toml", "state*", "*.db*"))
        shutil.rmtree(home, ignore_errors=True)

    def med(f: Any) -> float:
        return float(statistics.median(f(h) for h in runs))

    span = max(h["final"] for h in runs) - min(h["included"] for h in runs)
    secs = times[max(h["final"] for h in runs)] - times[min(h["included"] for h in runs)]
    return {
        "e2e_requests": len(runs),
        "e2e_blocks_p50": med(lambda h: h["final"] - h["included"]),
        "e2e_seconds_p50": round(med(lambda h: times[h["final"]] - times[h["included"]]), 2),
        "e2e_answer_blocks_p50": med(lambda h: h["result"] - h["included"]),
        "e2e_answer_seconds_p50": round(med(lambda h: times[h["result"]] - times[h["included"]]), 2),
        "e2e_scoring_blocks_p50": med(lambda h: h["final"] - h["result"]),
        "e2e_scoring_seconds_p50": round(med(lambda h: times[h["final"]] - times[h["result"]]), 2),
        "e2e_block_time_s": round(secs / span, 3) if span else 0.0,
        "e2e_committee_size": runs[0]["members"],
    }


def run() -> dict[str, Any]:
    print("  stages: scoring the evaluation set (about 2 minutes)", flush=True)
    figures = tiqe_stages.run()
    print("  e2e: 4 validators with scorers and one worker on a localnet", flush=True)
    figures.update(e2e())
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
