"""What the dashboard shows, from chain queries only: `DashboardData`, one method per JSON endpoint.

Every list the chain can grow without bound is read one page at a time with
the chain's own pagination (`PageRequest{key, limit}`; the next page's key
comes back as an opaque `cursor`, base64url), so a page costs the same with
ten requests on chain or ten thousand: requests (newest first) and workers.
Models and validators are short lists, read whole.

A request's row needs its results and the answer's scoring round; rows of
closed requests whose results are final never change again, so they are
kept in a bounded LRU cache and an open page of old requests costs one
query. Nothing here writes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from polylink.base.v1 import query_pb2 as base_q
from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import types_pb2 as inf_t
from polylink.registry.v1 import query_pb2 as reg_q
from polylink.registry.v1 import types_pb2 as reg_t
from polylink.staking.v1 import query_pb2 as staking_q
from polylink.staking.v1 import types_pb2 as staking_t
from polylink.tiqe.v1 import query_pb2 as tiqe_q

from chain.client.errors import ClientError
from gateway import prices
from gateway.chain import ChainClient
from gateway.errors import invalid_request
from gateway.inference import CLOSED, PATH_REQUEST, PATH_ROUND, status_name

PATH_REQUESTS = "/polylink.inference.v1.Query/Requests"
PATH_WORKERS = "/polylink.registry.v1.Query/Workers"
PATH_WORKER = "/polylink.registry.v1.Query/Worker"
PATH_VALIDATORS = "/polylink.staking.v1.Query/Validators"
PATH_RATING = "/polylink.tiqe.v1.Query/Rating"
PPM = 1_000_000
MAX_LIMIT = 100
BLOCK_TIME_WINDOW = 20  # blocks the average block time is taken over
HISTORY_POINTS = 60  # price points per model in the chart
CACHE_ROWS = 5000
PROMPT_CHARS = 300
ANSWER_CHARS = 1000
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$")


def encode_cursor(key: bytes) -> str | None:
    return base64.urlsafe_b64encode(key).decode() if key else None


def decode_cursor(cursor: str | None) -> bytes:
    """The page key of a cursor from a previous page (None/"" = the first page); 400 when malformed."""
    if not cursor:
        return b""
    try:
        return base64.b64decode(cursor.encode() + b"=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise invalid_request("cursor is not one this dashboard gave out", param="cursor") from None


def check_limit(limit: int | None, default: int) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid_request(f"limit must be in 1..{MAX_LIMIT}", param="limit")
    return limit


def block_ts(text: str) -> float | None:
    """A CometBFT time (RFC 3339, UTC, up to nanoseconds) as a Unix timestamp; None when unreadable."""
    m = _RFC3339.match(text or "")
    if not m:
        return None
    whole = datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC).timestamp()
    return whole + int((m.group(2) or "0")[:6].ljust(6, "0")) / 1e6


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + "…"


class DashboardData:
    """The dashboard's JSON, read live from `client` (owned by the caller)."""

    def __init__(self, client: ChainClient, *, page_size: int = 20) -> None:
        self.client = client
        self.page_size = page_size
        self._rows: OrderedDict[int, dict[str, Any]] = OrderedDict()

    # -- chain -------------------------------------------------------------------------------

    async def summary(self) -> dict[str, Any]:
        """Chain id, height, the last block's time and the average block time over the last blocks."""
        st = await self.client.status()
        out: dict[str, Any] = {
            "chain_id": st.chain_id,
            "height": st.latest_height,
            "block_time": st.latest_block_time,
            "avg_block_s": None,
            "moniker": st.moniker,
        }
        h = st.latest_height
        if h >= 2:
            lo = max(1, h - BLOCK_TIME_WINDOW + 1)
            try:
                r = await self.client.rpc.call("blockchain", {"minHeight": str(lo), "maxHeight": str(h)})
            except ClientError:
                return out
            times = sorted(
                t
                for t in (
                    block_ts(str(((b or {}).get("header") or {}).get("time", ""))) for b in r.get("block_metas") or []
                )
                if t is not None
            )
            if len(times) >= 2:
                out["avg_block_s"] = round((times[-1] - times[0]) / (len(times) - 1), 3)
        return out

    # -- models and prices -------------------------------------------------------------------

    async def models(self) -> dict[str, Any]:
        """Every registered model with its current price and its recent prices (oldest first)."""
        ms = await prices.all_models(self.client)
        qs = await prices.quotes(self.client, ms)
        rows = []
        for m in ms:
            q = qs[m.model_id]
            points = await prices.history(self.client, m.model_id, HISTORY_POINTS) if q.source == "pricing" else []
            rows.append(
                {
                    "model_id": m.model_id,
                    "provider": m.provider,
                    "family": m.family,
                    "royalty_ppm": m.royalty_ppm,
                    "registered_height": m.registered_height,
                    **{k: v for k, v in q.to_json().items() if k != "model_id"},
                    "history": [
                        {"height": p.height, "price": str(p.price), "demand": p.demand, "target": p.target}
                        for p in points
                    ],
                }
            )
        return {"models": rows}

    # -- workers -----------------------------------------------------------------------------

    async def workers(self, limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
        """One page of workers (by address bytes) with each model's quality and fidelity EMAs and results."""
        n = check_limit(limit, self.page_size)
        r = await self.client.query(
            PATH_WORKERS,
            reg_q.QueryWorkersRequest(pagination=base_q.PageRequest(key=decode_cursor(cursor), limit=n)),
            reg_q.QueryWorkersResponse,
        )
        height = (await self.client.status()).latest_height
        rows = []
        for w in r.workers:
            stats: list[reg_t.WorkerModelStats] = []
            with contextlib.suppress(ClientError):  # listed but gone since: shown without stats
                one = await self.client.query(
                    PATH_WORKER, reg_q.QueryWorkerRequest(address=w.address), reg_q.QueryWorkerResponse
                )
                stats = list(one.stats)
            rows.append(
                {
                    "address": w.address,
                    "status": reg_t.WorkerStatus.Name(w.status).removeprefix("WORKER_STATUS_"),
                    "jailed": w.jailed_until_height > height,
                    "jailed_until_height": w.jailed_until_height,
                    "models": list(w.models),
                    "capacity": w.capacity,
                    "bond": w.bond,
                    "inflight_tokens": w.inflight_tokens,
                    "stats": [
                        {
                            "model_id": s.model_id,
                            "quality_ema_ppm": s.quality_ema_ppm,
                            "quality_ema": s.quality_ema_ppm / PPM,
                            "fidelity_ema_ppm": s.fidelity_ema_ppm,
                            "fidelity_ema": s.fidelity_ema_ppm / PPM,
                            "results": s.results,
                            "misses": s.misses,
                        }
                        for s in stats
                    ],
                }
            )
        return {"workers": rows, "next": encode_cursor(r.pagination.next_key)}

    # -- validators --------------------------------------------------------------------------

    async def validators(self) -> dict[str, Any]:
        """Every validator with its consensus power (CometBFT's), stake, status and TIQE rating."""
        vals: list[staking_t.Validator] = []
        key = b""
        while True:
            r = await self.client.query(
                PATH_VALIDATORS,
                staking_q.QueryValidatorsRequest(pagination=base_q.PageRequest(key=key, limit=MAX_LIMIT)),
                staking_q.QueryValidatorsResponse,
            )
            vals.extend(r.validators)
            key = r.pagination.next_key
            if not key:
                break
        try:
            power = {
                str((v.get("pub_key") or {}).get("value", "")): int(v.get("voting_power") or 0)
                for v in await self.client.rpc.validators()
            }
        except ClientError:
            power = {}
        rows = []
        for v in vals:
            try:
                rating = (
                    await self.client.query(
                        PATH_RATING,
                        tiqe_q.QueryRatingRequest(validator=v.operator_address),
                        tiqe_q.QueryRatingResponse,
                    )
                ).rating
                rating_ppm: int | None = rating.rating_ppm
                reveals, misses = rating.reveals, rating.misses
            except ClientError:
                rating_ppm, reveals, misses = None, 0, 0
            rows.append(
                {
                    "operator_address": v.operator_address,
                    "moniker": v.moniker,
                    "status": staking_t.BondStatus.Name(v.status),
                    "jailed": v.jailed,
                    "tokens": v.tokens,
                    "power": power.get(base64.b64encode(v.consensus_pubkey).decode(), 0),
                    "commission_ppm": v.commission_ppm,
                    "rating_ppm": rating_ppm,
                    "rating": None if rating_ppm is None else rating_ppm / PPM,
                    "reveals": reveals,
                    "misses": misses,
                }
            )
        rows.sort(key=lambda x: (-int(str(x["power"])), str(x["operator_address"])))
        return {"validators": rows}

    # -- requests ----------------------------------------------------------------------------

    async def requests(self, limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
        """One page of requests, newest first, each with its answer (quality and fidelity) and the answer's
        committee scores (both numbers each)."""
        n = check_limit(limit, self.page_size)
        r = await self.client.query(
            PATH_REQUESTS,
            inf_q.QueryRequestsRequest(pagination=base_q.PageRequest(key=decode_cursor(cursor), limit=n)),
            inf_q.QueryRequestsResponse,
        )
        rows = [await self._row(x) for x in r.requests]
        return {"requests": rows, "next": encode_cursor(r.pagination.next_key)}

    async def _row(self, req: inf_t.Request) -> dict[str, Any]:
        cached = self._rows.get(req.id)
        if cached is not None:
            self._rows.move_to_end(req.id)
            return cached
        results: list[inf_t.Result] = []
        if req.status in (inf_t.REQUEST_STATUS_COMPLETED, inf_t.REQUEST_STATUS_SCORING, inf_t.REQUEST_STATUS_REVEAL):
            full = await self.client.query(
                PATH_REQUEST, inf_q.QueryRequestRequest(id=req.id), inf_q.QueryRequestResponse
            )
            req, results = full.request, list(full.results)
        answer = next((x for x in results if x.id == req.answer_result_id), None)
        scores: list[dict[str, Any]] = []
        if answer is not None:
            try:
                rnd = (
                    await self.client.query(
                        PATH_ROUND, tiqe_q.QueryRoundRequest(result_id=answer.id), tiqe_q.QueryRoundResponse
                    )
                ).round
                scores = [
                    {"validator": m.validator, "quality_ppm": m.quality_ppm, "fidelity_ppm": m.fidelity_ppm}
                    for m in rnd.members
                    if m.revealed
                ]
            except ClientError:
                pass
        row = {
            "id": req.id,
            "status": status_name(req.status),
            "model_id": req.model_id,
            "requester": req.requester,
            "redundancy": req.redundancy,
            "price": req.price,
            "max_tokens": req.max_tokens,
            "created_height": req.created_height,
            "completed_height": req.completed_height,
            "prompt": _clip(req.prompt, PROMPT_CHARS),
            "failure": req.failure,
            "results": len(results),
            "answer": None
            if answer is None
            else {
                "result_id": answer.id,
                "worker": answer.worker,
                "text": _clip(answer.response, ANSWER_CHARS),
                "completion_tokens": answer.completion_tokens,
                "quality_ppm": answer.quality_ppm,
                "quality": answer.quality_ppm / PPM,
                "fidelity_ppm": answer.fidelity_ppm,
                "fidelity": answer.fidelity_ppm / PPM,
                "scored": answer.scored,
                "passed": answer.passed,
                "scores": scores,
            },
        }
        if req.status in CLOSED:  # final: the row never changes again
            self._rows[req.id] = row
            if len(self._rows) > CACHE_ROWS:
                self._rows.popitem(last=False)
        return row
