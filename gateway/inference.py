"""`InferenceService`: one OpenAI call -> a signed on-chain request -> a verified answer, or an ApiError.

The pipeline of `run(call)`, every step bounded by the call's timeout:

1. check: the model is registered (and served by this gateway), max_tokens
   and redundancy are within the inference params;
2. build: `MsgRequestInference` from the gateway's key, with the prompt, the
   sampling, the redundancy and a max_price (the call's, the config's cap,
   or the current price plus headroom); the CLI's constructor and gas rule;
3. send and wait for its block (`Client.send` keeps the key's sequence, so
   concurrent calls share one key safely);
4. follow: re-read the request at every new block (`BlockWatcher`) until it
   is COMPLETED or FAILED;
5. verify: the answer is the result the chain chose; its TIQE round gives
   the committee's revealed scores (quality and fidelity each). Quality alone
   judges the answer: a result below TIQE's pass mark, or below
   the call's `min_quality` (an unscored one too, when a minimum is asked
   for), is refused with 422 instead of being returned.

A timeout (504) leaves the request on chain: its id and tx are in the error,
and `polylink query inference request ID` follows it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import types_pb2 as inf_t
from polylink.registry.v1 import types_pb2 as reg_t
from polylink.tiqe.v1 import query_pb2 as tiqe_q
from polylink.tiqe.v1 import types_pb2 as tiqe_t

from chain.cli.inference_cmds import msg_request_inference, request_gas
from chain.client.errors import (
    ChainQueryError,
    ClientError,
    NodeUnreachableError,
    RpcError,
    TxRejectedError,
    TxTimeoutError,
)
from chain.client.signer import Signer
from chain.client.tx_builder import min_fee
from chain.core.errors import ChainError
from gateway import errors, prices
from gateway.calls import PPM, Call
from gateway.chain import ChainClient, PollWaker, Waker
from gateway.config import ServiceConfig
from gateway.prices import Quote
from worker.logs import EventLog

PATH_REQUEST = "/polylink.inference.v1.Query/Request"
PATH_PARAMS = "/polylink.inference.v1.Query/Params"
PATH_ROUND = "/polylink.tiqe.v1.Query/Round"
PARAMS_TTL_S = 60.0
CLOSED = (inf_t.REQUEST_STATUS_COMPLETED, inf_t.REQUEST_STATUS_FAILED)


def status_name(status: int) -> str:
    return inf_t.RequestStatus.Name(status).removeprefix("REQUEST_STATUS_")


def _revealed(rnd: tiqe_t.Round | None) -> list[dict[str, Any]]:
    """Each revealed committee score: both numbers, as fractions and as the chain's ppm."""
    if rnd is None:
        return []
    return [
        {
            "validator": m.validator,
            "quality": m.quality_ppm / PPM,
            "quality_ppm": m.quality_ppm,
            "fidelity": m.fidelity_ppm / PPM,
            "fidelity_ppm": m.fidelity_ppm,
        }
        for m in rnd.members
        if m.revealed
    ]


def _paid(res: inf_t.Result) -> int:
    """What the requester paid for one result (worker, royalty, committee and community parts)."""
    return sum(int(x or "0") for x in (res.worker_paid, res.royalty_paid, res.validators_paid, res.community_paid))


@dataclass(frozen=True)
class Verified:
    """A closed request with its answer, the scoring rounds and the txs that made it."""

    request: inf_t.Request
    results: tuple[inf_t.Result, ...]
    answer: inf_t.Result
    rounds: Mapping[int, tiqe_t.Round] = field(default_factory=dict)
    request_tx: str = ""
    result_txs: tuple[str, ...] = ()
    tx_fee: int = 0
    min_quality_ppm: int = 0

    @property
    def request_id(self) -> int:
        return self.request.id

    @property
    def text(self) -> str:
        return self.answer.response

    @property
    def completion_tokens(self) -> int:
        return self.answer.completion_tokens

    @property
    def finish_reason(self) -> str:
        """ "length" when the answer used every token it was allowed, else "stop"."""
        return "length" if self.answer.completion_tokens >= self.request.max_tokens else "stop"

    @property
    def quality_ppm(self) -> int:
        return self.answer.quality_ppm

    def polylink(self) -> dict[str, Any]:
        """The `polylink` extension field of a response (and of a 422's error object)."""
        r = self.request
        return {
            "request_id": r.id,
            "status": status_name(r.status),
            "model": r.model_id,
            "requester": r.requester,
            "redundancy": r.redundancy,
            "request_tx": self.request_tx,
            "result_txs": list(self.result_txs),
            "answer_result_id": self.answer.id,
            "worker": self.answer.worker,
            "quality": self.answer.quality_ppm / PPM,
            "quality_ppm": self.answer.quality_ppm,
            "fidelity": self.answer.fidelity_ppm / PPM,
            "fidelity_ppm": self.answer.fidelity_ppm,
            "scored": self.answer.scored,
            "passed": self.answer.passed,
            "min_quality": self.min_quality_ppm / PPM,
            "scores": _revealed(self.rounds.get(self.answer.id)),
            "results": [
                {
                    "result_id": x.id,
                    "worker": x.worker,
                    "completion_tokens": x.completion_tokens,
                    "quality_ppm": x.quality_ppm,
                    "fidelity_ppm": x.fidelity_ppm,
                    "scored": x.scored,
                    "passed": x.passed,
                    "fee_upoly": str(_paid(x)),
                    "scores": _revealed(self.rounds.get(x.id)),
                }
                for x in self.results
            ],
            "price": r.price,
            "price_unit": "upoly per 1000 tokens",
            "max_price": r.max_price,
            "fee_upoly": str(sum(_paid(x) for x in self.results)),
            "tx_fee_upoly": str(self.tx_fee),
            "created_height": r.created_height,
            "completed_height": r.completed_height,
        }


def judge(v: Verified) -> errors.ApiError | None:
    """The refusal for an answer that must not be returned, or None to return it."""
    a = v.answer
    if a.scored and not a.passed:
        return errors.answer_failed_tiqe(
            f"request {v.request_id}: the answer failed TIQE (quality {a.quality_ppm / PPM:.3f}, "
            "below the chain's pass mark); the worker was not paid and its share came back to you with "
            "the unused escrow (the scoring committee and the community pool keep theirs)",
            v.polylink(),
        )
    if v.min_quality_ppm and not a.scored:
        return errors.quality_below_minimum(
            f"request {v.request_id}: the answer was not scored (no committee quorum revealed), "
            f"so it cannot meet min_quality {v.min_quality_ppm / PPM:g}",
            v.polylink(),
        )
    if a.quality_ppm < v.min_quality_ppm:
        return errors.quality_below_minimum(
            f"request {v.request_id}: quality {a.quality_ppm / PPM:.3f} is below min_quality "
            f"{v.min_quality_ppm / PPM:g}",
            v.polylink(),
        )
    return None


class InferenceService:
    """Runs calls for one gateway key; `client` and `waker` are owned by the caller (`cli.serve`)."""

    def __init__(
        self,
        client: ChainClient,
        signer: Signer,
        cfg: ServiceConfig,
        *,
        waker: Waker | None = None,
        log: EventLog | None = None,
    ) -> None:
        self.client = client
        self.signer = signer
        self.cfg = cfg
        self.waker = waker or PollWaker(cfg.poll_interval_s)
        self.log = log or EventLog()
        self._params: tuple[float, inf_t.Params] | None = None

    # -- models ------------------------------------------------------------------------------

    def serves(self, model_id: str) -> bool:
        return not self.cfg.models or model_id in self.cfg.models

    async def models(self) -> list[tuple[reg_t.Model, Quote]]:
        """The registered models this gateway serves, with their current prices."""
        ms = [m for m in await prices.all_models(self.client) if self.serves(m.model_id)]
        qs = await prices.quotes(self.client, ms)
        return [(m, qs[m.model_id]) for m in ms]

    async def params(self) -> inf_t.Params:
        """The inference params (changed only by governance: cached for a minute)."""
        now = time.monotonic()
        if self._params is None or now - self._params[0] > PARAMS_TTL_S:
            r = await self.client.query(PATH_PARAMS, inf_q.QueryParamsRequest(), inf_q.QueryParamsResponse)
            self._params = (now, r.params)
        return self._params[1]

    # -- one call ----------------------------------------------------------------------------

    async def run(self, call: Call) -> Verified:
        """The verified answer to `call`; raises ApiError (see `gateway.errors`)."""
        try:
            return await self._run(call)
        except NodeUnreachableError as e:
            raise errors.chain_unavailable(f"the chain's node cannot be reached: {e}") from None
        except (ChainQueryError, RpcError) as e:
            raise errors.chain_unavailable(f"the chain's node answered a query with an error: {e}") from None

    async def _run(self, call: Call) -> Verified:
        loop = asyncio.get_running_loop()
        timeout = call.options.timeout_s or self.cfg.timeout_s
        deadline = loop.time() + timeout

        def left() -> float:
            return deadline - loop.time()

        o = call.options
        redundancy = o.redundancy or self.cfg.redundancy
        min_quality = self.cfg.min_quality_ppm if o.min_quality_ppm is None else o.min_quality_ppm
        max_tokens = call.max_tokens or self.cfg.max_tokens

        model = await prices.model(self.client, call.model) if self.serves(call.model) else None
        if model is None:
            raise errors.model_not_found(call.model)
        p = await self.params()
        if p.max_tokens_limit and max_tokens > p.max_tokens_limit:
            raise errors.invalid_request(
                f"max_tokens {max_tokens} is above the chain's limit {p.max_tokens_limit}", param="max_tokens"
            )
        if p.max_redundancy and redundancy > p.max_redundancy:
            raise errors.invalid_request(
                f"redundancy {redundancy} is above the chain's limit {p.max_redundancy}", param="polylink.redundancy"
            )
        prompt_bytes = len(call.prompt.encode())
        if p.max_prompt_bytes and prompt_bytes > p.max_prompt_bytes:
            # refused here, before anything is signed: CometBFT would refuse a body this size outright, and
            # the chain's CheckTx would refuse any smaller one over the limit (ErrPromptTooLarge)
            raise errors.invalid_request(
                f"the prompt is {prompt_bytes} bytes, above the chain's max_prompt_bytes {p.max_prompt_bytes}",
                param="messages" if call.kind == "chat" else "prompt",
            )
        quote = await prices.quote(self.client, model)
        max_price = o.max_price or prices.max_price_for(quote, self.cfg.max_price, self.cfg.price_headroom_ppm)
        try:
            msg = msg_request_inference(
                self.signer.address,
                call.model,
                call.prompt,
                max_tokens,
                max_price,
                redundancy=redundancy,
                temperature_ppm=call.temperature_ppm,
                top_p_ppm=call.top_p_ppm,
                seed=call.seed,
            )
        except ChainError as e:
            raise errors.invalid_request(e.log) from None
        gas = request_gas(call.prompt)
        try:
            sent = await self.client.send([msg], self.signer, gas=gas)
        except TxRejectedError as e:
            raise errors.chain_rejected(
                f"the chain refused the request tx: {e.codespace}/{e.code}: {e.log}", {"request_tx": e.txhash}
            ) from None
        tx_fee = min_fee(gas, await self.client.min_gas_price_ppm())
        try:
            tx = await self.client.wait(sent.hash, max(left(), 0.001))
        except TxTimeoutError:
            raise errors.request_timeout(
                f"the request tx was not in a block within {timeout:g} s; it may still be included",
                {"request_tx": sent.hash},
            ) from None
        if not tx.ok:
            raise errors.chain_rejected(
                f"the request tx failed in its block: {tx.codespace}/{tx.code}: {tx.log}", {"request_tx": tx.hash}
            )
        rid = int(tx.attributes("inference.requested")[0]["request_id"])
        self.log.info("gateway.requested", request_id=rid, model=call.model, redundancy=redundancy, txhash=tx.hash)

        state = await self._follow(rid, left, timeout, sent.hash)
        if state.request.status == inf_t.REQUEST_STATUS_FAILED:
            self.log.info("gateway.request_failed", request_id=rid, failure=state.request.failure)
            raise errors.request_failed(
                f"request {rid} failed on chain: {state.request.failure} (its escrow was refunded)",
                {"request_id": rid, "request_tx": sent.hash, "failure": state.request.failure},
            )
        answer = next((x for x in state.results if x.id == state.request.answer_result_id), None)
        if answer is None:
            raise errors.request_failed(
                f"request {rid} completed without an answer", {"request_id": rid, "request_tx": sent.hash}
            )
        v = Verified(
            request=state.request,
            results=tuple(state.results),
            answer=answer,
            rounds=await self._rounds(state.results),
            request_tx=sent.hash,
            result_txs=tuple(await self._result_txs(rid)),
            tx_fee=tx_fee,
            min_quality_ppm=min_quality,
        )
        refusal = judge(v)
        self.log.info(
            "gateway.answered" if refusal is None else "gateway.refused",
            request_id=rid,
            quality_ppm=answer.quality_ppm,
            scored=answer.scored,
            passed=answer.passed,
            min_quality_ppm=min_quality,
        )
        if refusal is not None:
            raise refusal
        return v

    async def _follow(
        self, rid: int, left: Callable[[], float], timeout: float, txhash: str
    ) -> inf_q.QueryRequestResponse:
        """Re-read request `rid` at every block until it closes; 504 once the deadline passes."""
        while True:
            try:
                r = await self.client.query(PATH_REQUEST, inf_q.QueryRequestRequest(id=rid), inf_q.QueryRequestResponse)
                if r.request.status in CLOSED:
                    return r
                status = status_name(r.request.status)
            except NodeUnreachableError:
                status = "unknown (node unreachable)"
            if left() <= 0:
                raise errors.request_timeout(
                    f"request {rid} has no verified answer after {timeout:g} s (it is {status}); it goes on on "
                    f"chain: follow it with `polylink query inference request {rid}`",
                    {"request_id": rid, "request_tx": txhash, "status": status},
                )
            await self.waker.wait(left())

    async def _rounds(self, results: Sequence[inf_t.Result]) -> dict[int, tiqe_t.Round]:
        out: dict[int, tiqe_t.Round] = {}
        for x in results:
            try:
                r = await self.client.query(
                    PATH_ROUND, tiqe_q.QueryRoundRequest(result_id=x.id), tiqe_q.QueryRoundResponse
                )
            except ClientError:
                continue  # no round (a chain without TIQE): no scores to show
            if r.round.result_id:
                out[x.id] = r.round
        return out

    async def _result_txs(self, rid: int) -> list[str]:
        """The txs that put the request's results on chain (submit or reveal), oldest first."""
        try:
            r = await self.client.rpc.call(
                "tx_search",
                {"query": f"inference.result.request_id={rid}", "per_page": "100", "order_by": "asc"},
            )
        except ClientError:
            return []
        return [str(t.get("hash", "")).upper() for t in (r or {}).get("txs") or []]
