"""`make demo`: a 4-validator localnet on loopback, real signed transfers, then real inference:
the embedded model registered (and two more ids on the same weights: one served only by a degraded
worker, one only by a worker that runs a lower-bit requantization instead), 4 TIQE scorers, 4
workers, and the OpenAI-compatible gateway with its dashboard; a short exchange through the
official `openai` client (a plain request, a swarm, an answer that fails TIQE on quality, an answer
that reads well and is caught on fidelity, each with the scorer's reason), TIQE on correct answers
in other words (`polylink validator score`), then a load burst that moves the price, the ratings,
who earned what, the supply.

Leaves everything running (logs under localnet-demo/); `make demo-down` stops it, and so does a
Ctrl-C while the demo runs. A second `make demo` while one runs says so; a stopped one is wiped.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402
from polylink.inference.v1 import query_pb2 as inf_q  # noqa: E402
from polylink.inference.v1 import tx_pb2 as inf_tx  # noqa: E402
from polylink.inference.v1 import types_pb2 as inf_t  # noqa: E402
from polylink.pricing.v1 import query_pb2 as pricing_q  # noqa: E402
from polylink.registry.v1 import query_pb2 as reg_q  # noqa: E402
from polylink.registry.v1 import tx_pb2 as reg_tx  # noqa: E402
from polylink.rewards.v1 import query_pb2 as rw_q  # noqa: E402
from polylink.staking.v1 import query_pb2 as staking_q  # noqa: E402
from polylink.tiqe.v1 import query_pb2 as tiqe_q  # noqa: E402

from chain.client.sync import SyncClient  # noqa: E402
from chain.localnet.gateway import GatewaySpec, gateway_url, start_gateway  # noqa: E402
from chain.localnet.net import Localnet  # noqa: E402
from chain.localnet.ports import DEFAULT_BASE_PORT, busy_ports, port_free  # noqa: E402
from chain.localnet.scorers import ScorerSpec, start_scorer  # noqa: E402
from chain.localnet.workers import WorkerSpec, start_worker  # noqa: E402
from worker.models import EMBEDDED_MODEL, embedded_gguf_path, requantize  # noqa: E402

HOME = ROOT / "localnet-demo"
NODES = 4
# user0 the user, user1 user2 honest workers, user3 the degraded worker, user4 the gateway, user5 the substitute
ACCOUNTS = 6
USERS = ("user0", "user1", "user2")  # the transfers
WORKERS = ("user1", "user2")
DEGRADED_WORKER = "user3"
SUBSTITUTE_WORKER = "user5"
GATEWAY_KEY = "user4"
GATEWAY_PORT = 26690  # fixed, on loopback, checked free like the node ports
API_KEY = "sk-polylink-demo"
MODEL = EMBEDDED_MODEL.model_id
DEGRADED = "smollm2-degraded"  # the same embedded weights, served only by the degraded worker
SUBSTITUTED = "smollm2-substituted"  # the same digest, served only by a worker that runs a Q2_K requantization
ENGINE: dict[str, Any] = {"kind": "llamacpp", "n_threads": 1, "n_ctx": 2048}
BASE_PRICE = 2_000  # upoly per 1000 tokens
BLOCK_REWARD = 1_000_000  # upoly minted per block (1 POLY), paid to the bonded validators by power
MAX_PRICE = 4 * BASE_PRICE  # what the demo's user accepts: the price moves with demand (SPEC 3.7)
# every process shares the machine's cores: an answer, then its scoring, can outlast the default
# 30-block deadlines at localnet block times, so the workers and committees get room
INFERENCE_PARAMS = {"result_timeout_blocks": "400", "commit_timeout_blocks": "400", "reveal_timeout_blocks": "200"}
MAX_TOKENS = 64
WAIT_S = 420.0  # the gateway's timeout_s; the openai client waits a minute longer
EXCHANGE: list[tuple[str, str, str, dict[str, Any]]] = [  # title, model, prompt, the call's `polylink` options
    ("a plain request", MODEL, "Name the capital city of France.", {}),
    ("a swarm: two workers commit, then reveal", MODEL, "In one sentence, why is the sky blue?", {"redundancy": 2}),
    ("the degraded worker's model, min_quality 0.5", DEGRADED, "Give me three tips for staying focused while studying.",
     {"min_quality": 0.5}),
    ("the substitute worker's model: another model's answer behind the registered digest", SUBSTITUTED,
     "What does a thermometer measure?", {}),
]
# correct answers in words the registered model would not use (and one whose words are shuffled), scored by
# `polylink validator score`, the validators' pipeline without the chain
OTHER_WORDS = [
    ("In one sentence, why is the sky blue?", "Air molecules scatter the short blue wavelengths of sunlight far more"
     " than the long red ones, so blue light reaches our eyes from every direction"),
    ("What does a thermometer measure?", "temperature, how hot or cold something is"),
    ("In one sentence, why is the sky blue?", "blue wavelengths the molecules eyes every sunlight of scatter so"
     " direction far light more Air the from ones, short reaches than the long red our blue"),
]
# the load burst: short prompts (answers end long before max_tokens; the rest of the escrow is
# refunded), asking for more tokens a block than the workers' target (half their capacity)
BURST = ["Say hello in one word.", "Name one fruit.", "What color is grass?", "Name a planet.",
         "Say yes or no.", "Name a number."]
BURST_BLOCKS = 3
BURST_MAX_TOKENS = 400


def dashboard_url() -> str:
    return f"http://127.0.0.1:{GATEWAY_PORT}/dashboard"


def wait_for(cond: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}; see {HOME}/services/*.log")
        time.sleep(0.5)


def transfers_demo(c: SyncClient, addr: dict[str, str]) -> None:
    print(f"==> chain {c.chain_id()}; accounts: " + ", ".join(f"{u}={addr[u]}" for u in USERS))
    before = {u: c.balance(addr[u]) for u in USERS}
    print("==> sending 3 signed transfers through CometBFT RPC and waiting for each block")
    for src, dst, amount in (("user0", "user1", 1_500_000), ("user1", "user2", 250_000), ("user2", "user0", 42)):
        res = c.bank_send(src, addr[dst], f"{amount}upoly")
        tx = c.wait(res.hash, timeout=60)
        print(f"    {src} -> {dst} {amount}upoly: height {tx.height}, code {tx.code},"
              f" gas {tx.gas_used}/{tx.gas_wanted}, tx {tx.hash[:16]}..")
    print("==> balances (upoly), before -> after (each transfer also paid a 2000upoly fee):")
    for u in USERS:
        print(f"    {u}: {before[u]} -> {c.balance(addr[u])}")
    print(f"    total supply: {c.total_supply()}")
    vals = c.query("/polylink.staking.v1.Query/Validators", staking_q.QueryValidatorsRequest(),
                   staking_q.QueryValidatorsResponse).validators
    print("==> validators (created by the staking module from each operator's gentx):")
    for v in vals:
        print(f"    {v.moniker}: operator {v.operator_address}, tokens {v.tokens}upoly, "
              f"commission {v.commission_ppm / 10_000:g}%, {'jailed' if v.jailed else 'active'}")


def registered(c: SyncClient, address: str) -> bool:
    try:
        c.query("/polylink.registry.v1.Query/Worker", reg_q.QueryWorkerRequest(address=address),
                reg_q.QueryWorkerResponse)
    except Exception:
        return False
    return True


def start_services(net: Localnet, c: SyncClient, addr: dict[str, str]) -> str:
    """Register both model ids, start the scorers, the workers and the gateway; its base URL once ready."""
    m = EMBEDDED_MODEL
    print(f"==> user0 registers the model {MODEL} (sha256 {m.sha256[:16]}.., base price {BASE_PRICE}upoly"
          f" per 1000 tokens, royalty 5%), and {DEGRADED} and {SUBSTITUTED} on the same weights")
    c.send_and_wait([reg_tx.MsgRegisterModel(
        provider=addr["user0"], model_id=mid, family=m.family, version=m.version, sha256=m.sha256,
        license=m.license, context_length=m.context_length, royalty_ppm=50_000, base_price=str(BASE_PRICE),
    ) for mid in (MODEL, DEGRADED, SUBSTITUTED)], "user0", gas=1_000_000, timeout=60).raise_for_code()
    substitute = HOME / "substitute" / "smollm2.Q2_K.gguf"
    substitute.parent.mkdir(parents=True, exist_ok=True)
    requantize(embedded_gguf_path(), substitute, "Q2_K")
    print(f"==> {substitute.relative_to(ROOT)}: the registered Q4_1 weights requantized to Q2_K by llama.cpp's"
          f" quantizer; {SUBSTITUTE_WORKER} registers the registered digest and answers with this file")
    print(f"==> starting {net.nodes} validator scorers (polylink validator run: TIQE on SmolLM2 + MiniLM),"
          f" workers {', '.join(WORKERS)} on {MODEL}, {DEGRADED_WORKER} on {DEGRADED}"
          f" (engine degrade = \"shuffle\": it garbles every answer), {SUBSTITUTE_WORKER} on {SUBSTITUTED}"
          " (degrade = \"substitute\"), and the gateway")
    t0 = time.perf_counter()
    for i, key in enumerate(net.validator_keys):
        start_scorer(net, ScorerSpec(key=key, node=i))
    for i, key in enumerate(WORKERS):
        start_worker(net, WorkerSpec(key=key, models=[MODEL], node=i % net.nodes, poll_interval_s=1.0, engine=ENGINE))
    start_worker(net, WorkerSpec(key=DEGRADED_WORKER, models=[DEGRADED], node=2, poll_interval_s=1.0,
                                 engine={**ENGINE, "degrade": "shuffle"}))
    start_worker(net, WorkerSpec(key=SUBSTITUTE_WORKER, models=[SUBSTITUTED], node=3, poll_interval_s=1.0,
                                 engine={**ENGINE, "degrade": "substitute", "substitute_model_path": str(substitute)}))
    start_gateway(net, GatewaySpec(key=GATEWAY_KEY, node=3, port=GATEWAY_PORT, api_keys=[API_KEY],
                                   settings={"max_tokens": MAX_TOKENS, "timeout_s": WAIT_S}))
    url = gateway_url(net, 120)
    for key in (*WORKERS, DEGRADED_WORKER, SUBSTITUTE_WORKER):
        wait_for(lambda k=key: registered(c, addr[k]), f"worker {key} to register", 240)
    for key in net.validator_keys:
        log = net.home / "services" / f"scorer-{key}.log"
        wait_for(lambda p=log: '"event": "validator.scoring"' in (p.read_text() if p.exists() else ""),
                 f"scorer {key} to load its models", 300)
    print(f"    all ready in {time.perf_counter() - t0:.0f}s")
    for key in (*WORKERS, DEGRADED_WORKER, SUBSTITUTE_WORKER):
        w = c.query("/polylink.registry.v1.Query/Worker", reg_q.QueryWorkerRequest(address=addr[key]),
                    reg_q.QueryWorkerResponse).worker
        print(f"    worker {key} {w.address}: bond {w.bond}upoly, capacity {w.capacity} tokens/block,"
              f" models {list(w.models)}")
    print(f"    gateway {url}/v1 (key {GATEWAY_KEY} {addr[GATEWAY_KEY]} signs and pays; API key {API_KEY})")
    print(f"    dashboard {url}/dashboard")
    return url


def gateway_demo(net: Localnet, c: SyncClient, url: str, names: dict[str, str]) -> None:
    """The scripted exchange through the official openai client; the figures of each answer."""
    client = openai.OpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0, timeout=WAIT_S + 60)
    models = client.models.list().data
    print("\n==> through the gateway with the official openai client; GET /v1/models: "
          + ", ".join(f"{x.id} at {(x.model_extra or {})['polylink']['price']}upoly/1k tokens" for x in models))
    for title, model, prompt, opts in EXCHANGE:
        shown = f", extra_body={{'polylink': {opts}}}" if opts else ""
        print(f"\n    {title}: chat.completions.create(model={model!r}{shown})\n      user: {prompt}")
        t0 = time.perf_counter()
        try:
            resp = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}], max_tokens=MAX_TOKENS,
                extra_body={"polylink": opts} if opts else None)
        except openai.UnprocessableEntityError as e:
            body = e.body if isinstance(e.body, dict) else {}
            print(f"      HTTP {e.status_code} {e.code} after {time.perf_counter() - t0:.0f}s: {body.get('message')}")
            p = body.get("polylink") or {}
            if p:
                figures(net, c, p, names)
            continue
        p = (resp.model_extra or {})["polylink"]
        text = " ".join((resp.choices[0].message.content or "").split())
        print(f"      answer ({time.perf_counter() - t0:.0f}s, {resp.usage.completion_tokens if resp.usage else 0}"
              f" tokens, finish {resp.choices[0].finish_reason}): {text}")
        figures(net, c, p, names)


QUALITY_ONLY = ("fidelity", "relevance")  # stages that are not quality gates (relevance feeds the topic stage)


def lowest_quality_stage(stages: dict[str, float]) -> tuple[str, float]:
    """The quality stage that scored lowest, of a verdict's stage scores."""
    gates = {k: v for k, v in stages.items() if k not in QUALITY_ONLY}
    low = min(gates, key=lambda k: gates[k]) if gates else "none"
    return low, gates.get(low, 1.0)


def tiqe_params(c: SyncClient) -> Any:
    return c.query("/polylink.tiqe.v1.Query/Params", tiqe_q.QueryParamsRequest(), tiqe_q.QueryParamsResponse).params


def scorer_reason(net: Localnet, result_id: int) -> str:
    """Why a committee member's scorer gave a result its two numbers, from its log's `score.done` line:
    the quality stage that scored lowest (gates and topic; relevance feeds topic) and the fidelity."""
    for key in net.validator_keys:
        log = net.home / "services" / f"scorer-{key}.log"
        for line in reversed(log.read_text().splitlines() if log.exists() else []):
            if '"score.done"' not in line:
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            if ev.get("result_id") != result_id:
                continue
            stages = {k: v for k, v in ev.get("stages", {}).items() if k not in QUALITY_ONLY}
            low, score = lowest_quality_stage(stages)
            return (f"{key}'s scorer: lowest quality stage {low} {score:.2f}"
                    f" (of {', '.join(f'{k} {v:.2f}' for k, v in stages.items())}), fidelity"
                    f" {ev.get('fidelity_ppm', 0) / 1e6:.3f}")
    return "no scorer logged it"


def figures(net: Localnet, c: SyncClient, p: dict[str, Any], names: dict[str, str]) -> None:
    """The `polylink` field of a reply (or of a 422's error), with each result's fee split from the chain."""
    who = lambda a: names.get(a, a[:14] + "..")  # noqa: E731
    verdict = "unscored" if not p["scored"] else "passed" if p["passed"] else "FAILED TIQE"
    print(f"      polylink: request {p['request_id']} ({p['status']}, heights {p['created_height']}"
          f"..{p['completed_height']}), quality {p['quality']:.3f} {verdict}, fidelity {p['fidelity']:.3f},"
          f" price {p['price']}upoly/1k tokens"
          f" (max {p['max_price']}), fee {p['fee_upoly']}upoly, tx fee {p['tx_fee_upoly']}upoly")
    st = c.query("/polylink.inference.v1.Query/Request", inf_q.QueryRequestRequest(id=p["request_id"]),
                 inf_q.QueryRequestResponse)
    chain_results = {r.id: r for r in st.results}
    for r in p["results"]:
        res = chain_results.get(r["result_id"])
        mark = "answer" if r["result_id"] == p["answer_result_id"] else "other "
        scores = ", ".join(
            f"{who(s['validator'])} {s['quality']:.3f}/{s['fidelity']:.3f}" for s in r["scores"]
        ) or "none revealed"
        print(f"        {mark} result {r['result_id']} by {who(r['worker'])}: quality {r['quality_ppm'] / 1e6:.3f},"
              f" fidelity {r['fidelity_ppm'] / 1e6:.3f}; committee (quality/fidelity) {scores}")
        print(f"          why: {scorer_reason(net, int(r['result_id']))}")
        if r["scored"]:
            caught(c, r, p["model"], names)
        if res is None:
            continue
        print(f"          fee {r['fee_upoly']}upoly: worker {res.worker_paid or 0}, royalty {res.royalty_paid or 0},"
              f" committee {res.validators_paid or 0}, community {res.community_paid or 0}"
              + ("" if res.passed or not res.scored else "; the worker's and royalty shares refunded"))
        if res.scored and not res.passed:
            print(f"          the refused answer, on chain: {' '.join(res.response.split())[:100]}..")
    print(f"        txs: request {p['request_tx']}; " + ", ".join(f"result {h}" for h in p["result_txs"]))


def caught(c: SyncClient, r: dict[str, Any], model_id: str, names: dict[str, str]) -> None:
    """The verdict the chain keeps on the worker for the result's model: both EMAs against the floors."""
    tp = tiqe_params(c)
    w = c.query("/polylink.registry.v1.Query/Worker", reg_q.QueryWorkerRequest(address=r["worker"]),
                reg_q.QueryWorkerResponse)
    st = next((s for s in w.stats if s.model_id == model_id), None)
    if st is None:
        return
    flags = []
    if r["quality_ppm"] < tp.pass_ppm:
        flags.append(f"quality below pass_ppm {tp.pass_ppm / 1e6:.2f}: refused, the user refunded")
    if r["fidelity_ppm"] < tp.min_fidelity_ppm:
        flags.append(f"fidelity below min_fidelity_ppm {tp.min_fidelity_ppm / 1e6:.2f}: suspected substitution")
    print(f"          {names.get(r['worker'], r['worker'])} on {st.model_id}: {st.results} results, quality EMA"
          f" {st.quality_ema_ppm / 1e6:.3f}, fidelity EMA {st.fidelity_ema_ppm / 1e6:.3f}; jailed and slashed once"
          f" an EMA is below its floor after {tp.min_results} results"
          + (f"; this answer: {'; '.join(flags)}" if flags else ""))


def other_words_demo(c: SyncClient) -> None:
    """Correct answers in other words pass on quality at low fidelity; shuffled words do not pass."""
    pass_ppm = tiqe_params(c).pass_ppm
    print("\n==> TIQE on answers no worker wrote: `polylink validator score` (the validators' pipeline, no chain)")
    rows = HOME / "other-words.jsonl"
    out = HOME / "other-words.scores.jsonl"
    rows.write_text("".join(json.dumps({"id": f"row{i}", "prompt": p, "response": a}) + "\n"
                            for i, (p, a) in enumerate(OTHER_WORDS)))
    subprocess.run([str(ROOT / ".venv" / "bin" / "polylink"), "validator", "score", "-i", str(rows), "-o", str(out)],
                   check=True, stdout=subprocess.DEVNULL, timeout=600)
    for (prompt, answer), line in zip(OTHER_WORDS, out.read_text().splitlines(), strict=True):
        v = json.loads(line)
        verdict = "passes" if v["quality_ppm"] >= pass_ppm else "FAILS"
        low, score = lowest_quality_stage({s["name"]: s["score"] for s in v["stages"]})
        print(f"    user: {prompt}\n      answer: {answer}\n      quality {v['quality_ppm'] / 1e6:.3f} {verdict}"
              f" (lowest stage {low} {score:.2f}), fidelity {v['fidelity_ppm'] / 1e6:.3f}")
    print("    a correct answer in other words passes on quality; its low fidelity only says the registered"
          " model did not write it, which counts against a worker that claims it did")


def model_price(c: SyncClient, model_id: str) -> pricing_q.QueryPriceResponse:
    return c.query("/polylink.pricing.v1.Query/Price", pricing_q.QueryPriceRequest(model_id=model_id),
                   pricing_q.QueryPriceResponse)


def block_txs(ev: Any) -> set[str]:
    """The hashes (upper-case hex) of the txs in a NewBlock event's block."""
    txs = ((ev.value.get("block") or {}).get("data") or {}).get("txs") or []
    return {hashlib.sha256(base64.b64decode(t)).hexdigest().upper() for t in txs}


def pricing_demo(c: SyncClient, addr: dict[str, str], model_id: str) -> None:
    """A load burst: the price climbs while demand exceeds the target, then falls back to the base."""
    mp = model_price(c, model_id).price
    print(f"\n==> load burst from user0 (the client library, many requests a block): {len(BURST)} requests of up"
          f" to {BURST_MAX_TOKENS} tokens in each of {BURST_BLOCKS} blocks ({len(BURST) * BURST_MAX_TOKENS} tokens"
          f" a block); price now {mp.price}upoly/1k tokens (base {mp.base_price})")
    # one tx of BURST requests in each of BURST_BLOCKS consecutive blocks: the next is sent as soon as
    # the block holding the last one is committed, so it lands in the next block (requests in block h
    # pay the price set at the end of h - 1)
    hashes: list[str] = []
    deadline = time.monotonic() + 120
    blocks = c.subscribe("tm.event='NewBlock'")
    try:
        for ev in blocks:
            if time.monotonic() > deadline:
                raise SystemExit("the load burst's txs did not land in time")
            if hashes and hashes[-1].upper() not in block_txs(ev):
                continue
            if len(hashes) == BURST_BLOCKS:
                break
            msgs = [inf_tx.MsgRequestInference(requester=addr["user0"], model_id=model_id, prompt=p,
                                               max_tokens=BURST_MAX_TOKENS, max_price=str(MAX_PRICE)) for p in BURST]
            hashes.append(c.send(msgs, "user0", gas=2_000_000).hash)
    finally:
        blocks.close()
    rids: list[int] = []
    heights: list[int] = []
    for h in hashes:
        r = c.wait(h, timeout=60)
        r.raise_for_code()
        heights.append(r.height)
        rids += [int(a["request_id"]) for a in r.attributes("inference.requested")]
        paid = sorted({a["price"] for a in r.attributes("inference.requested")})
        print(f"    height {r.height}: {len(BURST)} requests paid {', '.join(paid)}upoly/1k tokens")
    # the price path from the chain's history (it keeps the last history_blocks), once back at the base
    wait_for(lambda: model_price(c, model_id).price.price == mp.base_price, "the price to fall back", 120)
    hist = c.query("/polylink.pricing.v1.Query/History", pricing_q.QueryHistoryRequest(model_id=model_id),
                   pricing_q.QueryHistoryResponse).points
    path = [pt for pt in reversed(hist) if pt.height >= heights[0]]  # oldest first
    print("    price set at the end of each block (pricing History query; demand vs target in tokens):")
    for pt in path[:12]:
        print(f"      height {pt.height}: {pt.price}upoly/1k tokens (demand {pt.demand}, target {pt.target})")
    if len(path) > 12:
        print(f"      ... {len(path) - 12} more blocks")
    now = model_price(c, model_id).price
    peak = max(int(pt.price) for pt in path) if path else int(now.price)
    print(f"    peak {peak}, now {now.price} (base {now.base_price}): back at the base price")
    done = [wait_request(c, rid, 600) for rid in rids]
    answered = sum(st.request.status == inf_t.REQUEST_STATUS_COMPLETED for st in done)
    passed = sum(r.passed for st in done for r in st.results if r.id == st.request.answer_result_id)
    print(f"    {answered} of {len(rids)} burst requests answered and scored, {passed} passed TIQE")


def print_ratings(c: SyncClient, names: dict[str, str]) -> None:
    ratings = c.query("/polylink.tiqe.v1.Query/Ratings", tiqe_q.QueryRatingsRequest(),
                      tiqe_q.QueryRatingsResponse).ratings
    print("==> validator ratings (1 - sigma of their deviations from the final quality and fidelity, ppm):")
    for r in ratings:
        print(f"    {names.get(r.validator, r.validator)}: rating {r.rating_ppm}, reveals {r.reveals},"
              f" misses {r.misses}")


def print_earnings(c: SyncClient) -> None:
    t = c.query("/polylink.rewards.v1.Query/Totals", rw_q.QueryTotalsRequest(), rw_q.QueryTotalsResponse).totals
    print(f"==> who earned what since genesis (upoly): from fees: workers {t.to_workers}, model providers"
          f" {t.to_providers}, validators {t.to_validators}, community pool {t.to_community}; refunded worker"
          f" shares {t.refunded}; from emission: validators {t.emission_to_validators}, community pool"
          f" {t.emission_to_community}")
    e = c.query("/polylink.rewards.v1.Query/Emission", rw_q.QueryEmissionRequest(), rw_q.QueryEmissionResponse)
    print(f"    supply: initial {e.initial_supply} + minted {e.minted} - burned {e.burned} = {e.total_supply};"
          f" community pool {e.community_pool}")


def wait_request(c: SyncClient, rid: int, timeout: float = 180.0) -> inf_q.QueryRequestResponse:
    done = (inf_t.REQUEST_STATUS_COMPLETED, inf_t.REQUEST_STATUS_FAILED)
    deadline = time.monotonic() + timeout
    while True:
        st = c.query("/polylink.inference.v1.Query/Request", inf_q.QueryRequestRequest(id=rid),
                     inf_q.QueryRequestResponse)
        if st.request.status in done or time.monotonic() > deadline:
            return st
        time.sleep(0.5)


def run(net: Localnet) -> None:
    t0 = time.perf_counter()
    print(f"==> starting {NODES} validators (CometBFT {NODES} nodes + {NODES} app processes) in {HOME}")
    net.create()
    # the localnet template has no emission (its tests count the supply exactly): the demo mints
    net.set_genesis_params("rewards", block_reward=str(BLOCK_REWARD))
    net.set_genesis_params("inference", **INFERENCE_PARAMS)
    net.up()
    print(f"    ready in {time.perf_counter() - t0:.1f}s; {BLOCK_REWARD}upoly minted per block for the validators")
    kr = net.keyring()
    addr = {k: kr.show(k).address for k in (*net.validator_keys, *net.user_keys)}
    names = {a: k for k, a in addr.items()}
    with SyncClient(net.rpc_url(0), keyring=kr) as c:
        transfers_demo(c, addr)
        url = start_services(net, c, addr)
        gateway_demo(net, c, url, names)
        other_words_demo(c)
        pricing_demo(c, addr, MODEL)
        print_ratings(c, names)
        print_earnings(c)
    print("==> every node's height and app hash:")
    for s in net.status():
        print(f"    node{s['node']}: height {s['height']} app_hash {s['app_hash']}  rpc {s['rpc']}")
    print(f"\nDone in {time.perf_counter() - t0:.0f}s. The localnet, its 4 scorers, 4 workers and the gateway keep"
          f" running:\n"
          f"    dashboard: {url}/dashboard\n"
          f"    curl -s {url}/v1/chat/completions -H 'Authorization: Bearer {API_KEY}'"
          f" -H 'Content-Type: application/json' \\\n"
          f"        -d '{{\"model\": \"{MODEL}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello!\"}}]}}'\n"
          f"    .venv/bin/polylink query inference request 1 --node {net.rpc_url(0)}\n"
          f"    .venv/bin/polylink localnet status --home {HOME}\n"
          f"Logs: {HOME}/services/*.log\n"
          f"Stop it with: make demo-down")


def demo_lock() -> IO[str] | None:
    """Held while this demo runs (released when it exits): a second `make demo` that starts meanwhile,
    even before the network's state is on disk, sees it. None if another demo holds it."""
    f = open(__file__)  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


def main() -> int:
    lock = demo_lock()
    if lock is None:
        print(f"==> a demo is already running in {HOME} (another `make demo` is still setting it up); dashboard"
              f" {dashboard_url()}; `make demo-down` stops it")
        return 0
    net = Localnet(HOME, nodes=NODES, accounts=ACCOUNTS)
    if net.created and any(any(net.running(i).values()) for i in range(net.nodes)):
        print(f"==> a demo localnet is already running in {HOME}; dashboard {dashboard_url()};"
              " `make demo-down` stops it")
        return 0
    if HOME.exists():  # a stopped demo network is disposable: start a fresh chain
        net.down()  # anything of it still running (a service whose nodes are gone)
        shutil.rmtree(HOME)
        net = Localnet(HOME, nodes=NODES, accounts=ACCOUNTS)
    busy = busy_ports(DEFAULT_BASE_PORT, NODES) + ([] if port_free(GATEWAY_PORT) else [GATEWAY_PORT])
    if busy:
        print(f"ports {busy} are busy; stop what uses them or run `make demo-down`", file=sys.stderr)
        return 1
    try:
        run(net)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        print("\n==> interrupted: stopping everything the demo started", flush=True)
        pids = net.down()
        print(f"    stopped {len(pids)} processes; nothing of the demo is left running")
        return 130
    except BaseException:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(f"==> the demo failed: stopping everything it started (logs stay in {HOME})", file=sys.stderr)
        net.down()
        raise
    finally:
        lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
