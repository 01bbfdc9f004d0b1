"""The gateway's service and HTTP layer against an in-memory chain (`FakeChain`, the `ChainClient` seam).

Covered: the request the gateway signs (model, prompt, sampling, redundancy,
max_price from the pricing module or the base price), the `polylink` field
(request id, txs, quality, committee scores, price, fee), the refusals
(failed TIQE, min_quality, unscored with a minimum) as 422, a timeout as
504, a FAILED request as 503, an unknown model as 404, chain limits as 400,
API keys (401 in OpenAI's format), SSE framing over HTTP, and the official
`openai` client parsing every reply unchanged (plain, stream, errors).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import openai
import pytest
from google.protobuf.message import Message
from polylink.base.v1 import query_pb2 as base_q
from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import tx_pb2 as inf_tx
from polylink.inference.v1 import types_pb2 as inf_t
from polylink.pricing.v1 import query_pb2 as pricing_q
from polylink.pricing.v1 import types_pb2 as pricing_t
from polylink.registry.v1 import query_pb2 as reg_q
from polylink.registry.v1 import types_pb2 as reg_t
from polylink.staking.v1 import query_pb2 as staking_q
from polylink.tiqe.v1 import query_pb2 as tiqe_q
from polylink.tiqe.v1 import types_pb2 as tiqe_t
from starlette.testclient import TestClient

from chain.client.errors import ChainQueryError
from chain.client.results import BroadcastResult, NodeStatus, RpcEvent, TxResult
from chain.client.signer import Signer
from chain.core.events import Event
from gateway.calls import Call, Options
from gateway.chain import BlockWatcher, PollWaker
from gateway.config import ServiceConfig
from gateway.dashboard.data import DashboardData
from gateway.errors import ApiError
from gateway.inference import InferenceService
from gateway.server import create_app

MODEL = "smollm2-test"
WORKERS = [Signer.generate().address for _ in range(3)]
VALIDATORS = [Signer.generate().address for _ in range(4)]
TXHASH = "AB" * 32


class FakeRPC:
    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.validator_set: list[dict[str, Any]] = []

    async def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        self.calls.append((method, params or {}))
        if method == "tx_search":
            rid = int(str((params or {})["query"]).rsplit("=", 1)[1])
            return {"txs": [{"hash": h} for h in self.chain.result_txs.get(rid, [])], "total_count": "0"}
        if method == "blockchain":
            hi = int((params or {})["maxHeight"])
            lo = int((params or {})["minHeight"])
            return {
                "block_metas": [
                    {"header": {"height": str(h), "time": f"2025-01-01T00:00:{h % 60:02d}.500000000Z"}}
                    for h in range(hi, lo - 1, -1)
                ]
            }
        raise AssertionError(f"unexpected rpc call {method}")

    async def validators(self, height: int | None = None) -> list[dict[str, Any]]:
        return self.validator_set

    async def subscribe(self, query: str) -> AsyncIterator[RpcEvent]:
        await asyncio.sleep(3600)
        yield RpcEvent(query, "", {}, {})  # never reached


Outcome = Callable[["FakeChain", inf_t.Request], None]


def answer_with(
    quality: int,
    *,
    scored: bool = True,
    passed: bool | None = None,
    text: str = "Paris is the capital.",
    fidelity: int = 950_000,
) -> Outcome:
    """What the network does to a new request: one result per slot, scored by a committee (both
    numbers), COMPLETED."""

    def apply(chain: FakeChain, r: inf_t.Request) -> None:
        results = []
        for i in range(r.redundancy):
            res_id = chain.next_result
            chain.next_result += 1
            q = quality - 100_000 * i  # a swarm's later answers are worse: the best one wins
            res = inf_t.Result(
                id=res_id,
                request_id=r.id,
                worker=WORKERS[i],
                response=text if i == 0 else f"worse answer {i}",
                completion_tokens=5,
                height=chain.height,
                quality_ppm=q if scored else 0,
                fidelity_ppm=fidelity if scored else 0,
                scored=scored,
                passed=(q >= 500_000 if passed is None else passed) if scored else True,
                worker_paid="3",
                royalty_paid="1",
                validators_paid="1",
                community_paid="0",
            )
            results.append(res)
            members = [
                tiqe_t.Member(
                    validator=v,
                    revealed=scored,
                    quality_ppm=q if scored else 0,
                    fidelity_ppm=fidelity if scored else 0,
                )
                for v in VALIDATORS[:3]
            ]
            chain.rounds[res_id] = tiqe_t.Round(
                result_id=res_id,
                request_id=r.id,
                worker=res.worker,
                phase=tiqe_t.ROUND_PHASE_FINAL,
                members=members,
                quality_ppm=res.quality_ppm,
                fidelity_ppm=res.fidelity_ppm,
                scored=scored,
                passed=res.passed,
            )
            chain.result_txs.setdefault(r.id, []).append(f"{res_id:064X}")
        chain.results[r.id] = results
        r.status = inf_t.REQUEST_STATUS_COMPLETED
        r.answer_result_id = results[0].id
        r.completed_height = chain.height + 3

    return apply


def fail_with(reason: str) -> Outcome:
    def apply(chain: FakeChain, r: inf_t.Request) -> None:
        r.status = inf_t.REQUEST_STATUS_FAILED
        r.failure = reason

    return apply


def never(chain: FakeChain, r: inf_t.Request) -> None:
    r.status = inf_t.REQUEST_STATUS_ASSIGNED


class FakeChain:
    """An in-memory chain answering the gateway's queries by ABCI path, the way the app does."""

    def __init__(self, outcome: Outcome | None = None, *, pricing: dict[str, str] | None = None) -> None:
        self.rpc = FakeRPC(self)
        self.height = 100
        self.models = {
            MODEL: reg_t.Model(
                model_id=MODEL, provider=WORKERS[2], family="smollm2", base_price="1000", registered_height=3
            )
        }
        # None: the app has no pricing module (its queries fail like an unknown path)
        self.pricing = pricing
        self.history: dict[str, list[pricing_t.PricePoint]] = {}
        self.requests: dict[int, inf_t.Request] = {}
        self.results: dict[int, list[inf_t.Result]] = {}
        self.rounds: dict[int, tiqe_t.Round] = {}
        self.result_txs: dict[int, list[str]] = {}
        self.workers: list[reg_t.Worker] = []
        self.stats: dict[str, list[reg_t.WorkerModelStats]] = {}
        self.validators: list[Any] = []
        self.ratings: dict[str, int] = {}
        self.sent: list[Message] = []
        self.gas: list[int] = []
        self.reads: Counter[str] = Counter()
        self.outcome = outcome or answer_with(800_000)
        self.reads_before_close = 1
        self.next_result = 1
        self.params = inf_t.Params(max_tokens_limit=1024, max_redundancy=4, max_prompt_bytes=8192)

    # -- ChainClient -------------------------------------------------------------------------

    async def status(self) -> NodeStatus:
        return NodeStatus("fake-chain", "node", "n0", self.height, "", "2025-01-01T00:01:40.5Z", False)

    async def min_gas_price_ppm(self, refresh: bool = False) -> int:
        return 10_000

    async def send(self, msgs: Sequence[Message], key: Any, *, gas: int = 0) -> BroadcastResult:
        self.sent.extend(msgs)
        self.gas.append(gas)
        return BroadcastResult(hash=TXHASH)

    async def wait(self, txhash: str, timeout: float = 30.0) -> TxResult:
        msg = self.sent[-1]
        assert isinstance(msg, inf_tx.MsgRequestInference)
        rid = self.add_request(msg)
        ev = Event.of("inference.requested", request_id=rid)
        return TxResult(hash=txhash, height=self.height, events=(ev,))

    def add_request(self, msg: inf_tx.MsgRequestInference) -> int:
        """The request as the chain stores it (PENDING); returns its id."""
        rid = len(self.requests) + 1
        price = self.pricing[msg.model_id] if self.pricing else self.models[msg.model_id].base_price
        self.requests[rid] = inf_t.Request(
            id=rid,
            requester=msg.requester,
            model_id=msg.model_id,
            prompt=msg.prompt,
            max_tokens=msg.max_tokens,
            sampling=msg.sampling,
            max_price=msg.max_price,
            price=price,
            redundancy=msg.redundancy or 1,
            status=inf_t.REQUEST_STATUS_PENDING,
            created_height=self.height,
        )
        return rid

    async def query(self, path: str, request: Message, response_cls: type[Any], height: int = 0) -> Any:
        self.reads[path] = self.reads[path] + 1
        name = path.rsplit("/", 1)[1]
        svc = path.split(".")[1]
        handler = getattr(self, f"_q_{svc}_{name}", None)
        if handler is None or (svc == "pricing" and self.pricing is None):
            raise ChainQueryError(path, "tx", 9, f"unknown message type: query path {path}")
        return handler(request)

    # -- query handlers ----------------------------------------------------------------------

    def _q_registry_Model(self, req: reg_q.QueryModelRequest) -> reg_q.QueryModelResponse:
        if req.model_id not in self.models:
            raise ChainQueryError("/polylink.registry.v1.Query/Model", "registry", 9, "no model")
        return reg_q.QueryModelResponse(model=self.models[req.model_id])

    def _q_registry_Models(self, req: reg_q.QueryModelsRequest) -> reg_q.QueryModelsResponse:
        return reg_q.QueryModelsResponse(models=[self.models[k] for k in sorted(self.models)])

    def _q_registry_Workers(self, req: reg_q.QueryWorkersRequest) -> reg_q.QueryWorkersResponse:
        start = int(req.pagination.key or b"0")
        n = req.pagination.limit or 100
        page = self.workers[start : start + n]
        nxt = str(start + n).encode() if start + n < len(self.workers) else b""
        return reg_q.QueryWorkersResponse(workers=page, pagination=base_q.PageResponse(next_key=nxt))

    def _q_registry_Worker(self, req: reg_q.QueryWorkerRequest) -> reg_q.QueryWorkerResponse:
        w = next(w for w in self.workers if w.address == req.address)
        return reg_q.QueryWorkerResponse(worker=w, stats=self.stats.get(req.address, []))

    def _q_pricing_Price(self, req: pricing_q.QueryPriceRequest) -> pricing_q.QueryPriceResponse:
        assert self.pricing is not None
        m = self.models[req.model_id]
        return pricing_q.QueryPriceResponse(
            price=pricing_t.ModelPrice(model_id=m.model_id, price=self.pricing[m.model_id], base_price=m.base_price)
        )

    def _q_pricing_Prices(self, req: pricing_q.QueryPricesRequest) -> pricing_q.QueryPricesResponse:
        assert self.pricing is not None
        return pricing_q.QueryPricesResponse(
            prices=[
                pricing_t.ModelPrice(
                    model_id=k, price=v, base_price=self.models[k].base_price, height=self.height, demand=7, target=9
                )
                for k, v in sorted(self.pricing.items())
            ]
        )

    def _q_pricing_History(self, req: pricing_q.QueryHistoryRequest) -> pricing_q.QueryHistoryResponse:
        pts = self.history.get(req.model_id, [])[: req.pagination.limit or 100]
        return pricing_q.QueryHistoryResponse(points=pts)

    def _q_inference_Params(self, req: inf_q.QueryParamsRequest) -> inf_q.QueryParamsResponse:
        return inf_q.QueryParamsResponse(params=self.params)

    def _q_inference_Request(self, req: inf_q.QueryRequestRequest) -> inf_q.QueryRequestResponse:
        r = self.requests[req.id]
        if r.status not in (inf_t.REQUEST_STATUS_COMPLETED, inf_t.REQUEST_STATUS_FAILED):
            self.reads_before_close -= 1
            if self.reads_before_close <= 0:
                self.outcome(self, r)
        return inf_q.QueryRequestResponse(request=r, results=self.results.get(r.id, []))

    def _q_inference_Requests(self, req: inf_q.QueryRequestsRequest) -> inf_q.QueryRequestsResponse:
        ids = sorted(self.requests, reverse=True)  # newest first, as the chain pages them
        start = int(req.pagination.key) if req.pagination.key else ids[0] if ids else 0
        n = req.pagination.limit or 100
        page = [i for i in ids if i <= start][:n]
        rest = [i for i in ids if i < (page[-1] if page else 0)]
        nxt = str(rest[0]).encode() if rest else b""
        return inf_q.QueryRequestsResponse(
            requests=[self.requests[i] for i in page], pagination=base_q.PageResponse(next_key=nxt)
        )

    def _q_tiqe_Round(self, req: tiqe_q.QueryRoundRequest) -> tiqe_q.QueryRoundResponse:
        if req.result_id not in self.rounds:
            raise ChainQueryError("/polylink.tiqe.v1.Query/Round", "tiqe", 5, "no round")
        return tiqe_q.QueryRoundResponse(round=self.rounds[req.result_id])

    def _q_tiqe_Rating(self, req: tiqe_q.QueryRatingRequest) -> tiqe_q.QueryRatingResponse:
        return tiqe_q.QueryRatingResponse(
            rating=tiqe_t.ValidatorRating(validator=req.validator, rating_ppm=self.ratings.get(req.validator, 900_000))
        )

    def _q_staking_Validators(self, req: staking_q.QueryValidatorsRequest) -> staking_q.QueryValidatorsResponse:
        return staking_q.QueryValidatorsResponse(validators=self.validators)


GATEWAY_KEY = Signer.generate()


def service(chain: FakeChain, **cfg: Any) -> InferenceService:
    return InferenceService(chain, GATEWAY_KEY, ServiceConfig(poll_interval_s=0.01, **cfg))


def run(chain: FakeChain, call: Call, **cfg: Any) -> Any:
    return asyncio.run(service(chain, **cfg).run(call))


def call(**kw: Any) -> Call:
    return Call(
        kind="chat", model=kw.pop("model", MODEL), prompt=kw.pop("prompt", "What is the capital of France?"), **kw
    )


# --- the service ------------------------------------------------------------------------------


def test_request_is_signed_from_the_call_and_the_reply_carries_the_chain_record() -> None:
    chain = FakeChain()
    v = run(chain, call(max_tokens=40, temperature_ppm=700_000, top_p_ppm=900_000, seed=7))
    (msg,) = chain.sent
    assert isinstance(msg, inf_tx.MsgRequestInference)
    assert (msg.requester, msg.model_id, msg.prompt, msg.max_tokens) == (
        GATEWAY_KEY.address,
        MODEL,
        "What is the capital of France?",
        40,
    )
    assert (msg.sampling.temperature_ppm, msg.sampling.top_p_ppm, msg.sampling.seed, msg.redundancy) == (
        700_000,
        900_000,
        7,
        1,
    )
    # no pricing module: the base price plus 25% headroom is the most it may cost
    assert msg.max_price == "1250"
    assert v.text == "Paris is the capital."
    p = v.polylink()
    assert p["request_id"] == 1 and p["request_tx"] == TXHASH and p["result_txs"] == [f"{1:064X}"]
    assert p["quality_ppm"] == 800_000 and p["quality"] == 0.8 and p["scored"] and p["passed"]
    assert p["fidelity_ppm"] == 950_000 and p["fidelity"] == 0.95
    assert [(s["quality_ppm"], s["quality"]) for s in p["scores"]] == [(800_000, 0.8)] * 3
    assert [(s["fidelity_ppm"], s["fidelity"]) for s in p["scores"]] == [(950_000, 0.95)] * 3
    assert [(r["quality_ppm"], r["fidelity_ppm"]) for r in p["results"]] == [(800_000, 950_000)]
    assert {s["validator"] for s in p["scores"]} == set(VALIDATORS[:3])
    assert p["price"] == "1000" and p["fee_upoly"] == "5"
    assert p["tx_fee_upoly"] == str(-(-chain.gas[0] * 10_000 // 1_000_000))


def test_max_price_follows_the_pricing_module_when_the_chain_has_one() -> None:
    chain = FakeChain(pricing={MODEL: "2000"})
    run(chain, call())
    assert chain.sent[0].max_price == "2500"  # type: ignore[attr-defined]
    chain2 = FakeChain(pricing={MODEL: "2000"})
    run(chain2, call(options=Options(max_price="2100")))
    assert chain2.sent[0].max_price == "2100"  # type: ignore[attr-defined]
    chain3 = FakeChain()
    run(chain3, call(), max_price="1100")
    assert chain3.sent[0].max_price == "1100"  # type: ignore[attr-defined]


def test_swarm_request_returns_the_best_scored_answer_with_every_result() -> None:
    chain = FakeChain(answer_with(900_000))
    v = run(chain, call(options=Options(redundancy=3)))
    assert chain.sent[0].redundancy == 3  # type: ignore[attr-defined]
    p = v.polylink()
    assert p["redundancy"] == 3 and len(p["results"]) == 3 and len(p["result_txs"]) == 3
    assert p["answer_result_id"] == 1 and p["quality_ppm"] == 900_000
    assert [r["quality_ppm"] for r in p["results"]] == [900_000, 800_000, 700_000]
    assert p["fee_upoly"] == "15"


def test_config_redundancy_is_the_default() -> None:
    chain = FakeChain()
    run(chain, call(), redundancy=2)
    assert chain.sent[0].redundancy == 2  # type: ignore[attr-defined]


def test_answer_that_failed_tiqe_is_refused_with_422() -> None:
    chain = FakeChain(answer_with(200_000))
    with pytest.raises(ApiError) as e:
        run(chain, call())
    assert (e.value.status, e.value.code) == (422, "answer_failed_tiqe")
    assert e.value.polylink is not None and e.value.polylink["quality_ppm"] == 200_000
    assert "Paris" not in json.dumps(e.value.body())  # an error, not the answer


@pytest.mark.parametrize(
    ("min_quality", "config_min", "refused"),
    [(900_000, 0, True), (700_000, 0, False), (None, 850_000, True), (None, 800_000, False), (0, 900_000, False)],
)
def test_min_quality_per_call_or_from_the_config(min_quality: int | None, config_min: int, refused: bool) -> None:
    chain = FakeChain(answer_with(800_000))
    c = call(options=Options(min_quality_ppm=min_quality))
    if not refused:
        assert run(chain, c, min_quality_ppm=config_min).quality_ppm == 800_000
        return
    with pytest.raises(ApiError) as e:
        run(chain, c, min_quality_ppm=config_min)
    assert (e.value.status, e.value.code, e.value.param) == (422, "quality_below_minimum", "min_quality")


def test_an_unscored_answer_cannot_meet_a_minimum_but_passes_without_one() -> None:
    assert run(FakeChain(answer_with(0, scored=False)), call()).text
    with pytest.raises(ApiError) as e:
        run(FakeChain(answer_with(0, scored=False)), call(options=Options(min_quality_ppm=100_000)))
    assert e.value.code == "quality_below_minimum" and "not scored" in e.value.message


def test_no_answer_within_the_timeout_is_504_and_names_the_request() -> None:
    chain = FakeChain(never)
    with pytest.raises(ApiError) as e:
        run(chain, call(options=Options(timeout_s=0.2)))
    assert (e.value.status, e.value.type, e.value.code) == (504, "timeout", "request_timeout")
    assert e.value.polylink == {"request_id": 1, "request_tx": TXHASH, "status": "ASSIGNED"}
    assert chain.reads["/polylink.inference.v1.Query/Request"] >= 2  # it kept following the request


def test_failed_request_is_503_and_unknown_model_404_and_limits_400() -> None:
    with pytest.raises(ApiError) as e:
        run(FakeChain(fail_with("no eligible worker")), call())
    assert (e.value.status, e.value.code) == (503, "request_failed") and "no eligible worker" in e.value.message
    chain = FakeChain()
    with pytest.raises(ApiError) as e:
        run(chain, call(model="nope"))
    assert (e.value.status, e.value.code, e.value.param) == (404, "model_not_found", "model")
    with pytest.raises(ApiError) as e:
        run(chain, call(), models=("other",))  # registered, but not served by this gateway
    assert e.value.code == "model_not_found"
    with pytest.raises(ApiError) as e:
        run(chain, call(max_tokens=2048))
    assert (e.value.status, e.value.param) == (400, "max_tokens")
    with pytest.raises(ApiError) as e:
        run(chain, call(options=Options(redundancy=5)))
    assert (e.value.status, e.value.param) == (400, "polylink.redundancy")
    with pytest.raises(ApiError) as e:
        run(chain, call(prompt="é" * 4097))  # 8194 bytes in UTF-8, 4097 characters
    assert (e.value.status, e.value.code, e.value.param) == (400, "invalid_request", "messages")
    assert "8194 bytes" in e.value.message and "max_prompt_bytes 8192" in e.value.message
    assert chain.sent == []  # nothing was signed for a call the chain would refuse
    run(chain, call(prompt="é" * 4096))  # exactly at the limit: sent
    assert len(chain.sent) == 1


# --- HTTP ------------------------------------------------------------------------------------


def client_for(chain: FakeChain, *, keys: Sequence[str] = ("sk-good",), **cfg: Any) -> TestClient:
    app = create_app(service(chain, **cfg), DashboardData(chain), api_keys=keys)
    return TestClient(app, raise_server_exceptions=False)


CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 16}


@pytest.mark.parametrize("header", [None, "Bearer sk-bad", "Basic sk-good", "Bearer ", "sk-good"])
def test_bad_or_missing_api_key_is_401_in_openai_format(header: str | None) -> None:
    chain = FakeChain()
    with client_for(chain) as http:
        headers = {"Authorization": header} if header is not None else {}
        for method, path in (("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("GET", "/v1/models")):
            r = http.request(method, path, json=CHAT, headers=headers)
            assert r.status_code == 401
            err = r.json()["error"]
            assert (err["type"], err["code"]) == ("invalid_request_error", "invalid_api_key") and err["message"]
    assert chain.sent == []


def test_good_key_gets_an_openai_chat_completion_with_the_polylink_field() -> None:
    with client_for(FakeChain()) as http:
        r = http.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer sk-good"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["object"] == "chat.completion" and b["id"] == "chatcmpl-polylink-1" and b["model"] == MODEL
    assert b["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris is the capital."},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert b["usage"]["completion_tokens"] == 5
    assert b["polylink"]["request_id"] == 1 and b["polylink"]["quality"] == 0.8


def test_errors_keep_openai_shape_over_http() -> None:
    with client_for(FakeChain(answer_with(100_000)), keys=()) as http:
        r = http.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 422 and r.json()["error"]["code"] == "answer_failed_tiqe"
        assert r.json()["error"]["polylink"]["request_id"] == 1
        r = http.post("/v1/chat/completions", content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        r = http.post("/v1/chat/completions", json={**CHAT, "n": 2})
        assert r.status_code == 400 and r.json()["error"]["param"] == "n"
        r = http.get("/v1/nothing")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    chain = FakeChain()
    with client_for(chain, keys=()) as http:
        # a 2 MB prompt: a 400 that names the chain's limit (it was a 503 when CometBFT refused the body)
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 2_000_000}]}
        r = http.post("/v1/chat/completions", json=big)
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
        assert "max_prompt_bytes 8192" in r.json()["error"]["message"]
    assert chain.sent == []
    with client_for(FakeChain(never), keys=()) as http:
        r = http.post("/v1/chat/completions", json={**CHAT, "polylink": {"timeout_s": 0.1}})
        assert r.status_code == 504 and r.json()["error"]["code"] == "request_timeout"


def sse_events(raw: str) -> list[str]:
    """The data payloads of an SSE body; asserts the framing (one data line per event, blank-line ends)."""
    assert raw.endswith("\n\n")
    out = []
    for block in raw.split("\n\n")[:-1]:
        lines = block.split("\n")
        assert len(lines) == 1 and lines[0].startswith("data: "), block
        out.append(lines[0][len("data: ") :])
    return out


def test_stream_is_the_verified_text_in_sse_chunks_then_done() -> None:
    text = "  Paris,\nthe capital  of France. "
    with client_for(FakeChain(answer_with(800_000, text=text)), keys=()) as http:
        r = http.post("/v1/chat/completions", json={**CHAT, "stream": True, "stream_options": {"include_usage": True}})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-polylink-1" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    assert "".join(deltas) == text and len([d for d in deltas if d]) > 3
    final = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(final) == 1 and final[0]["choices"][0]["finish_reason"] == "stop"
    assert final[0]["polylink"]["quality_ppm"] == 800_000
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5


def test_a_refused_stream_is_a_plain_error_not_a_stream() -> None:
    with client_for(FakeChain(answer_with(100_000)), keys=()) as http:
        r = http.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/json")


def test_official_openai_client_reads_every_reply_unchanged() -> None:
    chain = FakeChain()
    with client_for(chain, keys=("sk-good",)) as http:
        oa = openai.OpenAI(base_url="http://testserver/v1", api_key="sk-good", http_client=http, max_retries=0)
        models = oa.models.list()
        assert [m.id for m in models.data] == [MODEL]
        resp = oa.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Capital of France?"}],
            max_tokens=16,
            extra_body={"polylink": {"min_quality": 0.5, "redundancy": 2}},
        )
        assert resp.choices[0].message.content == "Paris is the capital."
        extra = resp.model_extra or {}
        assert extra["polylink"]["redundancy"] == 2 and extra["polylink"]["min_quality"] == 0.5
        text = oa.completions.create(model=MODEL, prompt="Capital of France?", max_tokens=16)
        assert text.choices[0].text == "Paris is the capital." and text.object == "text_completion"
        stream = oa.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Capital?"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Paris is the capital."
        with pytest.raises(openai.UnprocessableEntityError) as e:
            oa.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], extra_body={"polylink": {"min_quality": 0.95}}
            )
        assert e.value.code == "quality_below_minimum"
        bad = openai.OpenAI(base_url="http://testserver/v1", api_key="sk-bad", http_client=http, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as e2:
            bad.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        assert e2.value.code == "invalid_api_key"
    assert [m.redundancy for m in chain.sent] == [2, 1, 1, 1]  # type: ignore[attr-defined]


def test_models_list_shows_prices_and_honours_the_served_list() -> None:
    chain = FakeChain(pricing={MODEL: "1500"})
    chain.models["other"] = reg_t.Model(model_id="other", provider=WORKERS[0], base_price="10")
    with client_for(chain, keys=()) as http:
        data = http.get("/v1/models").json()["data"]
    assert [(m["id"], m["object"], m["polylink"]["price"]) for m in data] == [
        ("other", "model", "10"),
        (MODEL, "model", "1500"),
    ]
    assert data[1]["polylink"]["price_source"] == "pricing"
    with client_for(chain, keys=(), models=(MODEL,)) as http:
        assert [m["id"] for m in http.get("/v1/models").json()["data"]] == [MODEL]


def test_healthz_reports_the_height() -> None:
    with client_for(FakeChain(), keys=()) as http:
        assert http.get("/healthz").json() == {"status": "ok", "chain_id": "fake-chain", "height": 100}


class BlocksRPC(FakeRPC):
    """A node whose websocket pushes two block headers, then drops the connection."""

    def __init__(self) -> None:
        super().__init__(FakeChain())
        self.subscriptions = 0

    async def subscribe(self, query: str) -> AsyncIterator[RpcEvent]:
        assert query == "tm.event='NewBlockHeader'"
        self.subscriptions += 1
        for h in (6, 7):
            await asyncio.sleep(0.05)
            yield RpcEvent(query, "tendermint/event/NewBlockHeader", {"header": {"height": str(h)}}, {})


def test_block_watcher_wakes_waiters_at_each_block_and_resubscribes() -> None:
    async def go() -> tuple[float, int, int, float]:
        rpc = BlocksRPC()
        loop = asyncio.get_running_loop()
        async with BlockWatcher(rpc, poll_interval_s=30.0) as blocks:
            t0 = loop.time()
            await blocks.wait()  # woken by the first header, long before the 30 s poll
            woke = loop.time() - t0
            await asyncio.sleep(1.0)  # the socket dropped after two headers: it subscribes again
            t1 = loop.time()
            await PollWaker(0.05).wait(10.0)
            return woke, blocks.height, rpc.subscriptions, loop.time() - t1

    woke, height, subs, polled = asyncio.run(go())
    assert woke < 1.0 and height == 7 and subs >= 2 and polled < 1.0
