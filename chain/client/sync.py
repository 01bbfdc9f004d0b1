"""`SyncClient`: a blocking facade over `Client`, for scripts, tests and load generators.

The async `Client` runs on a private event loop in a daemon thread that this
object owns, so the blocking calls work anywhere, even from code that itself
runs inside another event loop (they block that loop while they wait).
Use as `with SyncClient(node, keyring=Keyring(home)) as c: ...`, or call `close()`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, overload

import httpx
from google.protobuf.message import Message
from polylink.auth.v1 import types_pb2 as auth_types
from polylink.tx.v1 import tx_pb2

from chain.client.client import BroadcastMode, Client
from chain.client.keyring import Keyring
from chain.client.results import BroadcastResult, NodeStatus, RpcEvent, TxResult
from chain.client.rpc import DEFAULT_NODE, DEFAULT_TIMEOUT
from chain.client.signer import Signer
from chain.client.tx_builder import DEFAULT_GAS
from chain.core.coins import BOND_DENOM, Coins

T = TypeVar("T")
M = TypeVar("M", bound=Message)


class SyncClient:
    """Every `Client` operation as a blocking call; `.client` is the async one underneath."""

    def __init__(
        self,
        node: str = DEFAULT_NODE,
        *,
        keyring: Keyring | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="polylink-client", daemon=True
        )
        self._thread.start()
        self.client = Client(node, keyring=keyring, timeout=timeout, transport=transport)
        self._closed = False
        self._run(self.client.__aenter__())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("SyncClient is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        """Close the HTTP client, stop the loop and join its thread. Idempotent."""
        if self._closed:
            return
        try:
            self._run(self.client.__aexit__(None, None, None))
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- node and queries --------------------------------------------------

    def status(self) -> NodeStatus:
        return self._run(self.client.status())

    def chain_id(self) -> str:
        return self._run(self.client.chain_id())

    def query(self, path: str, request: Message, response_cls: type[M], height: int = 0) -> M:
        return self._run(self.client.query(path, request, response_cls, height))

    def balance(self, address: str, denom: str = BOND_DENOM) -> int:
        return self._run(self.client.balance(address, denom))

    def all_balances(self, address: str) -> Coins:
        return self._run(self.client.all_balances(address))

    def total_supply(self) -> Coins:
        return self._run(self.client.total_supply())

    def account(self, address: str) -> auth_types.Account | None:
        return self._run(self.client.account(address))

    def auth_params(self) -> auth_types.Params:
        return self._run(self.client.auth_params())

    def simulate(self, tx_bytes: bytes) -> tx_pb2.SimulateResponse:
        return self._run(self.client.simulate(tx_bytes))

    def next_sequence(self, address: str) -> int:
        return self._run(self.client.next_sequence(address))

    def forget_sequence(self, address: str) -> None:
        self.client.forget_sequence(address)

    # -- txs -----------------------------------------------------------------

    def sign(
        self,
        msgs: Sequence[Message],
        key: Signer | str,
        *,
        sequence: int | None = None,
        gas: int = DEFAULT_GAS,
        fee: int | None = None,
        memo: str = "",
        timeout_height: int = 0,
    ) -> bytes:
        return self._run(
            self.client.sign(
                msgs,
                key,
                sequence=sequence,
                gas=gas,
                fee=fee,
                memo=memo,
                timeout_height=timeout_height,
            )
        )

    def send(
        self,
        msgs: Sequence[Message],
        key: Signer | str,
        *,
        gas: int = DEFAULT_GAS,
        fee: int | None = None,
        memo: str = "",
        timeout_height: int = 0,
        mode: Literal["sync", "async"] = "sync",
    ) -> BroadcastResult:
        return self._run(
            self.client.send(
                msgs, key, gas=gas, fee=fee, memo=memo, timeout_height=timeout_height, mode=mode
            )
        )

    def send_and_wait(
        self,
        msgs: Sequence[Message],
        key: Signer | str,
        *,
        timeout: float = 30.0,
        gas: int = DEFAULT_GAS,
        fee: int | None = None,
        memo: str = "",
        timeout_height: int = 0,
    ) -> TxResult:
        return self._run(
            self.client.send_and_wait(
                msgs,
                key,
                timeout=timeout,
                gas=gas,
                fee=fee,
                memo=memo,
                timeout_height=timeout_height,
            )
        )

    def bank_send(
        self,
        key: Signer | str,
        to_address: str,
        amount: Coins | str,
        *,
        gas: int = DEFAULT_GAS,
        fee: int | None = None,
        memo: str = "",
        timeout_height: int = 0,
        mode: Literal["sync", "async"] = "sync",
    ) -> BroadcastResult:
        return self._run(
            self.client.bank_send(
                key,
                to_address,
                amount,
                gas=gas,
                fee=fee,
                memo=memo,
                timeout_height=timeout_height,
                mode=mode,
            )
        )

    def bank_multi_send(
        self,
        key: Signer | str,
        outputs: Sequence[tuple[str, Coins | str]],
        *,
        gas: int = DEFAULT_GAS,
        fee: int | None = None,
        memo: str = "",
        timeout_height: int = 0,
        mode: Literal["sync", "async"] = "sync",
    ) -> BroadcastResult:
        return self._run(
            self.client.bank_multi_send(
                key, outputs, gas=gas, fee=fee, memo=memo, timeout_height=timeout_height, mode=mode
            )
        )

    @overload
    def broadcast(
        self, tx_bytes: bytes, mode: Literal["sync", "async"] = "sync"
    ) -> BroadcastResult: ...
    @overload
    def broadcast(self, tx_bytes: bytes, mode: Literal["commit"]) -> TxResult: ...

    def broadcast(
        self, tx_bytes: bytes, mode: BroadcastMode = "sync"
    ) -> BroadcastResult | TxResult:
        if mode == "commit":
            return self._run(self.client.broadcast(tx_bytes, "commit"))
        if mode == "async":
            return self._run(self.client.broadcast(tx_bytes, "async"))
        return self._run(self.client.broadcast(tx_bytes, "sync"))

    def wait(self, txhash: str, timeout: float = 30.0) -> TxResult:
        return self._run(self.client.wait(txhash, timeout))

    # -- events --------------------------------------------------------------

    def subscribe(self, query: str) -> Iterator[RpcEvent]:
        """Blocking iterator over `Client.rpc.subscribe(query)`; close it to unsubscribe."""
        agen = self.client.rpc.subscribe(query)
        try:
            while True:
                try:
                    yield self._run(_next(agen))
                except StopAsyncIteration:
                    return
        finally:
            if not self._closed:
                self._run(agen.aclose())


async def _next(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()
