"""An async client for CometBFT's JSON-RPC (HTTP) and event websocket.

One `httpx.AsyncClient` is owned by `CometRPC`'s `async with` block; pass
`transport=httpx.MockTransport(handler)` to test code without a network.
Every call is a JSON-RPC 2.0 POST to the node's root; the node's encodings
(int64 as strings, bytes as base64 or hex) are handled here and nowhere else.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any, Self

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from chain.client.errors import (
    ChainQueryError,
    NodeUnreachableError,
    RpcError,
    TxTimeoutError,
)
from chain.client.results import BroadcastResult, NodeStatus, RpcEvent, TxResult, as_bytes, as_int
from chain.core.tx import tx_hash

DEFAULT_NODE = "http://127.0.0.1:26657"
DEFAULT_TIMEOUT = 10.0
# broadcast_tx_commit waits for a block (CometBFT's own limit is 10 s by default).
COMMIT_TIMEOUT = 60.0
WS_MAX_MESSAGE = 64 * 1024 * 1024
TX_IN_CACHE = "tx already exists in cache"


def normalize_url(url: str) -> str:
    """Accept CometBFT's `tcp://host:port` and bare `host:port` as well as http(s) URLs."""
    url = url.strip().rstrip("/")
    if url.startswith("tcp://"):
        url = "http://" + url[len("tcp://") :]
    elif "://" not in url:
        url = "http://" + url
    return url


def websocket_url(url: str) -> str:
    base = normalize_url(url)
    scheme, rest = base.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest + "/websocket"


class CometRPC:
    """CometBFT RPC client; use as `async with CometRPC(url) as rpc: ...`."""

    def __init__(
        self,
        url: str = DEFAULT_NODE,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = normalize_url(url)
        self.timeout = timeout
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Self:
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=self.timeout, transport=self._transport
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- transport ---------------------------------------------------------

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """One JSON-RPC call; returns `result` or raises RpcError / NodeUnreachableError."""
        if self._http is None:
            raise RuntimeError("CometRPC used outside its `async with` block")
        payload = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": params or {},
        }
        try:
            resp = await self._http.post("/", json=payload, timeout=timeout or self.timeout)
        except httpx.TimeoutException as e:
            raise NodeUnreachableError(f"node {self.url} timed out on {method}: {e!r}") from None
        except httpx.TransportError as e:
            raise NodeUnreachableError(f"cannot reach node {self.url}: {e}") from None
        try:
            body = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RpcError(
                method, resp.status_code, f"HTTP {resp.status_code}", resp.text[:200]
            ) from None
        if not isinstance(body, dict):
            raise RpcError(method, resp.status_code, "response is not a JSON object")
        err = body.get("error")
        if err:
            raise RpcError(
                method,
                as_int(err.get("code")),
                str(err.get("message", "")),
                str(err.get("data", "")),
            )
        if "result" not in body:
            raise RpcError(method, resp.status_code, f"HTTP {resp.status_code} without a result")
        return body["result"]

    # -- node --------------------------------------------------------------

    async def status(self) -> NodeStatus:
        return NodeStatus.from_rpc(await self.call("status"))

    async def chain_id(self) -> str:
        return (await self.status()).chain_id

    async def block(self, height: int | None = None) -> dict[str, Any]:
        """`/block` at `height` (None: latest): {"block_id", "block": {"header", "data"}}."""
        r: dict[str, Any] = await self.call("block", _height(height))
        return r

    async def block_results(self, height: int | None = None) -> dict[str, Any]:
        """`/block_results`: {"height", "txs_results", "finalize_block_events", "app_hash", ...}."""
        r: dict[str, Any] = await self.call("block_results", _height(height))
        return r

    async def validators(self, height: int | None = None) -> list[dict[str, Any]]:
        """Every validator at `height`, all pages: [{"address", "pub_key", "voting_power", ...}]."""
        out: list[dict[str, Any]] = []
        for page in itertools.count(1):
            params = {**_height(height), "page": str(page), "per_page": "100"}
            r = await self.call("validators", params)
            out.extend(r.get("validators") or [])
            if len(out) >= as_int(r.get("total")) or not r.get("validators"):
                return out
        raise AssertionError("unreachable")

    # -- app queries -------------------------------------------------------

    async def abci_query(self, path: str, data: bytes = b"", height: int = 0) -> bytes:
        """Query the app: the response `value`; ChainQueryError on a non-zero code."""
        params = {"path": path, "data": data.hex(), "height": str(height), "prove": False}
        r = await self.call("abci_query", params)
        resp = r.get("response") or {}
        code = as_int(resp.get("code"))
        if code:
            raise ChainQueryError(
                path, str(resp.get("codespace") or ""), code, str(resp.get("log") or "")
            )
        return as_bytes(resp.get("value"))

    # -- txs ---------------------------------------------------------------

    async def broadcast_tx_sync(self, tx: bytes) -> BroadcastResult:
        """Returns after CheckTx; `code` != 0 means the mempool refused the tx.

        Identical bytes already in the mempool's cache (a re-send after a lost
        answer) count as accepted: CometBFT caches only txs that passed CheckTx.
        """
        return await self._broadcast("broadcast_tx_sync", tx)

    async def broadcast_tx_async(self, tx: bytes) -> BroadcastResult:
        """Returns at once, before CheckTx (the code is always 0)."""
        return await self._broadcast("broadcast_tx_async", tx)

    async def _broadcast(self, method: str, tx: bytes) -> BroadcastResult:
        try:
            return BroadcastResult.from_rpc(await self.call(method, {"tx": _b64(tx)}))
        except RpcError as e:
            if TX_IN_CACHE in e.data:
                return BroadcastResult(hash=tx_hash(tx), log=TX_IN_CACHE)
            raise

    async def broadcast_tx_commit(self, tx: bytes) -> TxResult:
        """Waits for the block; a CheckTx refusal comes back with height 0 and stage "check"."""
        try:
            r = await self.call("broadcast_tx_commit", {"tx": _b64(tx)}, timeout=COMMIT_TIMEOUT)
        except RpcError as e:
            if TX_IN_CACHE in e.data:  # sent before: its result is (or will be) in a block
                return await self.wait_for_tx(tx_hash(tx), COMMIT_TIMEOUT)
            raise
        txhash = str(r.get("hash", ""))
        check = r.get("check_tx") or {}
        if as_int(check.get("code")):
            return TxResult.from_exec(txhash, 0, check, stage="check")
        return TxResult.from_exec(txhash, as_int(r.get("height")), r.get("tx_result") or {})

    async def tx(self, txhash: str) -> TxResult | None:
        """The committed result of tx `txhash` (hex), or None while it is not in a block."""
        try:
            raw_hash = bytes.fromhex(txhash.removeprefix("0x"))
        except ValueError:
            raise ValueError(f"tx hash {txhash!r} is not hex") from None
        try:
            r = await self.call("tx", {"hash": _b64(raw_hash), "prove": False})
        except RpcError as e:
            if "not found" in e.data or "not found" in e.message:
                return None
            raise
        return TxResult.from_exec(
            str(r.get("hash", txhash)),
            as_int(r.get("height")),
            r.get("tx_result") or {},
            index=as_int(r.get("index")),
        )

    async def wait_for_tx(
        self,
        txhash: str,
        timeout: float = 30.0,
        *,
        first_delay: float = 0.1,
        max_delay: float = 1.0,
    ) -> TxResult:
        """Poll `/tx` (delays doubling from first_delay up to max_delay) until the tx is in a block.

        Returns the result whatever its code; raises TxTimeoutError after `timeout` seconds.
        Transient node errors while polling are retried until the deadline.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = first_delay
        while True:
            try:
                res = await self.tx(txhash)
            except NodeUnreachableError:
                res = None
            if res is not None:
                return res
            left = deadline - loop.time()
            if left <= 0:
                raise TxTimeoutError(txhash, timeout)
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, max_delay)

    # -- events ------------------------------------------------------------

    async def subscribe(self, query: str) -> AsyncGenerator[RpcEvent, None]:
        """Events matching `query` (e.g. "tm.event='Tx'"), from the node's websocket.

        The connection lives as long as the iteration; when the node closes it
        the iterator ends (or raises NodeUnreachableError if it never opened).
        Reconnecting, and catching up on what was missed, is the caller's job.
        """
        url = websocket_url(self.url)
        sub_id = next(self._ids)
        request = {
            "jsonrpc": "2.0",
            "id": sub_id,
            "method": "subscribe",
            "params": {"query": query},
        }
        try:
            async with websockets.connect(
                url, max_size=WS_MAX_MESSAGE, open_timeout=self.timeout
            ) as ws:
                await ws.send(json.dumps(request))
                async for raw in ws:
                    msg = json.loads(raw)
                    err = msg.get("error")
                    if err:
                        raise RpcError(
                            "subscribe",
                            as_int(err.get("code")),
                            str(err.get("message", "")),
                            str(err.get("data", "")),
                        )
                    result = msg.get("result") or {}
                    if result.get("data"):  # the first, empty, result confirms the subscription
                        yield RpcEvent.from_rpc(result)
        except ConnectionClosed:
            return
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as e:
            raise NodeUnreachableError(f"cannot open websocket {url}: {e}") from None


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _height(height: int | None) -> dict[str, str]:
    return {} if height is None else {"height": str(height)}
