"""What the gateway needs from `chain.client`, as narrow interfaces, and block wake-ups.

`ChainClient` is the part of `chain.client.Client` the gateway calls; unit
tests pass an in-memory fake, production passes `Client`. `BlockWatcher`
owns one websocket subscription to new block headers for the whole gateway:
every call waiting for its answer wakes up when a block commits (the only
moment its request can change) instead of each one polling on its own, and
falls back to polling every `poll_interval_s` while the socket is down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from google.protobuf.message import Message

from chain.client.results import BroadcastResult, NodeStatus, RpcEvent, TxResult, as_int
from chain.client.signer import Signer
from worker.logs import EventLog

M = TypeVar("M", bound=Message)

NEW_BLOCK_QUERY = "tm.event='NewBlockHeader'"
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 10.0


class ChainRPC(Protocol):
    """The parts of `chain.client.CometRPC` the gateway uses."""

    async def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any: ...

    async def validators(self, height: int | None = None) -> list[dict[str, Any]]: ...

    def subscribe(self, query: str) -> AsyncIterator[RpcEvent]: ...


class ChainClient(Protocol):
    """The parts of `chain.client.Client` the gateway uses (tests pass an in-memory fake)."""

    @property
    def rpc(self) -> ChainRPC: ...

    async def status(self) -> NodeStatus: ...

    async def query(self, path: str, request: Message, response_cls: type[M], height: int = 0) -> M: ...

    async def send(self, msgs: Sequence[Message], key: Signer | str, *, gas: int = ...) -> BroadcastResult: ...

    async def wait(self, txhash: str, timeout: float = ...) -> TxResult: ...

    async def min_gas_price_ppm(self, refresh: bool = False) -> int: ...


class Waker(Protocol):
    """What a waiting call sleeps on between reads of its request."""

    async def wait(self, timeout: float | None = None) -> None: ...


class PollWaker:
    """A Waker without a subscription: sleeps `poll_interval_s` (or less, to the timeout)."""

    def __init__(self, poll_interval_s: float) -> None:
        self.poll_interval_s = poll_interval_s

    async def wait(self, timeout: float | None = None) -> None:
        limit = self.poll_interval_s if timeout is None else max(0.0, min(timeout, self.poll_interval_s))
        await asyncio.sleep(limit)


class BlockWatcher:
    """Wake-ups on every new block; use as `async with BlockWatcher(rpc, poll_interval_s) as blocks:`."""

    def __init__(self, rpc: ChainRPC, poll_interval_s: float, *, log: EventLog | None = None) -> None:
        self.rpc = rpc
        self.poll_interval_s = poll_interval_s
        self.log = log or EventLog()
        self.height = 0
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._follow(), name="gateway-blocks")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def notify(self, height: int = 0) -> None:
        """A block committed: wake every waiter (called by the subscription; tests call it too)."""
        self.height = max(self.height, height)
        old, self._event = self._event, asyncio.Event()
        old.set()

    async def wait(self, timeout: float | None = None) -> None:
        """Until the next block, or `min(timeout, poll_interval_s)` seconds, whichever comes first."""
        limit = self.poll_interval_s if timeout is None else max(0.0, min(timeout, self.poll_interval_s))
        ev = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), limit)

    async def _follow(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            try:
                async for e in self.rpc.subscribe(NEW_BLOCK_QUERY):
                    delay = RECONNECT_MIN_S
                    header = e.value.get("header") or {}
                    self.notify(as_int(header.get("height")))
            except Exception as err:  # a dropped socket or a bad frame: polling covers the gap
                self.log.warning("gateway.blocks_subscription", error=str(err), retry_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)
