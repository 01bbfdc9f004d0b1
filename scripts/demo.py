"""`make demo`: a 4-validator localnet on loopback, real signed transfers, then real inference:
the embedded model registered, two workers serving it, prompts answered on chain.

Leaves the network and workers running (logs under localnet-demo/); `make demo-down` stops them.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
from chain.localnet.net import Localnet  # noqa: E402
from chain.localnet.ports import busy_ports  # noqa: E402
from chain.localnet.scorers import ScorerSpec, start_scorer  # noqa: E402
from chain.localnet.workers import WorkerSpec, start_worker  # noqa: E402
from worker.models import EMBEDDED_MODEL  # noqa: E402

HOME = ROOT / "localnet-demo"
NODES = 4
WORKERS = ("user1", "user2")
BASE_PRICE = 2_000  # upoly per 1000 tokens
BLOCK_REWARD = 1_000_000  # upoly minted per block (1 POLY), paid to the bonded validators by power
MAX_PRICE = 4 * BASE_PRICE  # what the demo's user accepts: the price moves with demand (SPEC 3.7)
# the load burst: short prompts (answers end long before max_tokens; the rest of the escrow is
# refunded), asking for more tokens a block than the workers' target (half their capacity)
BURST = ["Say hello in one word.", "Name one fruit.", "What color is grass?", "Name a planet.",
         "Say yes or no.", "Name a number."]
BURST_BLOCKS = 3
BURST_MAX_TOKENS = 400
PROMPTS = [
    ("Name the capital city of France.", 1),
    ("Give me three tips for staying focused while studying.", 1),
    ("In one sentence, why is the sky blue?", 2),  # a swarm: two workers commit, then reveal
]


def inference_demo(net: Localnet, c: SyncClient, addr: dict[str, str]) -> None:
    """Register the embedded model, start two workers on it, send real prompts, print the on-chain answers."""
    m = EMBEDDED_MODEL
    have = c.query("/polylink.registry.v1.Query/Models", reg_q.QueryModelsRequest(), reg_q.QueryModelsResponse)
    if m.model_id not in {x.model_id for x in have.models}:
        print(f"==> user0 registers the model {m.model_id} (sha256 {m.sha256[:16]}.., base price {BASE_PRICE}upoly"
              " per 1000 tokens, royalty 5%)")
        r = c.send_and_wait([reg_tx.MsgRegisterModel(
            provider=addr["user0"], model_id=m.model_id, family=m.family, version=m.version, sha256=m.sha256,
            license=m.license, context_length=m.context_length, royalty_ppm=50_000, base_price=str(BASE_PRICE),
        )], "user0", gas=400_000, timeout=60)
        r.raise_for_code()
    print(f"==> starting {net.nodes} validator scorers (polylink validator run: TIQE on SmolLM2 + MiniLM)")
    for i, key in enumerate(net.validator_keys):
        start_scorer(net, ScorerSpec(key=key, node=i))
    print(f"==> starting {len(WORKERS)} workers (polylink worker run) on the embedded model with llama.cpp")
    for i, key in enumerate(WORKERS):
        start_worker(net, WorkerSpec(key=key, models=[m.model_id], node=i % net.nodes, poll_interval_s=1.0,
                                     engine={"kind": "llamacpp", "n_threads": 1, "n_ctx": 2048}))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ws = c.query("/polylink.registry.v1.Query/Workers", reg_q.QueryWorkersRequest(model_id=m.model_id),
                     reg_q.QueryWorkersResponse).workers
        if {addr[k] for k in WORKERS} <= {w.address for w in ws}:
            break
        time.sleep(0.5)
    else:
        raise SystemExit(f"workers did not register in time; see {HOME}/services/*.log")
    for w in ws:
        print(f"    worker {w.address}: bond {w.bond}upoly, capacity {w.capacity} tokens/block,"
              f" models {list(w.models)}")
    print("==> user0 sends prompts (MsgRequestInference); workers answer on chain")
    for prompt, n in PROMPTS:
        t0 = time.perf_counter()
        r = c.send_and_wait([inf_tx.MsgRequestInference(
            requester=addr["user0"], model_id=m.model_id, prompt=prompt, max_tokens=64,
            max_price=str(MAX_PRICE), redundancy=n)], "user0", gas=400_000, timeout=60)
        r.raise_for_code()
        rid = int(r.attributes("inference.requested")[0]["request_id"])
        st = wait_request(c, rid)
        req = st.request
        escrow = r.attributes("inference.requested")[0]["escrow"]
        print(f"\n    request {rid} (height {r.height}, redundancy {n}, price {req.price}upoly/1k tokens,"
              f" escrow {escrow}upoly): {prompt!r}")
        if req.status != inf_t.REQUEST_STATUS_COMPLETED:
            print(f"      FAILED: {req.failure}")
            continue
        for res in st.results:
            mark = "answer" if res.id == req.answer_result_id else "also "
            text = " ".join(res.response.split())
            verdict = "passed" if res.passed else "REJECTED"
            print(f"      {mark} by {res.worker[:14]}.. ({res.completion_tokens} tokens, quality {res.quality_ppm} ppm"
                  f" {verdict}): {text[:300]}")
            print(f"        fee split: worker {res.worker_paid}, provider royalty {res.royalty_paid},"
                  f" scoring committee {res.validators_paid or 0}, community pool {res.community_paid or 0} (upoly)")
            rnd = c.query("/polylink.tiqe.v1.Query/Round", tiqe_q.QueryRoundRequest(result_id=res.id),
                          tiqe_q.QueryRoundResponse).round
            scores = ", ".join(f"{m.validator[:12]}..={m.score_ppm if m.revealed else 'no reveal'}"
                               for m in rnd.members)
            print(f"        committee (committed, then revealed): {scores or 'none'};"
                  f" weighted median {rnd.quality_ppm}")
        print(f"      closed at height {req.completed_height} ({time.perf_counter() - t0:.1f}s after sending);"
              f" unused escrow refunded")
    pricing_demo(c, addr, m.model_id)
    print_ratings(c)
    t = c.query("/polylink.rewards.v1.Query/Totals", rw_q.QueryTotalsRequest(), rw_q.QueryTotalsResponse).totals
    print(f"==> who earned what since genesis (upoly): from fees: workers {t.to_workers}, model providers"
          f" {t.to_providers}, validators {t.to_validators}, community pool {t.to_community}; refunded worker"
          f" shares {t.refunded}; from emission: validators {t.emission_to_validators}, community pool"
          f" {t.emission_to_community}")
    e = c.query("/polylink.rewards.v1.Query/Emission", rw_q.QueryEmissionRequest(), rw_q.QueryEmissionResponse)
    print(f"    supply: initial {e.initial_supply} + minted {e.minted} - burned {e.burned} = {e.total_supply};"
          f" community pool {e.community_pool}")


def model_price(c: SyncClient, model_id: str) -> pricing_q.QueryPriceResponse:
    return c.query("/polylink.pricing.v1.Query/Price", pricing_q.QueryPriceRequest(model_id=model_id),
                   pricing_q.QueryPriceResponse)


def pricing_demo(c: SyncClient, addr: dict[str, str], model_id: str) -> None:
    """A load burst: the price climbs while demand exceeds the target, then falls back to the base."""
    mp = model_price(c, model_id).price
    print(f"\n==> load burst: {len(BURST)} requests of up to {BURST_MAX_TOKENS} tokens in each of {BURST_BLOCKS}"
          f" blocks ({len(BURST) * BURST_MAX_TOKENS} tokens a block); price now {mp.price}upoly/1k tokens"
          f" (base {mp.base_price})")
    rids: list[int] = []
    heights: list[int] = []
    for _ in range(BURST_BLOCKS):
        msgs = [inf_tx.MsgRequestInference(requester=addr["user0"], model_id=model_id, prompt=p,
                                           max_tokens=BURST_MAX_TOKENS, max_price=str(MAX_PRICE)) for p in BURST]
        r = c.send_and_wait(msgs, "user0", gas=2_000_000, timeout=60)
        r.raise_for_code()
        heights.append(r.height)
        rids += [int(a["request_id"]) for a in r.attributes("inference.requested")]
        paid = sorted({a["price"] for a in r.attributes("inference.requested")})
        print(f"    height {r.height}: {len(msgs)} requests paid {', '.join(paid)}upoly/1k tokens")
    for rid in rids:
        wait_request(c, rid)
    # the price path from the chain's history, oldest first, from the first burst block on
    hist = c.query("/polylink.pricing.v1.Query/History", pricing_q.QueryHistoryRequest(model_id=model_id),
                   pricing_q.QueryHistoryResponse).points
    path = [pt for pt in reversed(hist) if pt.height >= heights[0]]
    print("    price set at the end of each block (pricing History query; demand vs target in tokens):")
    for pt in path[:20]:
        print(f"      height {pt.height}: {pt.price}upoly/1k tokens (demand {pt.demand}, target {pt.target})")
    now = model_price(c, model_id).price
    peak = max(int(pt.price) for pt in path) if path else int(now.price)
    print(f"    peak {peak}, now {now.price} (base {now.base_price}): "
          + ("back at the base price" if now.price == now.base_price else "still falling 1/8 a block"))
    done = [wait_request(c, rid) for rid in rids]
    answered = sum(st.request.status == inf_t.REQUEST_STATUS_COMPLETED for st in done)
    print(f"    {answered} of {len(rids)} burst requests answered and scored")


def print_ratings(c: SyncClient) -> None:
    ratings = c.query("/polylink.tiqe.v1.Query/Ratings", tiqe_q.QueryRatingsRequest(),
                      tiqe_q.QueryRatingsResponse).ratings
    print("==> validator ratings (1 - sigma of their deviations from the final quality, ppm):")
    for r in ratings:
        print(f"    {r.validator}: rating {r.rating_ppm}, reveals {r.reveals}, misses {r.misses}")


def wait_request(c: SyncClient, rid: int, timeout: float = 180.0) -> inf_q.QueryRequestResponse:
    done = (inf_t.REQUEST_STATUS_COMPLETED, inf_t.REQUEST_STATUS_FAILED)
    deadline = time.monotonic() + timeout
    while True:
        st = c.query("/polylink.inference.v1.Query/Request", inf_q.QueryRequestRequest(id=rid),
                     inf_q.QueryRequestResponse)
        if st.request.status in done or time.monotonic() > deadline:
            return st
        time.sleep(0.5)


def main() -> int:
    net = Localnet(HOME, nodes=NODES, accounts=3)
    if net.created and not any(any(net.running(i).values()) for i in range(net.nodes)):
        shutil.rmtree(HOME)  # a stopped demo network is disposable: start a fresh chain
        net = Localnet(HOME, nodes=NODES, accounts=3)
    if net.created:
        print(f"==> a demo localnet is already running in {HOME}; `make demo-down` stops it")
    else:
        if not net.created:
            busy = busy_ports(26600, NODES)
            if busy:
                print(f"ports {busy} are busy; stop what uses them or run `make demo-down`", file=sys.stderr)
                return 1
        print(f"==> starting {NODES} validators (CometBFT {net.nodes} nodes + {net.nodes} app processes) in {HOME}")
        t0 = time.perf_counter()
        net.create()
        # the localnet template has no emission (its tests count the supply exactly): the demo mints
        net.set_genesis_params("rewards", block_reward=str(BLOCK_REWARD))
        net.up()
        print(f"    ready in {time.perf_counter() - t0:.1f}s; {BLOCK_REWARD}upoly minted per block for the validators")
    kr = net.keyring()
    users = net.user_keys
    addr = {u: kr.show(u).address for u in users}
    with SyncClient(net.rpc_url(0), keyring=kr) as c:
        print(f"==> chain {c.chain_id()}; accounts: " + ", ".join(f"{u}={a}" for u, a in addr.items()))
        before = {u: c.balance(a) for u, a in addr.items()}
        print("==> sending 3 signed transfers through CometBFT RPC and waiting for each block")
        for src, dst, amount in (("user0", "user1", 1_500_000), ("user1", "user2", 250_000), ("user2", "user0", 42)):
            res = c.bank_send(src, addr[dst], f"{amount}upoly")
            tx = c.wait(res.hash, timeout=60)
            print(
                f"    {src} -> {dst} {amount}upoly: height {tx.height}, code {tx.code},"
                f" gas {tx.gas_used}/{tx.gas_wanted}, tx {tx.hash[:16]}.."
            )
        print("==> balances (upoly), before -> after (each transfer also paid a 2000upoly fee):")
        for u, a in addr.items():
            print(f"    {u}: {before[u]} -> {c.balance(a)}")
        print(f"    total supply: {c.total_supply()}")
    with SyncClient(net.rpc_url(0), keyring=kr) as c:
        vals = c.query("/polylink.staking.v1.Query/Validators", staking_q.QueryValidatorsRequest(),
                       staking_q.QueryValidatorsResponse).validators
        print("==> validators (created by the staking module from each operator's gentx):")
        for v in vals:
            print(f"    {v.moniker}: operator {v.operator_address}, tokens {v.tokens}upoly, "
                  f"commission {v.commission_ppm / 10_000:g}%, {'jailed' if v.jailed else 'active'}")
        inference_demo(net, c, addr)
    print("==> every node's height and app hash:")
    for s in net.status():
        print(f"    node{s['node']}: height {s['height']} app_hash {s['app_hash']}  rpc {s['rpc']}")
    print(f"\nThe localnet keeps running. Try:\n"
          f"    .venv/bin/polylink query bank balances {addr['user0']} --node {net.rpc_url(0)}\n"
          f"    .venv/bin/polylink localnet status --home {HOME}\n"
          f"    .venv/bin/polylink query inference request 1 --node {net.rpc_url(0)}\n"
          f"    .venv/bin/polylink tx inference request --model {EMBEDDED_MODEL.model_id} --prompt 'Hello!' --wait"
          f" --key user0 --home {HOME} --node {net.rpc_url(0)}\n"
          f"Worker logs: {HOME}/services/worker-*.log\n"
          f"Stop it with: make demo-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
