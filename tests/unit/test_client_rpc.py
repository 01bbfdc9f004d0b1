"""CometRPC against httpx.MockTransport: request encoding, result parsing, error mapping."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest

from chain.client.errors import ChainQueryError, NodeUnreachableError, RpcError, TxTimeoutError
from chain.client.rpc import CometRPC, normalize_url, websocket_url
from chain.core.tx import tx_hash

T = TypeVar("T")
HASH = "AB" * 32
Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


def ok(result: object) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "result": result}


def err(code: int, message: str, data: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message, "data": data}}


def run_with(
    handler: Handler, body: Callable[[CometRPC], Coroutine[Any, Any, T]]
) -> tuple[T, list[dict[str, Any]]]:
    """Run `body` against a mock node; returns its result and the JSON-RPC requests seen."""
    seen: list[dict[str, Any]] = []

    def h(request: httpx.Request) -> httpx.Response:
        req = json.loads(request.content)
        seen.append(req)
        return httpx.Response(200, json=handler(req["method"], req["params"]))

    async def go() -> T:
        async with CometRPC("http://node:26657", transport=httpx.MockTransport(h)) as rpc:
            return await body(rpc)

    return asyncio.run(go()), seen


def test_urls() -> None:
    assert normalize_url("tcp://1.2.3.4:26657") == "http://1.2.3.4:26657"
    assert normalize_url("localhost:26657/") == "http://localhost:26657"
    assert websocket_url("https://rpc.example:443") == "wss://rpc.example:443/websocket"
    assert websocket_url("http://127.0.0.1:26657") == "ws://127.0.0.1:26657/websocket"


def test_status() -> None:
    result = {
        "node_info": {"network": "polylink-1", "id": "abc", "moniker": "n0"},
        "sync_info": {"latest_block_height": "42", "latest_app_hash": "FF", "catching_up": False},
    }
    st, seen = run_with(lambda m, p: ok(result), lambda rpc: rpc.status())
    assert seen[0]["method"] == "status" and seen[0]["jsonrpc"] == "2.0"
    assert (st.chain_id, st.latest_height, st.catching_up) == ("polylink-1", 42, False)


def test_abci_query_value_and_encoding() -> None:
    def h(method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert method == "abci_query"
        assert params == {
            "path": "/polylink.bank.v1.Query/Balance",
            "data": "0aff",
            "height": "0",
            "prove": False,
        }
        return ok(
            {
                "response": {
                    "code": 0,
                    "value": base64.b64encode(b"\x01\x02").decode(),
                    "height": "5",
                }
            }
        )

    value, _ = run_with(
        h, lambda rpc: rpc.abci_query("/polylink.bank.v1.Query/Balance", b"\x0a\xff")
    )
    assert value == b"\x01\x02"


def test_abci_query_empty_value() -> None:
    value, _ = run_with(lambda m, p: ok({"response": {}}), lambda rpc: rpc.abci_query("/x"))
    assert value == b""


def test_abci_query_error_maps_codespace_code_log() -> None:
    def h(method: str, params: dict[str, Any]) -> dict[str, Any]:
        return ok({"response": {"code": 20, "codespace": "tx", "log": "account poly1x: not found"}})

    with pytest.raises(ChainQueryError) as ei:
        run_with(h, lambda rpc: rpc.abci_query("/polylink.auth.v1.Query/Account", b""))
    e = ei.value
    assert (e.codespace, e.code, e.log, e.path) == (
        "tx",
        20,
        "account poly1x: not found",
        "/polylink.auth.v1.Query/Account",
    )
    assert e.is_("tx", 20)


def test_broadcast_sync_parses_check_result() -> None:
    def h(method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert method == "broadcast_tx_sync"
        assert base64.b64decode(params["tx"]) == b"txbytes"
        return ok(
            {
                "code": 3,
                "codespace": "tx",
                "log": "expected 4, got 2",
                "data": "",
                "hash": HASH.lower(),
            }
        )

    res, _ = run_with(h, lambda rpc: rpc.broadcast_tx_sync(b"txbytes"))
    assert (res.hash, res.code, res.codespace, res.log, res.ok) == (
        HASH,
        3,
        "tx",
        "expected 4, got 2",
        False,
    )
    with pytest.raises(Exception, match="tx/3"):
        res.raise_for_code()


def test_rebroadcast_of_cached_tx_counts_as_accepted() -> None:
    cached = err(-32603, "Internal error", "tx already exists in cache")
    res, _ = run_with(lambda m, p: cached, lambda rpc: rpc.broadcast_tx_sync(b"same"))
    assert res.ok and res.hash == tx_hash(b"same")
    full = err(-32603, "Internal error", "mempool is full: number of txs 5000 (max: 5000)")
    with pytest.raises(RpcError, match="mempool is full"):
        run_with(lambda m, p: full, lambda rpc: rpc.broadcast_tx_sync(b"t"))


def test_broadcast_async() -> None:
    res, seen = run_with(
        lambda m, p: ok({"code": 0, "hash": HASH}), lambda rpc: rpc.broadcast_tx_async(b"t")
    )
    assert seen[0]["method"] == "broadcast_tx_async" and res.ok and res.hash == HASH


def test_broadcast_commit_delivered_and_refused() -> None:
    delivered = ok(
        {
            "check_tx": {"code": 0},
            "tx_result": {
                "code": 0,
                "gas_wanted": "200000",
                "gas_used": "51234",
                "events": [
                    {
                        "type": "transfer",
                        "attributes": [
                            {"key": "recipient", "value": "poly1b", "index": True},
                            {"key": "amount", "value": "100upoly", "index": True},
                        ],
                    }
                ],
            },
            "hash": HASH,
            "height": "12",
        }
    )
    res, _ = run_with(lambda m, p: delivered, lambda rpc: rpc.broadcast_tx_commit(b"t"))
    assert (res.height, res.gas_used, res.gas_wanted, res.ok, res.stage) == (
        12,
        51234,
        200000,
        True,
        "deliver",
    )
    assert res.attributes("transfer") == [{"recipient": "poly1b", "amount": "100upoly"}]

    refused = ok(
        {
            "check_tx": {"code": 5, "codespace": "tx", "log": "insufficient fee"},
            "tx_result": {},
            "hash": HASH,
            "height": "0",
        }
    )
    res, _ = run_with(lambda m, p: refused, lambda rpc: rpc.broadcast_tx_commit(b"t"))
    assert (res.height, res.code, res.codespace, res.stage) == (0, 5, "tx", "check")


def test_tx_lookup_found_and_not_found() -> None:
    def h(method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert method == "tx"
        assert base64.b64decode(params["hash"]).hex().upper() == HASH
        return ok(
            {
                "hash": HASH,
                "height": "9",
                "index": 1,
                "tx_result": {"code": 6, "codespace": "bank", "log": "insufficient funds"},
            }
        )

    res, _ = run_with(h, lambda rpc: rpc.tx(HASH))
    assert res is not None and (res.height, res.index, res.code, res.codespace) == (9, 1, 6, "bank")

    missing, _ = run_with(
        lambda m, p: err(-32603, "Internal error", f"tx ({HASH}) not found"),
        lambda rpc: rpc.tx(HASH),
    )
    assert missing is None


def test_rpc_error_is_raised() -> None:
    with pytest.raises(RpcError) as ei:
        run_with(
            lambda m, p: err(-32603, "Internal error", "height 99 must be less than 5"),
            lambda rpc: rpc.block(99),
        )
    assert ei.value.code == -32603 and "height 99" in str(ei.value)


def test_block_and_results_pass_height_as_string() -> None:
    _, seen = run_with(lambda m, p: ok({"height": "3"}), lambda rpc: rpc.block_results(3))
    assert seen[0]["params"] == {"height": "3"}
    _, seen = run_with(lambda m, p: ok({"block": {}}), lambda rpc: rpc.block())
    assert seen[0]["params"] == {}


def test_validators_follows_pages() -> None:
    vals = [{"address": f"{i:02X}", "voting_power": "10"} for i in range(150)]

    def h(method: str, params: dict[str, Any]) -> dict[str, Any]:
        page, per = int(params["page"]), int(params["per_page"])
        return ok(
            {
                "validators": vals[(page - 1) * per : page * per],
                "total": str(len(vals)),
                "count": "x",
            }
        )

    got, seen = run_with(h, lambda rpc: rpc.validators())
    assert got == vals and len(seen) == 2


def test_wait_for_tx_polls_until_found() -> None:
    calls = {"n": 0}

    def h(method: str, params: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] < 4:
            return err(-32603, "Internal error", f"tx ({HASH}) not found")
        return ok({"hash": HASH, "height": "3", "tx_result": {"code": 0}})

    res, seen = run_with(
        h, lambda rpc: rpc.wait_for_tx(HASH, timeout=5, first_delay=0.001, max_delay=0.002)
    )
    assert res.height == 3 and len(seen) == 4


def test_wait_for_tx_times_out() -> None:
    with pytest.raises(TxTimeoutError) as ei:
        run_with(
            lambda m, p: err(-32603, "Internal error", "tx not found"),
            lambda rpc: rpc.wait_for_tx(HASH, timeout=0.05, first_delay=0.01, max_delay=0.02),
        )
    assert ei.value.txhash == HASH


def test_unreachable_node() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def go() -> None:
        async with CometRPC("http://node:1", transport=httpx.MockTransport(refuse)) as rpc:
            await rpc.status()

    with pytest.raises(NodeUnreachableError, match="cannot reach node http://node:1"):
        asyncio.run(go())


def test_non_json_answer() -> None:
    async def go() -> None:
        t = httpx.MockTransport(lambda r: httpx.Response(502, text="<html>bad gateway</html>"))
        async with CometRPC("http://node", transport=t) as rpc:
            await rpc.status()

    with pytest.raises(RpcError, match="HTTP 502"):
        asyncio.run(go())


def test_used_outside_context() -> None:
    with pytest.raises(RuntimeError):
        asyncio.run(CometRPC().status())
