"""Prepare each new request's prompt while its worker is still answering.

A result reaches the committee some blocks after its request was included:
the worker needs that long to generate. The scoring pipeline's slowest
step that depends only on the prompt (the registered model's own reference
answer, :meth:`validator.scoring.cascade.Scorer.prepare`) can run in that
gap, so that scoring the result later only compares. Which validators will
sit on a result's committee is not known until the result lands, so every
scorer prepares every request it sees; the work is bounded: at most
``max_pending`` request ids wait (the oldest are dropped, they would be
stale), one preparation runs at a time, and a preparation shares the model
with scoring (which it never blocks for longer than one reference).

Preparing is an optimisation only: nothing is stored, and a missed or
failed preparation just means the reference is generated when the answer is
scored. Event: `inference.requested` (attribute `request_id`), on its own
websocket subscription, reconnected with backoff.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
from typing import Protocol

from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import types_pb2 as inf_types

from chain.client.errors import ClientError
from worker.logs import EventLog
from worker.service import BACKOFF_MAX_S, BACKOFF_MIN_S, PATH_REQUEST, ChainClient

QUERY = "inference.requested.request_id EXISTS"
ATTRIBUTE = "inference.requested.request_id"
OPEN = (inf_types.REQUEST_STATUS_PENDING, inf_types.REQUEST_STATUS_ASSIGNED)


class Preparable(Protocol):
    async def prepare(self, prompt: str) -> None: ...


class Preparer:
    """Feeds ``scorer.prepare`` the prompt of every request the chain announces (see the module docstring)."""

    def __init__(self, client: ChainClient, scorer: Preparable, log: EventLog, *, max_pending: int = 32) -> None:
        self.client = client
        self.scorer = scorer
        self.log = log
        self._pending: collections.deque[int] = collections.deque(maxlen=max_pending)
        self._seen: collections.deque[int] = collections.deque(maxlen=4 * max_pending)
        self._wake = asyncio.Event()
        self.prepared = 0
        self.failed = 0

    def offer(self, request_id: int) -> None:
        """Queue a request id (ignored when already queued or done recently)."""
        if request_id in self._seen:
            return
        self._seen.append(request_id)
        self._pending.append(request_id)
        self._wake.set()

    async def run(self) -> None:
        """Subscribe and prepare until cancelled."""
        worker = asyncio.create_task(self._work_loop(), name="prepare")
        try:
            await self._subscribe_loop()
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _subscribe_loop(self) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_MIN_S
        while True:
            opened = loop.time()
            try:
                async for event in self.client.rpc.subscribe(QUERY):
                    for raw in event.events.get(ATTRIBUTE, []):
                        with contextlib.suppress(ValueError):
                            self.offer(int(raw))
                    delay = BACKOFF_MIN_S
            except (ClientError, OSError, ValueError) as e:
                self.log.warning("prepare.subscribe_error", error=str(e), retry_in_s=delay)
            if loop.time() - opened > BACKOFF_MAX_S:
                delay = BACKOFF_MIN_S
            await asyncio.sleep(delay * (0.75 + random.random() / 2))
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _work_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self.prepare_one(self._pending.popleft())

    async def prepare_one(self, request_id: int) -> bool:
        """Prepare one request's prompt if it is still waiting for answers; True when prepared."""
        try:
            resp = await self.client.query(
                PATH_REQUEST, inf_q.QueryRequestRequest(id=request_id), inf_q.QueryRequestResponse
            )
            if resp.request.status not in OPEN:
                return False
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await self.scorer.prepare(resp.request.prompt)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # an optimisation: a failure costs only the later scoring's time
            self.failed += 1
            self.log.warning("prepare.failed", request_id=request_id, error=f"{type(e).__name__}: {e}")
            return False
        self.prepared += 1
        self.log.info("prepare.done", request_id=request_id, ms=round((loop.time() - t0) * 1000, 1))
        return True
