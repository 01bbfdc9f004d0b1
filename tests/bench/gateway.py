"""Benchmark `gateway`: a request's end-to-end latency through the gateway vs the CLI, same prompts, one run.

A 1-validator localnet, one worker on the embedded model (llama.cpp, one
thread) and the gateway (`polylink gateway run`). Each prompt is sent twice,
one path after the other (the order alternates so neither path always finds
a warmer cache), and timed from the caller's side until the verified answer
is in hand:

- cli: `polylink tx inference request --wait` as a user runs it (a fresh
  process: start-up, signing, broadcast, then polling the request every 1 s);
- gateway: the official `openai` client's `chat.completions.create` against
  the gateway (HTTP, signing with the gateway's key, broadcast, then woken by
  each new block).

No scorers run here, so the TIQE windows are one block and rounds close
unscored: what is compared is the two paths' own overhead around the same
chain work. `ratio` = gateway_p50_s / cli_p50_s (below 1: the gateway is
faster). Both paths share the 2-core machine with the node and the worker.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import openai

from chain.client.sync import SyncClient
from chain.localnet.config import render_toml
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from chain.localnet.workers import WorkerSpec, start_worker
from tests.bench.tiqe import _wait_worker
from tests.bench.worker import register_embedded_model
from worker.models import EMBEDDED_MODEL

MAX_TOKENS = 32
PROMPTS = [
    "Name the capital city of France.",
    "What is photosynthesis?",
    "Give two tips for sleeping well.",
    "What does a thermometer measure?",
    "Why is exercise healthy?",
    "Describe a cat in one sentence.",
]
TIMEOUT_S = 300


def _start_gateway(net: Localnet) -> str:
    cfg = net.home / "gateway.toml"
    cfg.write_text(
        render_toml(
            "bench gateway",
            {
                "chain": {"rpc": net.rpc_url(0), "home": str(net.home), "key": "user1"},
                "gateway": {"port": 0, "max_tokens": MAX_TOKENS, "timeout_s": float(TIMEOUT_S), "log_format": "json"},
            },
        )
    )
    net.start_service("gateway", [*net.polylink, "gateway", "run", "--config", str(cfg)])
    log = net.home / "services" / "gateway.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in (log.read_text() if log.exists() else "").splitlines():
            if '"gateway.listening"' in line:
                return str(json.loads(line)["url"])
        time.sleep(0.2)
    raise RuntimeError(f"the gateway did not start; see {log}")


def _cli(net: Localnet, prompt: str) -> float:
    cmd = [
        *net.polylink, "tx", "inference", "request", "--model", EMBEDDED_MODEL.model_id, "--prompt", prompt,
        "--max-tokens", str(MAX_TOKENS), "--wait", "--timeout", str(TIMEOUT_S), "--key", "user0",
        "--home", str(net.home), "--node", net.rpc_url(0), "--output", "json",
    ]  # fmt: skip
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S + 30, check=False)
    secs = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"cli request failed: {r.stderr.strip()}")
    return secs


def _gateway(client: openai.OpenAI, prompt: str) -> float:
    t0 = time.perf_counter()
    resp = client.chat.completions.create(
        model=EMBEDDED_MODEL.model_id, messages=[{"role": "user", "content": prompt}], max_tokens=MAX_TOKENS
    )
    secs = time.perf_counter() - t0
    if not resp.choices[0].message.content:
        raise RuntimeError("the gateway returned an empty answer")
    return secs


def run() -> dict[str, object]:
    home = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    net = Localnet(home / "net", nodes=1, accounts=3, base_port=find_free_base_port(1))
    cli_s: list[float] = []
    gw_s: list[float] = []
    try:
        net.create()
        net.set_genesis_params(
            "tiqe", score_commit_blocks="1", score_reveal_blocks="1", slash_fraction_no_reveal_ppm="0",
            max_misses="1000000",
        )  # fmt: skip
        net.up()
        with SyncClient(net.rpc_url(0), keyring=net.keyring()) as c:
            register_embedded_model(net, c)
            start_worker(
                net,
                WorkerSpec(key="user2", models=[EMBEDDED_MODEL.model_id], poll_interval_s=1.0,
                           engine={"kind": "llamacpp", "n_threads": 1, "n_ctx": 1024}),
            )  # fmt: skip
            _wait_worker(net, c, "user2")
        url = _start_gateway(net)
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT_S + 30)
        _gateway(client, "Hello")  # warm-up: the worker's first generation loads the model's caches
        for i, p in enumerate(PROMPTS):
            pair = [("cli", lambda p=p: _cli(net, p)), ("gateway", lambda p=p: _gateway(client, p))]
            for name, fn in pair if i % 2 == 0 else pair[::-1]:
                secs = fn()
                (cli_s if name == "cli" else gw_s).append(secs)
            print(f"  prompt {i + 1}/{len(PROMPTS)}: cli {cli_s[-1]:.2f} s, gateway {gw_s[-1]:.2f} s", flush=True)
    finally:
        net.down()
        shutil.rmtree(home, ignore_errors=True)
    cli_p50, gw_p50 = statistics.median(cli_s), statistics.median(gw_s)
    return {
        "cli_p50_s": round(cli_p50, 3),
        "gateway_p50_s": round(gw_p50, 3),
        "ratio": round(gw_p50 / cli_p50, 3),
        "prompts": len(PROMPTS),
        "max_tokens": MAX_TOKENS,
        "cli_s": [round(x, 3) for x in cli_s],
        "gateway_s": [round(x, 3) for x in gw_s],
    }
