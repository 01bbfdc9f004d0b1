"""The gateway and its dashboard on the real localnet, driven by the official `openai` client.

4 validators, each with a real TIQE scorer (`polylink validator run`), two
honest workers on the embedded SmolLM2 model and one degraded worker
(`degrade = "shuffle"`) serving a second registered id, and the gateway
(`polylink gateway run`, a subprocess on a free loopback port, stopped by
PID). Covered: a plain chat completion whose answer, quality, committee
scores, txs, price and fee are the chain's; a swarm (redundancy 2) streamed
over SSE; an answer that fails TIQE refused with 422 under min_quality; a
timeout as 504 with the request still on chain; a bad API key as 401 with
nothing signed; and the dashboard in headless Chromium showing the live
models, prices, workers, validators and requests (screenshot saved).
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import types_pb2 as inf_t
from polylink.registry.v1 import query_pb2 as reg_q
from polylink.registry.v1 import tx_pb2 as reg_tx

from chain.client.sync import SyncClient
from chain.localnet.gateway import GatewaySpec, gateway_url, start_gateway, stop_gateway
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from chain.localnet.scorers import ScorerSpec, start_scorer
from chain.localnet.workers import WorkerSpec, start_worker
from worker.models import EMBEDDED_MODEL

pytestmark = pytest.mark.e2e

MODEL = EMBEDDED_MODEL.model_id  # honest workers user1, user2
DEGRADED = "smollm2-degraded"  # only user3, whose engine shuffles its answers' words
GATEWAY_KEY = "user4"
API_KEY = "sk-polylink-e2e"
ENGINE: dict[str, Any] = {"kind": "llamacpp", "n_threads": 1, "n_ctx": 1024}
MAX_TOKENS = 32
WAIT_S = 420.0


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    n = Localnet(tmp_path_factory.mktemp("gateway"), nodes=4, base_port=find_free_base_port(4), accounts=5)
    try:
        n.create()
        # every process of this test shares 2 cores: a 32-token answer can take 15 s, longer than
        # the default 30-block deadlines at localnet block times, so give the workers room
        n.set_genesis_params(
            "inference", result_timeout_blocks="400", commit_timeout_blocks="400", reveal_timeout_blocks="200"
        )
        n.up()
        yield n
    finally:
        n.down()
        assert list(n.pids()) == []


@pytest.fixture(scope="module")
def c(net: Localnet) -> Iterator[SyncClient]:
    with SyncClient(net.rpc_url(0), keyring=net.keyring()) as client:
        yield client


def addr(net: Localnet, key: str) -> str:
    return net.keyring().show(key).address


@pytest.fixture(scope="module")
def chain(net: Localnet, c: SyncClient) -> None:
    """Two model ids on the embedded weights, their workers, and a scorer per validator, all ready."""
    m = EMBEDDED_MODEL
    msgs = [
        reg_tx.MsgRegisterModel(
            provider=addr(net, "user0"),
            model_id=mid,
            family=m.family,
            version=m.version,
            sha256=m.sha256,
            license=m.license,
            context_length=m.context_length,
            royalty_ppm=50_000,
            base_price="1000",
        )
        for mid in (MODEL, DEGRADED)
    ]
    c.send_and_wait(msgs, "user0", gas=1_000_000, timeout=60).raise_for_code()
    start_worker(net, WorkerSpec(key="user1", models=[MODEL], engine=ENGINE, poll_interval_s=1.0))
    start_worker(net, WorkerSpec(key="user2", models=[MODEL], engine=ENGINE, poll_interval_s=1.0, node=1))
    start_worker(
        net,
        WorkerSpec(
            key="user3", models=[DEGRADED], engine={**ENGINE, "degrade": "shuffle"}, poll_interval_s=1.0, node=2
        ),
    )
    for i, key in enumerate(net.validator_keys):
        start_scorer(net, ScorerSpec(key=key, node=i))
    for key in net.validator_keys:
        log = net.home / "services" / f"scorer-{key}.log"
        wait_for(
            lambda p=log: '"event": "validator.scoring"' in (p.read_text() if p.exists() else ""),
            f"scorer {key} to load its models",
            300,
        )
    for key in ("user1", "user2", "user3"):
        wait_for(lambda k=key: _registered(c, addr(net, k)), f"worker {key} to register", 180)


def _registered(c: SyncClient, address: str) -> bool:
    try:
        c.query(
            "/polylink.registry.v1.Query/Worker", reg_q.QueryWorkerRequest(address=address), reg_q.QueryWorkerResponse
        )
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def gateway(net: Localnet, chain: None) -> Iterator[str]:
    """`polylink gateway run` on a free loopback port (port 0: the OS picks it, the log says which)."""
    rec = start_gateway(
        net,
        GatewaySpec(
            key=GATEWAY_KEY, node=3, api_keys=[API_KEY], settings={"max_tokens": MAX_TOKENS, "timeout_s": WAIT_S}
        ),
    )
    try:
        yield gateway_url(net, 60)
    finally:
        pids = stop_gateway(net)
        assert rec.pid in pids


def oa(url: str, key: str = API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=WAIT_S + 60)


def request_state(c: SyncClient, rid: int) -> inf_q.QueryRequestResponse:
    return c.query(
        "/polylink.inference.v1.Query/Request", inf_q.QueryRequestRequest(id=rid), inf_q.QueryRequestResponse
    )


def closed_state(c: SyncClient, rid: int) -> inf_q.QueryRequestResponse:
    """The request as `c`'s node (node 0) shows it once closed there: the gateway follows node 3,
    which may commit the closing block a moment before node 0 does."""
    done = (inf_t.REQUEST_STATUS_COMPLETED, inf_t.REQUEST_STATUS_FAILED)
    wait_for(lambda: request_state(c, rid).request.status in done, f"request {rid} to close on node 0", 30)
    return request_state(c, rid)


def paid(res: Any) -> int:
    return sum(int(x or "0") for x in (res.worker_paid, res.royalty_paid, res.validators_paid, res.community_paid))


ANSWERS: dict[str, str] = {}  # what the dashboard test looks for


def test_models_are_listed_with_their_price(gateway: str) -> None:
    models = {m.id: m for m in oa(gateway).models.list().data}
    assert set(models) == {MODEL, DEGRADED}
    assert (models[MODEL].model_extra or {})["polylink"]["price"] == "1000"


def test_plain_chat_completion_is_the_verified_answer_on_chain(net: Localnet, c: SyncClient, gateway: str) -> None:
    t0 = time.monotonic()
    resp = oa(gateway).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Name the capital city of France."}], max_tokens=MAX_TOKENS
    )
    seconds = time.monotonic() - t0
    p = (resp.model_extra or {})["polylink"]
    st = closed_state(c, p["request_id"])
    answer = next(x for x in st.results if x.id == st.request.answer_result_id)
    assert resp.choices[0].message.content == answer.response and answer.response
    assert st.request.requester == addr(net, GATEWAY_KEY) and st.request.prompt == "Name the capital city of France."
    assert resp.usage is not None and resp.usage.completion_tokens == answer.completion_tokens
    assert p["scored"] and p["passed"] and p["quality_ppm"] == answer.quality_ppm and 0 < p["quality"] <= 1
    assert sorted(s["quality_ppm"] for s in p["scores"]) and len(p["scores"]) >= 2
    assert all(0 <= s["fidelity_ppm"] <= 1_000_000 for s in p["scores"]) and p["fidelity_ppm"] == answer.fidelity_ppm
    assert p["price"] == st.request.price == "1000" and p["fee_upoly"] == str(paid(answer)) and int(p["fee_upoly"]) > 0
    assert c.wait(p["request_tx"], 10).attributes("inference.requested")[0]["request_id"] == str(st.request.id)
    (result_tx,) = p["result_txs"]
    assert c.wait(result_tx, 10).attributes("inference.result")[0]["result_id"] == str(answer.id)
    ANSWERS["plain"] = answer.response
    print(f"\nplain request {st.request.id}: {seconds:.1f} s, quality {p['quality']:.3f}: {answer.response!r}")


def test_swarm_request_streams_the_best_verified_answer(c: SyncClient, gateway: str) -> None:
    stream = oa(gateway).chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What do bees make?"},
        ],
        max_tokens=MAX_TOKENS,
        stream=True,
        extra_body={"polylink": {"redundancy": 2}},
    )
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    (last,) = [ch for ch in chunks if (ch.model_extra or {}).get("polylink")]
    p = (last.model_extra or {})["polylink"]
    st = closed_state(c, p["request_id"])
    assert st.request.redundancy == 2 and len(st.results) == 2 and p["redundancy"] == 2
    assert st.request.prompt == "System: Answer in one sentence.\n\nUser: What do bees make?"
    answer = next(x for x in st.results if x.id == st.request.answer_result_id)
    assert text == answer.response and text
    assert answer.quality_ppm == max(x.quality_ppm for x in st.results) == p["quality_ppm"]
    assert len(p["results"]) == 2 and len(set(p["result_txs"])) == 2  # two reveal txs
    assert {r["worker"] for r in p["results"]} == {x.worker for x in st.results}
    ANSWERS["swarm"] = answer.response


def test_answer_that_fails_tiqe_is_refused_under_min_quality(c: SyncClient, gateway: str) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as e:
        oa(gateway).chat.completions.create(
            model=DEGRADED,
            messages=[{"role": "user", "content": "Why is exercise healthy?"}],
            max_tokens=MAX_TOKENS,
            extra_body={"polylink": {"min_quality": 0.5}},
        )
    err = (e.value.body or {}) if isinstance(e.value.body, dict) else {}
    assert e.value.status_code == 422 and e.value.code in ("answer_failed_tiqe", "quality_below_minimum")
    p = err["polylink"]
    st = closed_state(c, p["request_id"])
    (res,) = st.results
    assert res.scored and not res.passed and res.quality_ppm == p["quality_ppm"] < 500_000
    assert res.response not in json.dumps(err)  # an error, not the answer
    ANSWERS["degraded"] = res.response


def test_timeout_is_504_and_the_request_goes_on_on_chain(c: SyncClient, gateway: str) -> None:
    with pytest.raises(openai.InternalServerError) as e:
        oa(gateway).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Describe a cat in one sentence."}],
            max_tokens=MAX_TOKENS,
            extra_body={"polylink": {"timeout_s": 2}},
        )
    assert e.value.status_code == 504
    body = e.value.body if isinstance(e.value.body, dict) else {}
    assert body["code"] == "request_timeout" and body["type"] == "timeout" and "2 s" in body["message"]
    # the tx was signed and sent: it lands, and the request is served after the call gave up
    tx = c.wait(body["polylink"]["request_tx"], 60)
    rid = int(tx.attributes("inference.requested")[0]["request_id"])
    assert body["polylink"].get("request_id", rid) == rid
    assert request_state(c, rid).request.prompt == "Describe a cat in one sentence."


def test_bad_api_key_is_401_and_nothing_is_signed(net: Localnet, c: SyncClient, gateway: str) -> None:
    gw = addr(net, GATEWAY_KEY)
    acc = c.account(gw)
    before = acc.sequence if acc is not None else 0
    with pytest.raises(openai.AuthenticationError) as e:
        oa(gateway, "sk-wrong").chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert e.value.status_code == 401 and e.value.code == "invalid_api_key"
    r = httpx.post(
        gateway + "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    time.sleep(2)
    acc = c.account(gw)
    assert (acc.sequence if acc is not None else 0) == before


def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is missing: `make setup` installs Debian's chromium package")
    return exe


def browse(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        *extra,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def test_dashboard_renders_live_chain_data_in_headless_chromium(
    net: Localnet, c: SyncClient, gateway: str, tmp_path: Path
) -> None:
    if not ANSWERS:  # run alone: put an answer on chain first
        resp = oa(gateway).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "What do bees make?"}], max_tokens=MAX_TOKENS
        )
        ANSWERS["plain"] = resp.choices[0].message.content or ""
    page = gateway + "/dashboard"
    dom = browse(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    d = dom.stdout
    assert 'data-loaded="' in d, d[-3000:]
    status = c.status()
    assert f'id="chain-id">{status.chain_id}<' in d
    assert f'data-model="{MODEL}"' in d and f'data-model="{DEGRADED}"' in d  # table rows and chart lines
    assert d.count("<polyline") >= 2
    assert '<td class="num price">1000</td>' in d
    for key in ("user1", "user2", "user3"):
        assert f'data-worker="{addr(net, key)}"' in d
    for key in net.validator_keys:
        assert f'data-validator="{addr(net, key)}"' in d
    for text in ANSWERS.values():  # the newest requests, with their answers
        assert html.escape(text, quote=False) in d
    if "degraded" in ANSWERS:
        assert '<span class="pill bad">rejected</span>' in d  # the degraded answer TIQE refused

    shot = tmp_path / "dashboard.png"
    r = browse(page, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1400,1800", "--hide-scrollbars")
    assert r.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, r.stderr[-2000:]
    print(f"\ndashboard screenshot: {shot}")


FLOOD = 12  # concurrent calls: bounded, on loopback; under the per-key burst, so none is rate-limited


def gateway_request_ids(c: SyncClient, requester: str) -> set[int]:
    """Every inference request on chain from ``requester`` (all pages)."""
    from polylink.base.v1 import query_pb2 as base_q

    ids: set[int] = set()
    key = b""
    while True:
        r = c.query(
            "/polylink.inference.v1.Query/Requests",
            inf_q.QueryRequestsRequest(requester=requester, pagination=base_q.PageRequest(key=key, limit=200)),
            inf_q.QueryRequestsResponse,
        )
        ids |= {x.id for x in r.requests}
        key = r.pagination.next_key
        if not key:
            return ids


def _request_ids_in(body: object) -> list[int]:
    if isinstance(body, dict):
        return [int(v) for k, v in body.items() if k == "request_id"] + [
            i for v in body.values() for i in _request_ids_in(v)
        ]
    if isinstance(body, list):
        return [i for v in body for i in _request_ids_in(v)]
    return []


def test_a_flood_of_concurrent_calls_loses_no_request_the_chain_accepted(
    net: Localnet, c: SyncClient, gateway: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    me = addr(net, GATEWAY_KEY)
    before = gateway_request_ids(c, me)
    client = oa(gateway)

    def call(k: int) -> tuple[int, list[int]]:
        try:
            resp = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"Say one word about the number {k}."}],
                max_tokens=8,
            )
        except openai.APIStatusError as e:  # 429/503/504...: the body names any request it put on chain
            return e.status_code, _request_ids_in(e.body)
        return 200, [int((resp.model_extra or {})["polylink"]["request_id"])]

    t0 = time.monotonic()
    with ThreadPoolExecutor(FLOOD) as pool:
        outcomes = list(pool.map(call, range(FLOOD)))
    seconds = time.monotonic() - t0
    answered = [ids for status, ids in outcomes if status == 200]
    told = {i for _, ids in outcomes for i in ids}  # every request id a caller was given
    on_chain = gateway_request_ids(c, me) - before  # every request the chain accepted from the gateway
    assert on_chain == told, (sorted(on_chain), outcomes)  # none accepted and not reported to its caller
    assert len(answered) == FLOOD, outcomes  # and under the burst, every call was answered
    for rid in on_chain:  # each accepted request closed on chain, none left hanging
        assert closed_state(c, rid).request.status == inf_t.REQUEST_STATUS_COMPLETED, rid
    print(f"\nflood: {FLOOD} concurrent calls, {len(answered)} answered in {seconds:.1f} s "
          f"({len(answered) / seconds:.2f} verified answers/s); statuses {sorted(s for s, _ in outcomes)}")
