"""The worker's loop: register, watch for assignments, answer them, and never answer one twice.

`Worker(config, client, engine, signer, state).run(stop_event)`:

1. Prepare (retrying while the node is unreachable): read the inference
   params once (max_response_bytes); check every served model is registered
   and, when the engine knows its weights' sha256 (llama.cpp), that it equals
   the registered digest; register the worker (MsgRegisterWorker) or bring
   its registration in line with the config (MsgUpdateWorker: models,
   capacity, endpoint, and a bond that slashing took below `bond`).
2. Watch: two websocket subscriptions (`inference.assigned.worker='ADDR'`,
   `inference.reveal.worker='ADDR'`), reconnected with bounded backoff. An
   event, a (re)connect and every `poll_interval_s` wake the dispatcher,
   which reads `WorkerTasks` (the chain's list of what this worker owes now)
   and starts a handler for each task not already being handled.
3. Answer: SUBMIT -> generate -> MsgSubmitResult; COMMIT -> generate, fresh
   salt -> MsgCommitResult(sha256(utf8(response) || salt || utf8(address)));
   REVEAL -> MsgRevealResult from the stored answer and salt.

Crash safety (see `worker.state`): the answer and the intent to broadcast
are fsynced before anything leaves the process. A handler that finds a tx
already recorded for its action looks it up by hash first; it sends the
same content again only when the tx is not on chain, the task is still open
(it is listed), and `resend_grace_blocks` blocks have passed since it was sent.

Only generations count against `concurrency`; waiting for a tx to land
holds no slot. The worker reaches the chain only through `ChainClient` (the
`chain.client.Client` methods it uses), so tests pass an in-memory fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message
from polylink.base.v1 import coin_pb2
from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import tx_pb2 as inf_tx
from polylink.inference.v1 import types_pb2 as inf_types
from polylink.registry.v1 import query_pb2 as reg_q
from polylink.registry.v1 import tx_pb2 as reg_tx
from polylink.registry.v1 import types_pb2 as reg_types

from chain.client.errors import (
    ChainQueryError,
    ClientError,
    NodeUnreachableError,
    TxRejectedError,
    TxTimeoutError,
)
from chain.client.results import BroadcastResult, NodeStatus, RpcEvent, TxResult
from chain.client.signer import Signer
from worker.config import WorkerConfig
from worker.engines.base import Engine, EngineError, GenerationParams
from worker.logs import EventLog
from worker.metrics import WorkerMetrics
from worker.state import Action, Answer, AssignmentRecord, TxRecord, TxState, WorkerState

M = TypeVar("M", bound=Message)
T = TypeVar("T")

PATH_WORKER_TASKS = "/polylink.inference.v1.Query/WorkerTasks"
PATH_REQUEST = "/polylink.inference.v1.Query/Request"
PATH_INFERENCE_PARAMS = "/polylink.inference.v1.Query/Params"
PATH_WORKER = "/polylink.registry.v1.Query/Worker"
PATH_MODEL = "/polylink.registry.v1.Query/Model"

# (codespace, code) pairs that mean "no such thing" in the queries the worker makes.
NOT_FOUND = {("tx", 20), ("registry", 9), ("registry", 11)}
OUT_OF_GAS = ("tx", 11)

SALT_BYTES = 32
PPM = 1_000_000
# gas: the ante charges per tx byte and the module per byte written (result, request);
# generous on purpose: an out-of-gas result is a missed deadline.
GAS_BASE = 200_000
GAS_PER_RESPONSE_BYTE = 80
GAS_PER_PROMPT_BYTE = 60
# how many times one action's content may be broadcast (resends and CheckTx refusals).
MAX_SENDS = 4
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
# a second catch-up after each (re)connect, once the subscription is surely in place.
CATCH_UP_DELAY_S = 1.0


class ChainRPC(Protocol):
    """The parts of `chain.client.CometRPC` the worker uses."""

    async def tx(self, txhash: str) -> TxResult | None: ...

    def subscribe(self, query: str) -> AsyncIterator[RpcEvent]: ...


class ChainClient(Protocol):
    """The parts of `chain.client.Client` the worker uses (tests pass an in-memory fake)."""

    @property
    def rpc(self) -> ChainRPC: ...

    async def status(self) -> NodeStatus: ...

    async def query(self, path: str, request: Message, response_cls: type[M], height: int = 0) -> M: ...

    async def send(self, msgs: Sequence[Message], key: Signer | str, *, gas: int = ...) -> BroadcastResult: ...

    async def wait(self, txhash: str, timeout: float = ...) -> TxResult: ...


class WorkerSetupError(Exception):
    """The worker cannot start serving: the message says why and what to fix."""


class _Stopping(Exception):
    """A queued generation found the worker stopping: it is not started."""


@dataclass(frozen=True)
class _Task:
    """One WorkerTask, decoded."""

    request: inf_types.Request
    action: Action
    attempt: int
    deadline_height: int

    @property
    def key(self) -> tuple[int, int]:
        return (self.request.id, self.attempt)


def commitment(response: str, salt: bytes, worker: str) -> bytes:
    """The commit-reveal commitment: sha256(utf8(response) || salt || utf8(worker address))."""
    return hashlib.sha256(response.encode() + salt + worker.encode()).digest()


def fit_utf8(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` UTF-8 bytes, never inside a character (0 = no limit)."""
    raw = text.encode()
    if max_bytes <= 0 or len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")


def generation_params(request: inf_types.Request) -> GenerationParams:
    """The request's sampling: ppm fractions to floats (top_p 0 means 1.0)."""
    s = request.sampling
    return GenerationParams(
        max_tokens=request.max_tokens,
        temperature=s.temperature_ppm / PPM,
        top_p=(s.top_p_ppm / PPM) if s.top_p_ppm else 1.0,
        seed=s.seed,
    )


def estimate_gas(msg: Message, prompt: str) -> int:
    return GAS_BASE + GAS_PER_RESPONSE_BYTE * msg.ByteSize() + GAS_PER_PROMPT_BYTE * len(prompt.encode())


def _error_kind(e: Exception) -> str:
    if isinstance(e, EngineError):
        return "engine"
    if isinstance(e, NodeUnreachableError | OSError):
        return "node"
    if isinstance(e, ClientError):
        return "chain"
    return "internal"


def is_not_found(e: ChainQueryError) -> bool:
    return (e.codespace, e.code) in NOT_FOUND or "not found" in e.log.lower()


async def query_worker(client: ChainClient, address: str) -> reg_q.QueryWorkerResponse | None:
    """The registry's record of `address` (worker and per-model stats), or None when not registered."""
    try:
        r = await client.query(PATH_WORKER, reg_q.QueryWorkerRequest(address=address), reg_q.QueryWorkerResponse)
    except ChainQueryError as e:
        if is_not_found(e):
            return None
        raise
    return r if r.worker.address else None


class Worker:
    """One worker address serving its assignments until `stop_event` is set."""

    def __init__(
        self,
        config: WorkerConfig,
        client: ChainClient,
        engine: Engine,
        signer: Signer,
        state: WorkerState,
        *,
        metrics: WorkerMetrics | None = None,
        log: EventLog | None = None,
    ) -> None:
        self.config = config
        self.cfg = config.worker
        self.client = client
        self.engine = engine
        self.signer = signer
        self.address = signer.address
        self.state = state
        self.metrics = metrics if metrics is not None else WorkerMetrics()
        self.log = log if log is not None else EventLog()
        self.max_response_bytes = 0
        self._slots = asyncio.Semaphore(self.cfg.concurrency)
        self._wake = asyncio.Event()
        self._inflight: set[tuple[int, int]] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._first_seen: dict[tuple[int, int, Action], float] = {}
        self._reported: set[tuple[int, int, Action, str]] = set()
        self._stopping = False

    @property
    def queries(self) -> tuple[str, str]:
        """The websocket subscriptions: this worker's assignments and reveal windows."""
        return (
            f"inference.assigned.worker='{self.address}'",
            f"inference.reveal.worker='{self.address}'",
        )

    # -- lifecycle ---------------------------------------------------------------

    async def run(self, stop_event: asyncio.Event) -> None:
        """Serve until `stop_event` is set; then stop taking tasks, let in-flight ones finish
        (up to `shutdown_timeout_s`), and return. Raises WorkerSetupError if it cannot start."""
        prepared = await _until(self.prepare(), stop_event)
        if not prepared:
            self.log.info("worker.stopped", reason="stopped before start")
            return
        self.log.info("worker.serving", address=self.address, models=list(self.cfg.models))
        loops = [asyncio.create_task(self._subscribe_loop(q), name=f"subscribe {q}") for q in self.queries]
        loops.append(asyncio.create_task(self._dispatch_loop(), name="dispatch"))
        if self.cfg.top_up_bond:
            loops.append(asyncio.create_task(self._bond_loop(), name="bond"))
        stop_wait = asyncio.create_task(stop_event.wait())
        failed: BaseException | None = None
        grace = self.cfg.shutdown_timeout_s
        try:
            done, _ = await asyncio.wait([stop_wait, *loops], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stop_wait and not t.cancelled() and t.exception() is not None:
                    failed = t.exception()
        except asyncio.CancelledError:
            grace = 0.0  # cancelled from outside (a second signal): no waiting for in-flight work
            raise
        finally:
            self._stopping = True
            for t in [stop_wait, *loops]:
                t.cancel()
            await asyncio.gather(stop_wait, *loops, return_exceptions=True)
            await self._drain(grace)
        if failed is not None:
            raise failed
        self.log.info("worker.stopped", reason="stop requested")

    async def _drain(self, timeout: float) -> None:
        """Let in-flight handlers finish for up to `timeout` s, then cancel the rest (their state is on disk)."""
        if not self._handlers:
            return
        pending = set(self._handlers)
        self.log.info("worker.draining", inflight=len(pending), timeout_s=timeout)
        still = pending
        if timeout > 0:
            _, still = await asyncio.wait(pending, timeout=timeout)
        for t in still:
            t.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
            self.log.warning("worker.drain_timeout", cancelled=len(still))

    # -- preparation -------------------------------------------------------------

    async def prepare(self) -> None:
        """Params, model checks and registration; retried while the node is unreachable."""
        await self._retry_unreachable("prepare", self._prepare_once)

    async def _prepare_once(self) -> None:
        params = await self.client.query(PATH_INFERENCE_PARAMS, inf_q.QueryParamsRequest(), inf_q.QueryParamsResponse)
        self.max_response_bytes = params.params.max_response_bytes
        await self.verify_models()
        await self.ensure_registered()

    async def _retry_unreachable(self, what: str, fn: Callable[[], Awaitable[None]]) -> None:
        delay = BACKOFF_MIN_S
        while True:
            try:
                await fn()
                return
            except NodeUnreachableError as e:
                self.metrics.errors.labels(kind="node").inc()
                self.log.warning(f"{what}.node_unreachable", error=str(e), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def verify_models(self) -> None:
        """Every served model is registered; the engine's weights match the registered digest."""
        digest = await self._engine_digest()
        for model_id in self.cfg.models:
            try:
                r = await self.client.query(
                    PATH_MODEL, reg_q.QueryModelRequest(model_id=model_id), reg_q.QueryModelResponse
                )
            except ChainQueryError as e:
                if is_not_found(e):
                    raise WorkerSetupError(
                        f"model {model_id!r} is not registered on chain: register it first "
                        "(MsgRegisterModel) or remove it from [worker] models"
                    ) from None
                raise
            if not r.model.model_id:
                raise WorkerSetupError(f"model {model_id!r} is not registered on chain")
            if digest is not None and r.model.sha256 != digest:
                raise WorkerSetupError(
                    f"the engine's weights have sha256 {digest}, but model {model_id!r} is registered "
                    f"with sha256 {r.model.sha256}: serve the registered weights (or register these)"
                )
            self.log.info("model.verified", model_id=model_id, sha256=r.model.sha256, checked_digest=digest is not None)

    async def _engine_digest(self) -> str | None:
        """The sha256 of the engine's weights when it knows it (llama.cpp does; HTTP engines do not)."""
        d: object = getattr(self.engine, "weights_sha256", None)
        if callable(d):
            d = await d() if inspect.iscoroutinefunction(d) else await asyncio.to_thread(d)
        elif inspect.isawaitable(d):
            d = await d
        return d.lower() if isinstance(d, str) and d else None

    async def get_registration(self) -> reg_q.QueryWorkerResponse | None:
        return await query_worker(self.client, self.address)

    async def ensure_registered(self) -> None:
        """MsgRegisterWorker when absent; MsgUpdateWorker when models, capacity or endpoint differ
        from the config, or (with `top_up_bond`) when slashing left the bond below the configured one."""
        reg = await self.get_registration()
        cfg = self.cfg
        if reg is None:
            msg: Message = reg_tx.MsgRegisterWorker(
                worker=self.address,
                endpoint=cfg.endpoint,
                models=list(cfg.models),
                capacity=cfg.capacity,
                bond=coin_pb2.Coin(denom=cfg.bond_denom, amount=str(cfg.bond_amount)),
            )
            await self._setup_tx(msg, "register")
            self.log.info("worker.registered", address=self.address, bond=cfg.bond, capacity=cfg.capacity)
            return
        w = reg.worker
        if w.status == reg_types.WORKER_STATUS_UNBONDING:
            raise WorkerSetupError(
                f"worker {self.address} is unbonding (its bond returns at height "
                f"{w.unbonding_completion_height}); it gets no new work: restart it after that height "
                "to register again, or use another key"
            )
        models_differ = sorted(w.models) != list(cfg.models)
        capacity_differs = w.capacity != cfg.capacity
        endpoint_differs = bool(cfg.endpoint) and w.endpoint != cfg.endpoint
        shortfall = max(0, cfg.bond_amount - int(w.bond or "0"))
        top_up = shortfall if cfg.top_up_bond else 0
        if models_differ or capacity_differs or endpoint_differs or top_up:
            update = reg_tx.MsgUpdateWorker(
                worker=self.address,
                endpoint=cfg.endpoint if endpoint_differs else "",
                models=list(cfg.models) if models_differ else [],
                models_set=models_differ,
                capacity=cfg.capacity if capacity_differs else 0,
            )
            if top_up:
                update.add_bond.CopyFrom(coin_pb2.Coin(denom=cfg.bond_denom, amount=str(top_up)))
            await self._setup_tx(update, "update")
            self.log.info(
                "worker.updated",
                models=list(cfg.models),
                capacity=cfg.capacity,
                endpoint=cfg.endpoint,
                bond_added=top_up,
            )
        else:
            self.log.info("worker.registration_ok", bond=w.bond, capacity=w.capacity)
        if shortfall and not top_up:
            self.log.warning(
                "worker.bond_low",
                bond=w.bond,
                configured=cfg.bond,
                hint="set [worker] top_up_bond = true, or add bond with MsgUpdateWorker add_bond",
            )

    async def top_up_bond(self) -> int:
        """Bring a bond that slashing took below the configured one back up (MsgUpdateWorker
        add_bond); returns the amount added (0: nothing to do, unregistered or unbonding).
        Raises WorkerSetupError if the chain refuses it (for example: not enough funds)."""
        reg = await self.get_registration()
        if reg is None or reg.worker.status == reg_types.WORKER_STATUS_UNBONDING:
            return 0
        shortfall = max(0, self.cfg.bond_amount - int(reg.worker.bond or "0"))
        if shortfall:
            coin = coin_pb2.Coin(denom=self.cfg.bond_denom, amount=str(shortfall))
            await self._setup_tx(reg_tx.MsgUpdateWorker(worker=self.address, add_bond=coin), "top up the bond of")
            self.log.info("worker.bond_topped_up", bond_was=reg.worker.bond, bond_added=shortfall)
        return shortfall

    async def _bond_loop(self) -> None:
        """While serving, top up the bond every `bond_check_interval_s`: each missed deadline
        slashes it, and below the chain's min_worker_bond the worker gets no work at all."""
        while True:
            await asyncio.sleep(self.cfg.bond_check_interval_s)
            try:
                await self.top_up_bond()
            except Exception as e:  # a failed top-up is retried; it must not end the worker
                self.metrics.errors.labels(kind="bond").inc()
                self.log.warning("worker.bond_top_up_failed", error=str(e), retry_in_s=self.cfg.bond_check_interval_s)

    async def _setup_tx(self, msg: Message, what: str) -> None:
        try:
            res = await self.client.send([msg], self.signer)
            result = await self.client.wait(res.hash, self.cfg.tx_timeout_s)
            result.raise_for_code()
        except TxRejectedError as e:
            raise WorkerSetupError(
                f"{what} worker {self.address} failed ({e.stage}): {e.codespace}/{e.code} {e.log}"
            ) from None
        except TxTimeoutError as e:
            raise WorkerSetupError(f"{what} worker: {e}; check the node and restart") from None

    # -- watching ----------------------------------------------------------------

    async def _subscribe_loop(self, query: str) -> None:
        """Keep one subscription open; every event and every (re)connect wakes the dispatcher."""
        loop = asyncio.get_running_loop()
        delay = BACKOFF_MIN_S
        while True:
            self._wake.set()  # catch up on whatever happened while not subscribed
            catch_up = loop.call_later(CATCH_UP_DELAY_S, self._wake.set)
            opened = loop.time()
            try:
                async for _event in self.client.rpc.subscribe(query):
                    self._wake.set()
                    delay = BACKOFF_MIN_S
                self.log.warning("subscribe.closed", query=query)
            except (ClientError, OSError, ValueError) as e:
                self.metrics.errors.labels(kind="subscribe").inc()
                self.log.warning("subscribe.error", query=query, error=str(e), retry_in_s=delay)
            finally:
                catch_up.cancel()
            if loop.time() - opened > BACKOFF_MAX_S:
                delay = BACKOFF_MIN_S
            await asyncio.sleep(delay * (0.75 + random.random() / 2))
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _dispatch_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.poll()
            except Exception as e:  # one bad poll must not end the worker
                self.metrics.errors.labels(kind="poll").inc()
                self.log.error("poll.error", error=repr(e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.poll_interval_s)

    async def poll(self) -> int:
        """Read WorkerTasks once and start a handler for each task not in flight; returns how many started."""
        if self._stopping:
            return 0
        try:
            resp = await self.client.query(
                PATH_WORKER_TASKS,
                inf_q.QueryWorkerTasksRequest(worker=self.address),
                inf_q.QueryWorkerTasksResponse,
            )
        except (ClientError, OSError) as e:
            self.metrics.errors.labels(kind="node" if isinstance(e, NodeUnreachableError) else "query").inc()
            self.log.warning("poll.failed", error=str(e))
            return 0
        now = asyncio.get_running_loop().time()
        listed: set[tuple[int, int, Action]] = set()
        started = 0
        for raw in sorted(resp.tasks, key=lambda t: (t.deadline_height, t.request.id)):
            task = self._decode(raw)
            if task is None:
                continue
            listed.add((*task.key, task.action))
            self._first_seen.setdefault((*task.key, task.action), now)
            if task.key in self._inflight:
                continue
            self._inflight.add(task.key)
            h = asyncio.create_task(self._handle(task), name=f"task {task.key} {task.action}")
            self._handlers.add(h)
            h.add_done_callback(self._handlers.discard)
            started += 1
        # forget first-seen times of tasks no longer listed (done, or expired on chain)
        self._first_seen = {k: v for k, v in self._first_seen.items() if k in listed or (k[0], k[1]) in self._inflight}
        return started

    def _decode(self, raw: inf_q.WorkerTask) -> _Task | None:
        try:
            action = Action(raw.action.lower())
        except ValueError:
            self._report_once(raw.request.id, raw.attempt, Action.SUBMIT, "bad_action", chain_action=raw.action)
            return None
        return _Task(raw.request, action, raw.attempt, raw.deadline_height)

    def _report_once(self, rid: int, attempt: int, action: Action, what: str, **fields: Any) -> bool:
        """Log an error about a task once per process, not on every poll; True the first time."""
        key = (rid, attempt, action, what)
        if key in self._reported:
            return False
        self._reported.add(key)
        self.metrics.errors.labels(kind=what).inc()
        self.log.error(f"task.{what}", request_id=rid, attempt=attempt, action=str(action), **fields)
        return True

    # -- handling ----------------------------------------------------------------

    async def _handle(self, task: _Task) -> None:
        self.metrics.inflight.inc()
        try:
            if task.action is Action.REVEAL:
                await self._reveal(task)
            else:
                await self._produce(task)
        except _Stopping:
            self.log.info("task.deferred", request_id=task.request.id, action=str(task.action), reason="stopping")
        except Exception as e:
            kind = _error_kind(e)
            self.metrics.errors.labels(kind=kind).inc()
            self.metrics.tasks.labels(action=str(task.action), outcome="error").inc()
            self.log.error(
                "task.error",
                request_id=task.request.id,
                attempt=task.attempt,
                action=str(task.action),
                kind=kind,
                error=repr(e),
            )
        finally:
            self.metrics.inflight.dec()
            self._inflight.discard(task.key)

    async def _produce(self, task: _Task) -> None:
        """SUBMIT or COMMIT: reuse or generate the answer, then send it (once)."""
        req = task.request
        if req.model_id not in self.cfg.models:
            self._report_once(req.id, task.attempt, task.action, "unserved_model", model_id=req.model_id)
            return
        rec = self.state.get(req.id, task.attempt)
        if not await self._should_send(task, rec):
            return
        answer = rec.answer if rec is not None else None
        if answer is None:
            answer = await self._generate(task)
        if task.action is Action.COMMIT and len(answer.salt) != SALT_BYTES:
            self._report_once(req.id, task.attempt, task.action, "bad_salt", salt_len=len(answer.salt))
            return
        msg: Message
        if task.action is Action.SUBMIT:
            msg = inf_tx.MsgSubmitResult(
                worker=self.address,
                request_id=req.id,
                response=answer.response,
                completion_tokens=answer.completion_tokens,
            )
        else:
            msg = inf_tx.MsgCommitResult(
                worker=self.address,
                request_id=req.id,
                commitment=commitment(answer.response, answer.salt, self.address),
            )
        await self._send(task, msg, rec)

    async def _reveal(self, task: _Task) -> None:
        req = task.request
        rec = self.state.get(req.id, task.attempt)
        if rec is None or rec.answer is None or len(rec.answer.salt) != SALT_BYTES:
            if self._report_once(
                req.id,
                task.attempt,
                Action.REVEAL,
                "lost_answer",
                hint="the committed answer or salt is not in the state file: this assignment will be missed",
            ):
                self.metrics.tasks.labels(action="reveal", outcome="lost").inc()
            return
        answer = rec.answer
        onchain = self._my_commitment(req, task.attempt)
        mine = commitment(answer.response, answer.salt, self.address)
        if onchain is not None and onchain != mine:
            self._report_once(
                req.id,
                task.attempt,
                Action.REVEAL,
                "commitment_mismatch",
                hint="the stored answer does not open the on-chain commitment; not revealing",
            )
            return
        if not await self._should_send(task, rec):
            return
        msg = inf_tx.MsgRevealResult(
            worker=self.address,
            request_id=req.id,
            response=answer.response,
            salt=answer.salt,
            completion_tokens=answer.completion_tokens,
        )
        await self._send(task, msg, rec)

    def _my_commitment(self, req: inf_types.Request, attempt: int) -> bytes | None:
        for a in req.assignments:
            if a.worker == self.address and a.attempt == attempt and a.commitment:
                return bytes(a.commitment)
        return None

    async def _generate(self, task: _Task) -> Answer:
        """Run the engine (holding one of `concurrency` slots) and store the answer before anything is sent."""
        req = task.request
        params = generation_params(req)
        async with self._slots:
            if self._stopping:  # queued behind the slots when the stop came: leave it for the next run
                raise _Stopping()
            gen = await self.engine.generate(req.prompt, params)
        self.metrics.generation_seconds.observe(gen.seconds)
        self.metrics.tokens.labels(kind="prompt").inc(gen.prompt_tokens)
        self.metrics.tokens.labels(kind="completion").inc(gen.completion_tokens)
        text = fit_utf8(gen.text, self.max_response_bytes)
        if text != gen.text:
            self.log.warning(
                "answer.cut",
                request_id=req.id,
                bytes=len(gen.text.encode()),
                max_response_bytes=self.max_response_bytes,
            )
        tokens = min(gen.completion_tokens, req.max_tokens)
        salt = os.urandom(SALT_BYTES) if task.action is Action.COMMIT else b""
        stored = self.state.save_answer(
            req.id, task.attempt, req.model_id, Answer(text, tokens, gen.prompt_tokens, salt)
        )
        self.log.info(
            "answer.generated",
            request_id=req.id,
            attempt=task.attempt,
            completion_tokens=tokens,
            finish_reason=gen.finish_reason,
            seconds=round(gen.seconds, 3),
        )
        return stored

    async def _should_send(self, task: _Task, rec: AssignmentRecord | None) -> bool:
        """Decide from the recorded tx (if any) whether content must be broadcast now.

        confirmed -> no; sending/broadcast -> look the hash up: in a block -> record it, no;
        not found -> no until `resend_grace_blocks` have passed, then yes (same content);
        rejected by CheckTx -> yes (it never reached a block) unless MAX_SENDS is spent.
        """
        req = task.request
        txr = rec.tx(task.action) if rec is not None else TxRecord()
        if txr.state is TxState.CONFIRMED and (txr.ok or txr.error != OUT_OF_GAS):
            self.log.debug("task.already_done", request_id=req.id, action=str(task.action), code=txr.code)
            return False
        if txr.sends >= MAX_SENDS:
            self._report_once(req.id, task.attempt, task.action, "gave_up", sends=txr.sends, last_log=txr.log)
            return False
        if txr.state in (TxState.SENDING, TxState.BROADCAST):
            if txr.tx_hash:
                found = await self.client.rpc.tx(txr.tx_hash)
                if found is not None:
                    self._settle(task, txr.tx_hash, found)
                    return False
            height = (await self.client.status()).latest_height
            waited = height - txr.sent_height
            if waited < self.cfg.resend_grace_blocks:
                self.log.debug(
                    "task.tx_pending", request_id=req.id, action=str(task.action), tx_hash=txr.tx_hash, blocks=waited
                )
                return False
            self.log.warning(
                "task.resend",
                request_id=req.id,
                attempt=task.attempt,
                action=str(task.action),
                previous_tx=txr.tx_hash,
                blocks_waited=waited,
            )
        return True

    async def _send(self, task: _Task, msg: Message, rec: AssignmentRecord | None) -> None:
        """Record the intent (fsync), broadcast, record the hash, wait for the block, record the result."""
        req = task.request
        rid, attempt, action = req.id, task.attempt, task.action
        prev = rec.tx(action) if rec is not None else TxRecord()
        gas = estimate_gas(msg, req.prompt)
        if prev.state is TxState.CONFIRMED and prev.error == OUT_OF_GAS:
            gas *= 2**prev.sends
        height = (await self.client.status()).latest_height
        self.state.mark_sending(rid, attempt, action, height)
        try:
            res = await self.client.send([msg], self.signer, gas=gas)
        except TxRejectedError as e:
            self.state.mark_rejected(rid, attempt, action, e.codespace, e.code, e.log)
            self.metrics.tasks.labels(action=str(action), outcome="rejected").inc()
            self.log.warning(
                "task.rejected", request_id=rid, action=str(action), codespace=e.codespace, code=e.code, log=e.log
            )
            return
        self.state.mark_broadcast(rid, attempt, action, res.hash)
        self.log.info("task.broadcast", request_id=rid, attempt=attempt, action=str(action), tx_hash=res.hash)
        try:
            result = await self.client.wait(res.hash, self.cfg.tx_timeout_s)
        except TxTimeoutError:
            self.metrics.errors.labels(kind="tx_timeout").inc()
            self.metrics.tasks.labels(action=str(action), outcome="pending").inc()
            self.log.warning("task.tx_timeout", request_id=rid, action=str(action), tx_hash=res.hash)
            return
        self._settle(task, res.hash, result)

    def _settle(self, task: _Task, tx_hash: str, result: TxResult) -> None:
        """The tx is in a block: record its height and code, count the outcome."""
        rid, attempt, action = task.request.id, task.attempt, task.action
        self.state.mark_confirmed(
            rid, attempt, action, tx_hash, result.height, result.codespace, result.code, result.log
        )
        key = (rid, attempt, action)
        seen = self._first_seen.get(key)
        if result.ok:
            self.metrics.tasks.labels(action=str(action), outcome="ok").inc()
            if seen is not None:
                self.metrics.task_seconds.observe(asyncio.get_running_loop().time() - seen)
            self.log.info(
                "task.done", request_id=rid, attempt=attempt, action=str(action), tx_hash=tx_hash, height=result.height
            )
        else:
            self.metrics.tasks.labels(action=str(action), outcome="failed").inc()
            self.metrics.errors.labels(kind="tx_failed").inc()
            self.log.error(
                "task.failed",
                request_id=rid,
                attempt=attempt,
                action=str(action),
                tx_hash=tx_hash,
                height=result.height,
                codespace=result.codespace,
                code=result.code,
                log=result.log,
            )


async def _until(coro: Coroutine[Any, Any, T], stop: asyncio.Event) -> bool:
    """Run `coro` unless `stop` is set first (then cancel it); True when it finished."""
    work = asyncio.ensure_future(coro)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([work, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
    if work.cancelled():
        return False
    work.result()
    return True


__all__ = [
    "ChainClient",
    "ChainRPC",
    "Worker",
    "WorkerSetupError",
    "commitment",
    "estimate_gas",
    "fit_utf8",
    "generation_params",
    "query_worker",
]
