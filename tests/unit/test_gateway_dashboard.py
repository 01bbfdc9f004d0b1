"""The dashboard's JSON against an in-memory chain: pagination that stays cheap with thousands of
requests, cursors, the row cache, prices from the pricing module or the base price, requests'
quality and fidelity, workers' quality and fidelity EMAs, validators' power and rating, and the page
itself (self-contained, nothing external)."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import pytest
from polylink.inference.v1 import tx_pb2
from polylink.pricing.v1 import types_pb2 as pricing_t
from polylink.registry.v1 import types_pb2 as reg_t
from polylink.staking.v1 import types_pb2 as staking_t
from starlette.testclient import TestClient

from chain.client.errors import ChainQueryError
from chain.client.signer import Signer
from gateway import dashboard
from gateway.dashboard.data import DashboardData, block_ts
from gateway.errors import ApiError
from gateway.server import create_app
from tests.unit.test_gateway_service import MODEL, VALIDATORS, WORKERS, FakeChain, answer_with, client_for, service

REQUESTS = 3000


def chain_with_requests(n: int = REQUESTS) -> FakeChain:
    chain = FakeChain()
    for rid in range(1, n + 1):
        r = chain.requests[chain.add_request(_msg(rid))]
        if rid % 3:  # two in three answered and scored, the rest still waiting
            answer_with(600_000 + rid, text=f"answer {rid}")(chain, r)
    return chain


def _msg(rid: int) -> tx_pb2.MsgRequestInference:
    return tx_pb2.MsgRequestInference(
        requester=WORKERS[0], model_id=MODEL, prompt=f"prompt {rid}", max_tokens=8, max_price="1000", redundancy=1
    )


def test_requests_are_paged_newest_first_and_a_page_costs_the_same_with_thousands_on_chain() -> None:
    chain = chain_with_requests()
    board = DashboardData(chain, page_size=20)
    first = asyncio.run(board.requests())
    assert [r["id"] for r in first["requests"]] == list(range(REQUESTS, REQUESTS - 20, -1))
    # one listing query, and one Request + one Round query per answered row: nothing scales with the chain
    answered = sum(1 for r in first["requests"] if r["answer"])
    assert chain.reads["/polylink.inference.v1.Query/Requests"] == 1
    assert chain.reads["/polylink.inference.v1.Query/Request"] == answered
    assert chain.reads["/polylink.tiqe.v1.Query/Round"] == answered
    row = next(r for r in first["requests"] if r["answer"])
    assert row["answer"]["text"] == f"answer {row['id']}" and row["answer"]["quality_ppm"] == 600_000 + row["id"]
    assert row["answer"]["scores"] and row["status"] == "COMPLETED" and row["prompt"] == f"prompt {row['id']}"
    assert (row["answer"]["fidelity_ppm"], row["answer"]["fidelity"]) == (950_000, 0.95)
    assert [{k: x[k] for k in ("quality_ppm", "fidelity_ppm")} for x in row["answer"]["scores"]] == [
        {"quality_ppm": 600_000 + row["id"], "fidelity_ppm": 950_000}
    ] * 3
    waiting = next(r for r in first["requests"] if not r["answer"])
    assert waiting["status"] == "PENDING"

    second = asyncio.run(board.requests(cursor=first["next"]))
    assert [r["id"] for r in second["requests"]] == list(range(REQUESTS - 20, REQUESTS - 40, -1))
    last = asyncio.run(board.requests(limit=7, cursor=_cursor(7)))
    assert [r["id"] for r in last["requests"]] == [7, 6, 5, 4, 3, 2, 1] and last["next"] is None


def _cursor(rid: int) -> str:
    return base64.urlsafe_b64encode(str(rid).encode()).decode()


def test_closed_rows_are_cached_open_ones_are_read_again() -> None:
    chain = chain_with_requests(30)
    board = DashboardData(chain, page_size=30)
    asyncio.run(board.requests())
    reads = chain.reads["/polylink.inference.v1.Query/Request"]
    asyncio.run(board.requests())
    assert chain.reads["/polylink.inference.v1.Query/Request"] == reads  # answered rows came from the cache
    answer_with(777_000, text="late answer")(chain, chain.requests[30])  # 30 was waiting; now it is answered
    rows = {r["id"]: r for r in asyncio.run(board.requests())["requests"]}
    assert rows[30]["answer"]["text"] == "late answer"


@pytest.mark.parametrize(("limit", "cursor"), [(0, None), (101, None), (None, "%%%not-base64")])
def test_bad_limit_or_cursor_is_400(limit: int | None, cursor: str | None) -> None:
    board = DashboardData(chain_with_requests(3))
    with pytest.raises(ApiError) as e:
        asyncio.run(board.requests(limit=limit, cursor=cursor))
    assert e.value.status == 400


def test_http_api_pages_requests_and_rejects_bad_params() -> None:
    chain = chain_with_requests(50)
    with client_for(chain, keys=("sk",)) as http:  # the dashboard needs no API key
        r = http.get("/dashboard/api/requests", params={"limit": 10})
        assert r.status_code == 200
        page = r.json()
        assert [x["id"] for x in page["requests"]] == list(range(50, 40, -1))
        nxt = http.get("/dashboard/api/requests", params={"limit": 10, "cursor": page["next"]}).json()
        assert nxt["requests"][0]["id"] == 40
        assert http.get("/dashboard/api/requests", params={"limit": "x"}).status_code == 400


def test_models_show_the_pricing_modules_price_and_history_or_fall_back_to_the_base_price() -> None:
    chain = FakeChain()
    m = asyncio.run(DashboardData(chain).models())["models"]
    assert [(x["model_id"], x["price"], x["source"], x["history"]) for x in m] == [(MODEL, "1000", "base_price", [])]
    chain.pricing = {MODEL: "1300"}
    chain.history[MODEL] = [pricing_t.PricePoint(height=h, price=str(1000 + h), demand=h, target=5) for h in (9, 8, 7)]
    m = asyncio.run(DashboardData(chain).models())["models"]
    assert m[0]["price"] == "1300" and m[0]["base_price"] == "1000" and m[0]["source"] == "pricing"
    assert [p["height"] for p in m[0]["history"]] == [7, 8, 9]  # oldest first, for the chart
    assert (m[0]["demand"], m[0]["target"]) == (7, 9)


def test_a_failing_pricing_query_is_an_error_not_a_silent_base_price() -> None:
    """Only a chain that does not serve pricing (tx/9, unknown path) gets base prices; any other
    failure of the pricing query propagates, since a base price would under-quote a moved one."""
    chain = FakeChain(pricing={MODEL: "1300"})
    real_query = chain.query

    async def broken(path: str, request: Any, response_cls: type[Any], height: int = 0) -> Any:
        if "pricing" in path:
            raise ChainQueryError(path, "tx", 11, "out of gas")
        return await real_query(path, request, response_cls, height)

    chain.query = broken  # type: ignore[method-assign]
    with pytest.raises(ChainQueryError):
        asyncio.run(DashboardData(chain).models())


def test_workers_page_with_their_quality_and_fidelity_emas() -> None:
    chain = FakeChain()
    addrs = sorted(Signer.generate().address for _ in range(5))
    chain.workers = [
        reg_t.Worker(
            address=a,
            models=[MODEL],
            bond="100",
            status=reg_t.WORKER_STATUS_ACTIVE,
            jailed_until_height=200 if i == 1 else 0,
        )
        for i, a in enumerate(addrs)
    ]
    chain.stats = {
        a: [
            reg_t.WorkerModelStats(
                worker=a, model_id=MODEL, quality_ema_ppm=810_000, fidelity_ema_ppm=350_000, results=4
            )
        ]
        for a in addrs
    }
    board = DashboardData(chain)
    page = asyncio.run(board.workers(limit=2))
    assert [w["address"] for w in page["workers"]] == addrs[:2] and page["next"]
    assert page["workers"][1]["jailed"] and not page["workers"][0]["jailed"]
    assert page["workers"][0]["stats"] == [
        {
            "model_id": MODEL,
            "quality_ema_ppm": 810_000,
            "quality_ema": 0.81,
            "fidelity_ema_ppm": 350_000,
            "fidelity_ema": 0.35,
            "results": 4,
            "misses": 0,
        }
    ]
    rest = asyncio.run(board.workers(limit=10, cursor=page["next"]))
    assert [w["address"] for w in rest["workers"]] == addrs[2:] and rest["next"] is None


def test_validators_with_consensus_power_and_rating() -> None:
    chain = FakeChain()
    keys = [bytes([i]) * 32 for i in range(3)]
    chain.validators = [
        staking_t.Validator(
            operator_address=VALIDATORS[i],
            consensus_pubkey=keys[i],
            tokens=str(10**7 * (i + 1)),
            moniker=f"val{i}",
            status=staking_t.BONDED,
        )
        for i in range(3)
    ]
    chain.rpc.validator_set = [
        {"pub_key": {"value": base64.b64encode(keys[i]).decode()}, "voting_power": str(10 * (i + 1))} for i in range(3)
    ]
    chain.ratings = {VALIDATORS[0]: 400_000}
    vals = asyncio.run(DashboardData(chain).validators())["validators"]
    assert [(v["moniker"], v["power"]) for v in vals] == [("val2", 30), ("val1", 20), ("val0", 10)]
    assert vals[2]["rating"] == 0.4 and vals[0]["rating"] == 0.9 and vals[0]["status"] == "BONDED"


def test_summary_has_height_and_block_times() -> None:
    s = asyncio.run(DashboardData(FakeChain()).summary())
    assert s["chain_id"] == "fake-chain" and s["height"] == 100
    assert s["avg_block_s"] == pytest.approx((100 % 60 - 81 % 60) / 19, abs=1e-3)
    assert block_ts("2025-01-01T00:00:01.123456789Z") == pytest.approx(1735689601.123456)
    assert block_ts("garbage") is None


def test_page_is_self_contained() -> None:
    html = dashboard.page()
    # nothing from outside the gateway: no scheme-qualified or protocol-relative URL in src/href/fetch
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", html)
    assert "fetch(API" in html and 'const API = "/dashboard/api/"' in html
    for section in ("models", "workers", "validators", "requests", "height", "chart"):
        assert f'id="{section}"' in html
    # both numbers: requests' fidelity beside quality, committee pairs, workers' fidelity EMA
    assert "<th class=\"num\">fidelity</th>" in html and "s.fidelity_ema.toFixed" in html
    assert "r.answer.fidelity.toFixed" in html and "s.fidelity_ppm / 1e6" in html
    with TestClient(create_app(service(FakeChain()), DashboardData(FakeChain()))) as http:
        r = http.get("/dashboard")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and r.text == html
