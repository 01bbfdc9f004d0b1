"""The worker loop against an in-memory chain and a fake engine.

`FakeChain` implements the methods of `chain.client.Client` the worker uses
(query, send, wait, status, rpc.tx, rpc.subscribe) over a tiny model of the
registry and inference modules: assignments, WorkerTasks, submit, commit and
reveal with the real commitment rule. Txs land in a block at once
(`auto_block`) or wait in a mempool until `produce_block()`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import tx_pb2 as inf_tx
from polylink.inference.v1 import types_pb2 as inf_types
from polylink.registry.v1 import query_pb2 as reg_q
from polylink.registry.v1 import tx_pb2 as reg_tx
from polylink.registry.v1 import types_pb2 as reg_types

from chain.client.errors import ChainQueryError, NodeUnreachableError, TxRejectedError, TxTimeoutError
from chain.client.results import BroadcastResult, NodeStatus, RpcEvent, TxResult
from chain.client.signer import Signer
from worker.config import WorkerConfig, parse_config
from worker.engines.base import EngineError, Generation, GenerationParams
from worker.logs import EventLog
from worker.metrics import WorkerMetrics
from worker.service import (
    PATH_INFERENCE_PARAMS,
    PATH_MODEL,
    PATH_REQUEST,
    PATH_WORKER,
    PATH_WORKER_TASKS,
    Worker,
    WorkerSetupError,
    commitment,
    fit_utf8,
    generation_params,
)
from worker.state import Action, Answer, TxState, WorkerState

SIGNER = Signer.from_hex("33" * 32)
OTHER = Signer.from_hex("44" * 32)
ADDR = SIGNER.address
MODEL = "m1"
DIGEST = "ab" * 32


# -- fakes -------------------------------------------------------------------------


class FakeRPC:
    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain

    async def tx(self, txhash: str) -> TxResult | None:
        self.chain.calls.append("tx")
        return self.chain.results.get(txhash)

    async def subscribe(self, query: str) -> AsyncIterator[RpcEvent]:
        self.chain.subscribes.append(query)
        if self.chain.subscribe_failures > 0:
            self.chain.subscribe_failures -= 1
            raise NodeUnreachableError("websocket down")
        q: asyncio.Queue[RpcEvent | None] = asyncio.Queue()
        entry = (query, q)
        self.chain.subs.append(entry)
        try:
            while True:
                ev = await q.get()
                if ev is None:
                    return
                yield ev
        finally:
            self.chain.subs.remove(entry)


class FakeChain:
    """Just enough of the registry and inference modules, behind Client's method names."""

    def __init__(self) -> None:
        self.height = 10
        self.params = inf_types.Params(max_response_bytes=32768)
        self.models: dict[str, reg_types.Model] = {MODEL: reg_types.Model(model_id=MODEL, sha256=DIGEST)}
        self.workers: dict[str, reg_types.Worker] = {}
        self.requests: dict[int, inf_types.Request] = {}
        self.results: dict[str, TxResult] = {}
        self.sent: list[Message] = []
        self.mempool: list[tuple[str, list[Message]]] = []
        self.auto_block = True
        self.reject_next: list[tuple[str, int, str]] = []
        self.fail_next: list[tuple[str, int, str]] = []
        self.gas: list[int] = []
        self.subs: list[tuple[str, asyncio.Queue[RpcEvent | None]]] = []
        self.subscribes: list[str] = []
        self.subscribe_failures = 0
        self.calls: list[str] = []
        self.stale_tasks: list[inf_q.WorkerTask] = []
        self._ids = itertools.count(1)
        self.rpc = FakeRPC(self)

    # -- Client's surface --

    async def status(self) -> NodeStatus:
        return NodeStatus("test", "", "", self.height, "", "", False)

    async def query(self, path: str, request: Any, response_cls: Any, height: int = 0) -> Any:
        self.calls.append(path)
        if path == PATH_INFERENCE_PARAMS:
            return inf_q.QueryParamsResponse(params=self.params)
        if path == PATH_MODEL:
            if request.model_id not in self.models:
                raise ChainQueryError(path, "registry", 9, "no model with this id is registered")
            return reg_q.QueryModelResponse(model=self.models[request.model_id])
        if path == PATH_WORKER:
            if request.address not in self.workers:
                raise ChainQueryError(path, "registry", 11, "no worker with this address")
            return reg_q.QueryWorkerResponse(worker=self.workers[request.address])
        if path == PATH_WORKER_TASKS:
            return inf_q.QueryWorkerTasksResponse(tasks=[*self.stale_tasks, *self.tasks_of(request.worker)])
        if path == PATH_REQUEST:
            return inf_q.QueryRequestResponse(request=self.requests[request.id])
        raise AssertionError(f"unexpected query {path}")

    async def send(self, msgs: Sequence[Message], key: Signer | str, *, gas: int = 200_000) -> BroadcastResult:
        if self.reject_next:
            codespace, code, log = self.reject_next.pop(0)
            raise TxRejectedError("", "check", codespace, code, log)
        self.gas.append(gas)
        n = next(self._ids)
        txhash = hashlib.sha256(f"{n}".encode() + b"".join(m.SerializeToString() for m in msgs)).hexdigest().upper()
        self.sent.extend(msgs)
        self.mempool.append((txhash, list(msgs)))
        if self.auto_block:
            self.produce_block()
        return BroadcastResult(hash=txhash)

    async def wait(self, txhash: str, timeout: float = 30.0) -> TxResult:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while txhash not in self.results:
            if loop.time() > end:
                raise TxTimeoutError(txhash, timeout)
            await asyncio.sleep(0.005)
        return self.results[txhash]

    # -- the chain's side --

    def produce_block(self) -> None:
        self.height += 1
        txs, self.mempool = self.mempool, []
        for txhash, msgs in txs:
            codespace, code, log = "", 0, ""
            if self.fail_next:
                codespace, code, log = self.fail_next.pop(0)
            else:
                for m in msgs:
                    code, log = self.apply(m)
                    if code:
                        codespace = "inference"
                        break
            self.results[txhash] = TxResult(txhash, self.height, code, codespace, log)

    def apply(self, m: Message) -> tuple[int, str]:
        if isinstance(m, reg_tx.MsgRegisterWorker):
            if m.worker in self.workers:
                return 10, "exists"
            self.workers[m.worker] = reg_types.Worker(
                address=m.worker,
                endpoint=m.endpoint,
                models=sorted(m.models),
                capacity=m.capacity,
                bond=m.bond.amount,
                status=reg_types.WORKER_STATUS_ACTIVE,
            )
            return 0, ""
        if isinstance(m, reg_tx.MsgUpdateWorker):
            w = self.workers[m.worker]
            if m.models_set:
                del w.models[:]
                w.models.extend(sorted(m.models))
            if m.capacity:
                w.capacity = m.capacity
            if m.endpoint:
                w.endpoint = m.endpoint
            if m.add_bond.amount:
                w.bond = str(int(w.bond) + int(m.add_bond.amount))
            return 0, ""
        if isinstance(m, inf_tx.MsgSubmitResult):
            r = self.requests[m.request_id]
            a = self._assignment(r, m.worker)
            if a is None or a.status != inf_types.ASSIGNMENT_STATUS_OPEN or r.redundancy != 1:
                return 5, "no open assignment"
            if len(m.response.encode()) > self.params.max_response_bytes or m.completion_tokens > r.max_tokens:
                return 6, "too long"
            a.status = inf_types.ASSIGNMENT_STATUS_DONE
            r.status = inf_types.REQUEST_STATUS_COMPLETED
            return 0, ""
        if isinstance(m, inf_tx.MsgCommitResult):
            r = self.requests[m.request_id]
            a = self._assignment(r, m.worker)
            if (
                a is None
                or a.status != inf_types.ASSIGNMENT_STATUS_OPEN
                or r.status != inf_types.REQUEST_STATUS_ASSIGNED
            ):
                return 5, "no open assignment"
            a.status = inf_types.ASSIGNMENT_STATUS_COMMITTED
            a.commitment = m.commitment
            current = [x for x in r.assignments if x.attempt == r.reassignments]
            if all(x.status == inf_types.ASSIGNMENT_STATUS_COMMITTED for x in current):
                r.status = inf_types.REQUEST_STATUS_REVEAL
                for x in current:
                    self.emit("reveal", x.worker)
            return 0, ""
        if isinstance(m, inf_tx.MsgRevealResult):
            r = self.requests[m.request_id]
            a = self._assignment(r, m.worker)
            if (
                a is None
                or a.status != inf_types.ASSIGNMENT_STATUS_COMMITTED
                or r.status != inf_types.REQUEST_STATUS_REVEAL
            ):
                return 5, "not committed"
            if hashlib.sha256(m.response.encode() + m.salt + m.worker.encode()).digest() != a.commitment:
                return 7, "commitment mismatch"
            a.status = inf_types.ASSIGNMENT_STATUS_DONE
            return 0, ""
        raise AssertionError(f"unexpected msg {type(m).__name__}")

    def _assignment(self, r: inf_types.Request, worker: str) -> inf_types.Assignment | None:
        for a in r.assignments:
            if a.worker == worker and a.attempt == r.reassignments:
                return a
        return None

    def assign(
        self,
        workers: Sequence[str],
        *,
        prompt: str = "hello there",
        redundancy: int = 1,
        max_tokens: int = 16,
        sampling: inf_types.SamplingParams | None = None,
        model: str = MODEL,
    ) -> int:
        rid = len(self.requests) + 1
        self.requests[rid] = inf_types.Request(
            id=rid,
            requester="poly1requester",
            model_id=model,
            prompt=prompt,
            max_tokens=max_tokens,
            sampling=sampling or inf_types.SamplingParams(),
            redundancy=redundancy,
            status=inf_types.REQUEST_STATUS_ASSIGNED,
            deadline_height=self.height + 30,
            assignments=[
                inf_types.Assignment(worker=w, status=inf_types.ASSIGNMENT_STATUS_OPEN, attempt=0) for w in workers
            ],
        )
        for w in workers:
            self.emit("assigned", w)
        return rid

    def tasks_of(self, worker: str) -> list[inf_q.WorkerTask]:
        out = []
        for r in self.requests.values():
            a = self._assignment(r, worker)
            if a is None:
                continue
            action = ""
            if a.status == inf_types.ASSIGNMENT_STATUS_OPEN and r.status == inf_types.REQUEST_STATUS_ASSIGNED:
                action = "SUBMIT" if r.redundancy == 1 else "COMMIT"
            elif a.status == inf_types.ASSIGNMENT_STATUS_COMMITTED and r.status == inf_types.REQUEST_STATUS_REVEAL:
                action = "REVEAL"
            if action:
                out.append(
                    inf_q.WorkerTask(request=r, action=action, deadline_height=r.deadline_height, attempt=a.attempt)
                )
        return out

    def emit(self, kind: str, worker: str) -> None:
        for query, q in self.subs:
            if query == f"inference.{kind}.worker='{worker}'":
                q.put_nowait(RpcEvent(query, "tendermint/event/NewBlock", {}, {}))

    def close_subscriptions(self) -> None:
        for _, q in self.subs:
            q.put_nowait(None)

    def register(self, worker: str = ADDR, models: Sequence[str] = (MODEL,), capacity: int = 1000) -> None:
        self.workers[worker] = reg_types.Worker(
            address=worker,
            models=sorted(models),
            capacity=capacity,
            bond="100000000",
            status=reg_types.WORKER_STATUS_ACTIVE,
        )

    def sent_of(self, cls: type[Message]) -> list[Any]:
        return [m for m in self.sent if isinstance(m, cls)]


class FakeEngine:
    """Answers `answer(prompt)`; counts calls and the most generations running at once."""

    name = "fake"

    def __init__(
        self,
        answer: Callable[[str], str] = lambda p: f"echo: {p}",
        delay: float = 0.0,
        digest: str | None = None,
    ) -> None:
        self.answer = answer
        self.delay = delay
        self.calls: list[tuple[str, GenerationParams]] = []
        self.running = 0
        self.max_running = 0
        if digest is not None:
            self.weights_sha256 = digest

    async def __aenter__(self) -> FakeEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def generate(self, prompt: str, params: GenerationParams) -> Generation:
        self.calls.append((prompt, params))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        text = self.answer(prompt)
        return Generation(text, len(prompt.split()), len(text.split()), "stop", self.delay)


def make_config(tmp_path: Path, **worker: Any) -> WorkerConfig:
    data = {
        "chain": {"key": "worker", "home": str(tmp_path)},
        "worker": {
            "models": [MODEL],
            "capacity": 1000,
            "state_dir": str(tmp_path / "state"),
            "poll_interval_s": 0.05,
            "shutdown_timeout_s": 5.0,
            "tx_timeout_s": 2.0,
            **worker,
        },
        "engine": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "model_name": MODEL},
    }
    return parse_config(data, base_dir=tmp_path)


class Harness:
    """A Worker over a FakeChain and a FakeEngine, with its state file open."""

    def __init__(
        self,
        tmp_path: Path,
        chain: FakeChain,
        engine: FakeEngine | None = None,
        signer: Signer = SIGNER,
        **worker: Any,
    ) -> None:
        self.cfg = make_config(tmp_path, **worker)
        self.chain = chain
        self.engine = engine or FakeEngine()
        self.signer = signer
        self.metrics = WorkerMetrics()
        self.state = WorkerState(self.cfg.worker.state_file, signer.address)
        self.worker: Worker | None = None

    async def run_until(self, cond: Callable[[], bool], timeout: float = 5.0, *, then: float = 0.0) -> Worker:
        """Run the worker until `cond()` holds (plus `then` seconds), then stop it and wait for it."""
        with self.state:
            w = Worker(self.cfg, self.chain, self.engine, self.signer, self.state, metrics=self.metrics, log=EventLog())
            self.worker = w
            stop = asyncio.Event()
            task = asyncio.create_task(w.run(stop))
            loop = asyncio.get_running_loop()
            end = loop.time() + timeout
            while not cond():
                if task.done():
                    task.result()
                    raise AssertionError("worker stopped before the condition held")
                if loop.time() > end:
                    stop.set()
                    await task
                    raise AssertionError("condition not met in time")
                await asyncio.sleep(0.01)
            if then:
                await asyncio.sleep(then)
            stop.set()
            await asyncio.wait_for(task, 10)
            return w


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- pure helpers --------------------------------------------------------------------


def test_generation_params_from_ppm() -> None:
    r = inf_types.Request(
        max_tokens=32, sampling=inf_types.SamplingParams(temperature_ppm=700_000, top_p_ppm=0, seed=9)
    )
    p = generation_params(r)
    assert (p.max_tokens, p.temperature, p.top_p, p.seed) == (32, 0.7, 1.0, 9)
    r.sampling.top_p_ppm = 900_000
    assert generation_params(r).top_p == 0.9


def test_fit_utf8_cuts_on_a_character_boundary() -> None:
    text = "aé€😀" * 3  # 1 + 2 + 3 + 4 bytes
    for limit in range(1, len(text.encode()) + 2):
        cut = fit_utf8(text, limit)
        assert len(cut.encode()) <= limit
        assert len(cut.encode()) > limit - 4  # at most one character dropped
        assert text.startswith(cut)
    assert fit_utf8(text, 0) == text
    assert fit_utf8("aé", 2) == "a"


# -- registration and start-up checks ---------------------------------------------------


def test_registers_when_absent(tmp_path: Path) -> None:
    chain = FakeChain()
    h = Harness(tmp_path, chain, endpoint="http://me", bond="150000000upoly")
    run(h.run_until(lambda: ADDR in chain.workers))
    (msg,) = chain.sent_of(reg_tx.MsgRegisterWorker)
    assert msg.worker == ADDR
    assert list(msg.models) == [MODEL]
    assert msg.capacity == 1000
    assert (msg.bond.denom, msg.bond.amount) == ("upoly", "150000000")
    assert msg.endpoint == "http://me"
    assert chain.subscribes[:2] == [f"inference.assigned.worker='{ADDR}'", f"inference.reveal.worker='{ADDR}'"]


def test_registered_worker_is_left_alone_or_updated(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: PATH_WORKER_TASKS in chain.calls))
    assert chain.sent == []

    chain.models["m2"] = reg_types.Model(model_id="m2", sha256=DIGEST)
    h = Harness(tmp_path, chain, models=["m2", MODEL], capacity=500)
    run(h.run_until(lambda: chain.workers[ADDR].capacity == 500))
    (upd,) = chain.sent_of(reg_tx.MsgUpdateWorker)
    assert upd.models_set and list(upd.models) == [MODEL, "m2"] and upd.capacity == 500
    assert list(chain.workers[ADDR].models) == [MODEL, "m2"]


def test_slashed_bond_is_topped_up_unless_disabled(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    chain.workers[ADDR].bond = "99000000"
    h = Harness(tmp_path, chain, top_up_bond=False)
    run(h.run_until(lambda: PATH_WORKER_TASKS in chain.calls))
    assert chain.sent == []
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: chain.sent != []))
    (upd,) = chain.sent_of(reg_tx.MsgUpdateWorker)
    assert (upd.add_bond.denom, upd.add_bond.amount) == ("upoly", "1000000")
    assert not upd.models_set and upd.capacity == 0
    assert chain.workers[ADDR].bond == "100000000"


def test_a_bond_slashed_while_serving_is_topped_up(tmp_path: Path) -> None:
    """A missed deadline slashes a running worker below min_worker_bond: it tops up without a restart."""
    chain = FakeChain()
    chain.register()
    h = Harness(tmp_path, chain, bond_check_interval_s=0.05)
    slashed: list[bool] = []

    def topped_up() -> bool:
        if not slashed and PATH_WORKER_TASKS in chain.calls:
            chain.workers[ADDR].bond = "98000000"  # two misses of 1% while serving
            slashed.append(True)
        return bool(slashed) and chain.workers[ADDR].bond == "100000000"

    run(h.run_until(topped_up))
    (upd,) = chain.sent_of(reg_tx.MsgUpdateWorker)
    assert (upd.add_bond.denom, upd.add_bond.amount) == ("upoly", "2000000")
    assert not upd.models_set and upd.capacity == 0 and upd.endpoint == ""

    chain.workers[ADDR].bond = "99000000"  # top_up_bond = false: left to the operator
    h = Harness(tmp_path, chain, top_up_bond=False, bond_check_interval_s=0.05)
    run(h.run_until(lambda: PATH_WORKER_TASKS in chain.calls, then=0.3))
    assert len(chain.sent_of(reg_tx.MsgUpdateWorker)) == 1 and chain.workers[ADDR].bond == "99000000"


def test_unbonding_worker_refuses_to_start(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    chain.workers[ADDR].status = reg_types.WORKER_STATUS_UNBONDING
    h = Harness(tmp_path, chain)
    with pytest.raises(WorkerSetupError, match="unbonding"):
        run(h.run_until(lambda: False))


def test_unregistered_model_refuses_to_start(tmp_path: Path) -> None:
    chain = FakeChain()
    h = Harness(tmp_path, chain, models=["nope"])
    with pytest.raises(WorkerSetupError, match="'nope' is not registered"):
        run(h.run_until(lambda: False))
    assert chain.sent == []


def test_weights_digest_must_match_the_registered_one(tmp_path: Path) -> None:
    chain = FakeChain()
    h = Harness(tmp_path, chain, engine=FakeEngine(digest="cd" * 32))
    with pytest.raises(WorkerSetupError, match="sha256"):
        run(h.run_until(lambda: False))
    assert chain.sent == []
    h = Harness(tmp_path, chain, engine=FakeEngine(digest=DIGEST))
    run(h.run_until(lambda: ADDR in chain.workers))


def test_retries_while_the_node_is_unreachable(tmp_path: Path) -> None:
    chain = FakeChain()
    real_query = chain.query
    failures = [2]

    async def flaky(path: str, request: Any, response_cls: Any, height: int = 0) -> Any:
        if failures[0] > 0:
            failures[0] -= 1
            raise NodeUnreachableError("connection refused")
        return await real_query(path, request, response_cls, height)

    chain.query = flaky  # type: ignore[method-assign]
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: ADDR in chain.workers))
    assert h.metrics.value("polylink_worker_errors_total", {"kind": "node"}) == 2


def test_stop_before_the_node_answers_returns_cleanly(tmp_path: Path) -> None:
    chain = FakeChain()

    async def down(*_a: Any, **_k: Any) -> Any:
        raise NodeUnreachableError("down")

    chain.query = down  # type: ignore[method-assign]
    h = Harness(tmp_path, chain)

    async def main() -> None:
        with h.state:
            stop = asyncio.Event()
            w = Worker(h.cfg, chain, h.engine, SIGNER, h.state, metrics=h.metrics)
            t = asyncio.create_task(w.run(stop))
            await asyncio.sleep(0.2)
            stop.set()
            await asyncio.wait_for(t, 2)

    run(main())


# -- SUBMIT ------------------------------------------------------------------------------


def test_submit_sends_exactly_one_result(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    sampling = inf_types.SamplingParams(temperature_ppm=700_000, top_p_ppm=0, seed=42)
    rid = chain.assign([ADDR], prompt="what is two plus two", sampling=sampling, max_tokens=8)
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: chain.requests[rid].status == inf_types.REQUEST_STATUS_COMPLETED, then=0.3))
    (msg,) = chain.sent_of(inf_tx.MsgSubmitResult)
    assert (msg.worker, msg.request_id, msg.response) == (ADDR, rid, "echo: what is two plus two")
    assert msg.completion_tokens == 6
    assert len(h.engine.calls) == 1
    prompt, params = h.engine.calls[0]
    assert prompt == "what is two plus two"
    assert (params.max_tokens, params.temperature, params.top_p, params.seed) == (8, 0.7, 1.0, 42)
    with WorkerState(h.cfg.worker.state_file, ADDR) as st:
        rec = st.get(rid, 0)
        assert rec is not None and rec.answer is not None
        assert rec.answer.response == msg.response and rec.answer.salt == b""
        tx = rec.tx(Action.SUBMIT)
        assert tx.state is TxState.CONFIRMED and tx.ok and tx.confirmed_height == chain.height


def test_submit_caps_response_bytes_and_tokens(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    chain.params.max_response_bytes = 10
    rid = chain.assign([ADDR], max_tokens=2)
    h = Harness(tmp_path, chain, engine=FakeEngine(answer=lambda p: "ééééé ééé é é é"))
    run(h.run_until(lambda: chain.requests[rid].status == inf_types.REQUEST_STATUS_COMPLETED))
    (msg,) = chain.sent_of(inf_tx.MsgSubmitResult)
    assert msg.response == "ééééé"  # 10 bytes, never half a character
    assert msg.completion_tokens == 2


def test_event_wakes_the_worker_without_polling(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    h = Harness(tmp_path, chain, poll_interval_s=60.0)
    rid: list[int] = []

    def assigned() -> bool:
        if not rid and len(chain.subs) == 2:
            rid.append(chain.assign([ADDR]))
        return bool(rid) and chain.requests[rid[0]].status == inf_types.REQUEST_STATUS_COMPLETED

    run(h.run_until(assigned, timeout=3.0))
    assert len(chain.sent_of(inf_tx.MsgSubmitResult)) == 1


def test_subscription_reconnects_after_failures(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    chain.subscribe_failures = 2
    h = Harness(tmp_path, chain, poll_interval_s=60.0)
    run(h.run_until(lambda: len(chain.subs) == 2, timeout=5.0))
    assert len(chain.subscribes) == 4
    assert h.metrics.value("polylink_worker_errors_total", {"kind": "subscribe"}) == 2


def test_checktx_rejection_is_retried_on_the_next_poll(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    chain.reject_next = [("tx", 6, "insufficient funds to pay the fee")]
    rid = chain.assign([ADDR])
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: chain.requests[rid].status == inf_types.REQUEST_STATUS_COMPLETED))
    assert len(chain.sent_of(inf_tx.MsgSubmitResult)) == 1
    assert len(h.engine.calls) == 1  # the stored answer is reused
    assert h.metrics.value("polylink_worker_tasks_total", {"action": "submit", "outcome": "rejected"}) == 1
    assert h.metrics.value("polylink_worker_tasks_total", {"action": "submit", "outcome": "ok"}) == 1


# -- COMMIT / REVEAL -----------------------------------------------------------------------


def test_commit_then_reveal_opens_the_commitment(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    chain.register(OTHER.address)
    rid = chain.assign([ADDR, OTHER.address], redundancy=2)
    # the other worker commits at once, so ours closes the commit phase
    other_salt = b"\x01" * 32
    chain.apply(
        inf_tx.MsgCommitResult(
            worker=OTHER.address, request_id=rid, commitment=commitment("x", other_salt, OTHER.address)
        )
    )
    h = Harness(tmp_path, chain)

    def revealed() -> bool:
        a = chain._assignment(chain.requests[rid], ADDR)
        return a is not None and a.status == inf_types.ASSIGNMENT_STATUS_DONE

    run(h.run_until(revealed))
    (c,) = chain.sent_of(inf_tx.MsgCommitResult)
    (r,) = chain.sent_of(inf_tx.MsgRevealResult)
    assert len(r.salt) == 32
    assert c.commitment == hashlib.sha256(r.response.encode() + r.salt + ADDR.encode()).digest()
    assert r.response == "echo: hello there" and r.completion_tokens == 3
    assert len(h.engine.calls) == 1
    assert h.metrics.value("polylink_worker_tasks_total", {"action": "commit", "outcome": "ok"}) == 1
    assert h.metrics.value("polylink_worker_tasks_total", {"action": "reveal", "outcome": "ok"}) == 1


def test_reveal_after_restart_uses_the_stored_answer(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rid = chain.assign([ADDR], redundancy=2)
    # first life: commit only (the reveal window is not open yet: the engine answers once)
    h1 = Harness(tmp_path, chain)
    run(h1.run_until(lambda: len(chain.sent_of(inf_tx.MsgCommitResult)) == 1, then=0.1))
    # the window opens while the worker is down
    chain.requests[rid].status = inf_types.REQUEST_STATUS_REVEAL
    h2 = Harness(tmp_path, chain, engine=FakeEngine(answer=lambda p: "a different answer"))

    def revealed() -> bool:
        return chain._assignment(chain.requests[rid], ADDR).status == inf_types.ASSIGNMENT_STATUS_DONE  # type: ignore[union-attr]

    run(h2.run_until(revealed))
    assert h2.engine.calls == []
    (r,) = chain.sent_of(inf_tx.MsgRevealResult)
    assert r.response == "echo: hello there"


def test_reveal_with_a_lost_answer_logs_and_sends_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chain = FakeChain()
    chain.register()
    rid = chain.assign([ADDR], redundancy=2)
    a = chain._assignment(chain.requests[rid], ADDR)
    assert a is not None
    a.status = inf_types.ASSIGNMENT_STATUS_COMMITTED
    a.commitment = b"\0" * 32
    chain.requests[rid].status = inf_types.REQUEST_STATUS_REVEAL
    h = Harness(tmp_path, chain)
    with caplog.at_level("ERROR", logger="polylink.worker"):
        run(
            h.run_until(
                lambda: h.metrics.value("polylink_worker_tasks_total", {"action": "reveal", "outcome": "lost"}) == 1,
                then=0.2,
            )
        )
    assert chain.sent_of(inf_tx.MsgRevealResult) == []
    assert h.engine.calls == []
    assert [r.getMessage() for r in caplog.records].count("task.lost_answer") == 1


# -- crash safety ------------------------------------------------------------------------


def _stored(tmp_path: Path, rid: int, response: str, *, salt: bytes = b"") -> WorkerState:
    st = WorkerState(make_config(tmp_path).worker.state_file, ADDR)
    with st:
        st.save_answer(rid, 0, MODEL, Answer(response, len(response.split()), 2, salt))
    return st


def test_restart_finds_the_recorded_tx_on_chain_and_sends_nothing(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rid = chain.assign([ADDR])
    # the first life broadcast its answer and died before seeing it land
    msg = inf_tx.MsgSubmitResult(worker=ADDR, request_id=rid, response="first answer", completion_tokens=2)
    chain.auto_block = False
    res = run(chain.send([msg], SIGNER))
    st = _stored(tmp_path, rid, "first answer")
    with st:
        st.mark_sending(rid, 0, Action.SUBMIT, chain.height)
        st.mark_broadcast(rid, 0, Action.SUBMIT, res.hash)
    chain.produce_block()
    chain.auto_block = True
    sent_before = len(chain.sent)
    # the node's task list lags behind its tx index: the task is still listed
    chain.stale_tasks = [inf_q.WorkerTask(request=chain.requests[rid], action="SUBMIT", deadline_height=99, attempt=0)]
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: "tx" in chain.calls, then=0.3))
    assert len(chain.sent) == sent_before  # nothing more sent
    assert h.engine.calls == []  # nothing generated
    with WorkerState(h.cfg.worker.state_file, ADDR) as s2:
        tx = s2.get(rid, 0).tx(Action.SUBMIT)  # type: ignore[union-attr]
        assert tx.state is TxState.CONFIRMED and tx.tx_hash == res.hash and tx.confirmed_height == chain.height


def test_restart_waits_for_a_pending_tx_then_it_lands(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rid = chain.assign([ADDR])
    msg = inf_tx.MsgSubmitResult(worker=ADDR, request_id=rid, response="first answer", completion_tokens=2)
    chain.auto_block = False
    res = run(chain.send([msg], SIGNER))  # in the mempool, not in a block
    st = _stored(tmp_path, rid, "first answer")
    with st:
        st.mark_sending(rid, 0, Action.SUBMIT, chain.height)
        st.mark_broadcast(rid, 0, Action.SUBMIT, res.hash)
    h = Harness(tmp_path, chain, resend_grace_blocks=3)

    polls = [0]

    def after_some_polls() -> bool:
        polls[0] += 1
        if polls[0] == 20:
            chain.produce_block()  # the original lands (height +1 < grace)
        return chain.requests[rid].status == inf_types.REQUEST_STATUS_COMPLETED

    run(h.run_until(after_some_polls, then=0.2))
    assert len(chain.sent_of(inf_tx.MsgSubmitResult)) == 1
    assert h.engine.calls == []


def test_restart_resends_the_same_answer_after_the_grace(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rid = chain.assign([ADDR])
    # the first life recorded its intent and died before the node accepted anything
    st = _stored(tmp_path, rid, "first answer")
    with st:
        st.mark_sending(rid, 0, Action.SUBMIT, chain.height)
    h = Harness(tmp_path, chain, resend_grace_blocks=2)

    async def scenario() -> None:
        # within the grace nothing is sent
        task = asyncio.create_task(h.run_until(lambda: False, timeout=0.4))
        with pytest.raises(AssertionError, match="not met"):
            await task
        assert chain.sent == []
        chain.height += 2
        h2 = Harness(tmp_path, chain, resend_grace_blocks=2)
        await h2.run_until(lambda: chain.requests[rid].status == inf_types.REQUEST_STATUS_COMPLETED)
        assert h2.engine.calls == []

    run(scenario())
    (msg,) = chain.sent_of(inf_tx.MsgSubmitResult)
    assert msg.response == "first answer"
    assert h.engine.calls == []


def test_a_generated_but_unsent_answer_is_reused(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rid = chain.assign([ADDR], redundancy=2)
    salt = b"\x07" * 32
    _stored(tmp_path, rid, "stored answer", salt=salt)
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: len(chain.sent_of(inf_tx.MsgCommitResult)) == 1, then=0.1))
    (c,) = chain.sent_of(inf_tx.MsgCommitResult)
    assert c.commitment == commitment("stored answer", salt, ADDR)
    assert h.engine.calls == []


# -- concurrency, shutdown, metrics ----------------------------------------------------------


def test_concurrency_is_never_exceeded(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rids = [chain.assign([ADDR], prompt=f"prompt {i}") for i in range(7)]
    engine = FakeEngine(delay=0.05)
    h = Harness(tmp_path, chain, engine=engine, concurrency=2)
    run(
        h.run_until(
            lambda: all(chain.requests[r].status == inf_types.REQUEST_STATUS_COMPLETED for r in rids), timeout=10
        )
    )
    assert engine.max_running == 2
    assert len(engine.calls) == 7
    assert len(chain.sent_of(inf_tx.MsgSubmitResult)) == 7


def test_stop_waits_for_inflight_generations(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rid = chain.assign([ADDR])
    engine = FakeEngine(delay=0.5)
    h = Harness(tmp_path, chain, engine=engine)
    run(h.run_until(lambda: engine.running == 1))
    # run() returned only after the generation finished and its result landed
    assert chain.requests[rid].status == inf_types.REQUEST_STATUS_COMPLETED
    assert h.metrics.value("polylink_worker_inflight") == 0


def test_stop_cancels_generations_that_outlast_the_shutdown_timeout(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rid = chain.assign([ADDR])
    engine = FakeEngine(delay=30.0)
    h = Harness(tmp_path, chain, engine=engine, shutdown_timeout_s=0.2)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await h.run_until(lambda: engine.running == 1)
        assert loop.time() - t0 < 3
        assert chain.sent_of(inf_tx.MsgSubmitResult) == []
        # the next life answers it
        h2 = Harness(tmp_path, chain)
        await h2.run_until(lambda: chain.requests[rid].status == inf_types.REQUEST_STATUS_COMPLETED)

    run(scenario())
    assert h.metrics.value("polylink_worker_inflight") == 0


def test_engine_failure_is_counted_and_retried(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rid = chain.assign([ADDR])
    failures = [2]

    def flaky(prompt: str) -> str:
        if failures[0] > 0:
            failures[0] -= 1
            raise EngineError("model crashed")
        return "fine"

    h = Harness(tmp_path, chain, engine=FakeEngine(answer=flaky))
    run(h.run_until(lambda: chain.requests[rid].status == inf_types.REQUEST_STATUS_COMPLETED))
    assert h.metrics.value("polylink_worker_errors_total", {"kind": "engine"}) == 2
    assert h.metrics.value("polylink_worker_tasks_total", {"action": "submit", "outcome": "error"}) == 2
    (msg,) = chain.sent_of(inf_tx.MsgSubmitResult)
    assert msg.response == "fine"


def test_metrics_move(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rids = [chain.assign([ADDR], prompt="a b c") for _ in range(3)]
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: all(chain.requests[r].status == inf_types.REQUEST_STATUS_COMPLETED for r in rids)))
    v = h.metrics.value
    assert v("polylink_worker_tasks_total", {"action": "submit", "outcome": "ok"}) == 3
    assert v("polylink_worker_tokens_total", {"kind": "prompt"}) == 9
    assert v("polylink_worker_tokens_total", {"kind": "completion"}) == 12
    assert v("polylink_worker_generation_seconds_count") == 3
    assert v("polylink_worker_task_seconds_count") == 3
    assert v("polylink_worker_inflight") == 0
    text = h.metrics.exposition().decode()
    for name in (
        "polylink_worker_tasks_total",
        "polylink_worker_tokens_total",
        "polylink_worker_generation_seconds_bucket",
        "polylink_worker_task_seconds_bucket",
        "polylink_worker_inflight",
    ):
        assert name in text


def test_failed_tx_is_counted_and_not_retried(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rid = chain.assign([ADDR])
    # the chain refuses the result in its block; the assignment stays open
    chain.fail_next = [("inference", 5, "no open assignment")]
    h = Harness(tmp_path, chain)
    failed = {"action": "submit", "outcome": "failed"}
    run(h.run_until(lambda: h.metrics.value("polylink_worker_tasks_total", failed) == 1, then=0.3))
    assert len(chain.sent_of(inf_tx.MsgSubmitResult)) == 1
    assert chain.requests[rid].status == inf_types.REQUEST_STATUS_ASSIGNED
    assert h.metrics.value("polylink_worker_errors_total", {"kind": "tx_failed"}) == 1


def test_out_of_gas_is_resent_with_more_gas(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.register()
    rid = chain.assign([ADDR])
    chain.fail_next = [("tx", 11, "out of gas")]
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: chain.requests[rid].status == inf_types.REQUEST_STATUS_COMPLETED))
    first, second = chain.sent_of(inf_tx.MsgSubmitResult)
    assert first == second
    assert chain.gas[-1] > chain.gas[-2]
    assert len(h.engine.calls) == 1
