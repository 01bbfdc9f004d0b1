"""The validator loop against an in-memory chain and a fake scorer.

`FakeChain` implements the methods of `chain.client.Client` the validator
uses (query, send, wait, status, rpc.tx, rpc.subscribe) over a tiny model of
staking, inference (results and requests) and tiqe: rounds with committees,
ValidatorTasks, commit and reveal with the real commitment rule, and a reveal
during the commit window refused (in CheckTx by default, or in its block).
Txs land in a block at once (`auto_block`) or wait until `produce_block()`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import types_pb2 as inf_types
from polylink.staking.v1 import query_pb2 as staking_q
from polylink.staking.v1 import types_pb2 as staking_types
from polylink.tiqe.v1 import query_pb2 as tiqe_q
from polylink.tiqe.v1 import tx_pb2 as tiqe_tx
from polylink.tiqe.v1 import types_pb2 as tiqe_types

from chain.client.errors import ChainQueryError, NodeUnreachableError, TxRejectedError, TxTimeoutError
from chain.client.results import BroadcastResult, NodeStatus, RpcEvent, TxResult
from chain.client.signer import Signer
from tests.unit.test_worker_service import FakeRPC
from validator.config import ValidatorConfig, parse_config
from validator.metrics import ValidatorMetrics
from validator.scoring.verdict import StageVerdict, Verdict, to_ppm
from validator.service import (
    PATH_RATING,
    PATH_RESULT,
    PATH_ROUND,
    PATH_STAKING_VALIDATOR,
    PATH_VALIDATOR_TASKS,
    Validator,
    ValidatorSetupError,
    commitment,
    event_log,
)
from validator.state import Action, Score, TxState, ValidatorState
from worker.service import PATH_REQUEST

SIGNER = Signer.from_hex("55" * 32)
OTHER = Signer.from_hex("66" * 32)
THIRD = Signer.from_hex("77" * 32)
ADDR = SIGNER.address
WORKER = "poly1worker"
MODEL = "m1"
LOGGER = "polylink.validator"


# -- fakes -------------------------------------------------------------------------


class FakeChain:
    """Just enough of staking, inference and tiqe, behind Client's method names."""

    def __init__(self) -> None:
        self.height = 10
        self.validators: dict[str, staking_types.Validator] = {}
        self.requests: dict[int, inf_types.Request] = {}
        self.inference_results: dict[int, inf_types.Result] = {}
        self.rounds: dict[int, tiqe_types.Round] = {}
        self.results: dict[str, TxResult] = {}  # tx results by hash (FakeRPC.tx reads them)
        self.sent: list[Message] = []
        self.mempool: list[tuple[str, list[Message]]] = []
        self.auto_block = True
        self.reject_next: list[tuple[str, int, str]] = []
        self.fail_next: list[tuple[str, int, str]] = []
        # a reveal while commits are open: refused by CheckTx (True) or in its block (False)
        self.refuse_early_reveal_in_check = True
        self.subs: list[tuple[str, asyncio.Queue[RpcEvent | None]]] = []
        self.subscribes: list[str] = []
        self.subscribe_failures = 0
        self.calls: list[str] = []
        self.stale_tasks: list[tiqe_q.ValidatorTask] = []
        self.commit_blocks = 10
        self.reveal_blocks = 10
        self._ids = itertools.count(1)
        self.rpc = FakeRPC(self)  # type: ignore[arg-type]

    # -- Client's surface --

    async def status(self) -> NodeStatus:
        return NodeStatus("test", "", "", self.height, "", "", False)

    async def query(self, path: str, request: Any, response_cls: Any, height: int = 0) -> Any:
        self.calls.append(path)
        if path == PATH_STAKING_VALIDATOR:
            if request.validator_address not in self.validators:
                raise ChainQueryError(path, "tx", 20, f"not found: validator {request.validator_address}")
            return staking_q.QueryValidatorResponse(validator=self.validators[request.validator_address])
        if path == PATH_VALIDATOR_TASKS:
            return tiqe_q.QueryValidatorTasksResponse(tasks=[*self.stale_tasks, *self.tasks_of(request.validator)])
        if path == PATH_ROUND:
            if request.result_id not in self.rounds:
                raise ChainQueryError(path, "tx", 20, f"not found: round {request.result_id}")
            return tiqe_q.QueryRoundResponse(round=self.rounds[request.result_id])
        if path == PATH_RESULT:
            if request.id not in self.inference_results:
                raise ChainQueryError(path, "tx", 20, f"not found: result {request.id}")
            return inf_q.QueryResultResponse(result=self.inference_results[request.id])
        if path == PATH_REQUEST:
            return inf_q.QueryRequestResponse(request=self.requests[request.id])
        if path == PATH_RATING:
            return tiqe_q.QueryRatingResponse(
                rating=tiqe_types.ValidatorRating(validator=request.validator, rating_ppm=500_000)
            )
        raise AssertionError(f"unexpected query {path}")

    async def send(self, msgs: Sequence[Message], key: Signer | str, *, gas: int = 200_000) -> BroadcastResult:
        if self.reject_next:
            codespace, code, log = self.reject_next.pop(0)
            raise TxRejectedError("", "check", codespace, code, log)
        for m in msgs:
            if self.refuse_early_reveal_in_check and isinstance(m, tiqe_tx.MsgRevealScore):
                rnd = self.rounds.get(m.result_id)
                if rnd is not None and rnd.phase == tiqe_types.ROUND_PHASE_COMMIT:
                    self.sent.append(m)
                    raise TxRejectedError("", "check", "tiqe", 6, "reveal while commits are still open")
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
                        codespace = "tiqe"
                        break
            self.results[txhash] = TxResult(txhash, self.height, code, codespace, log)

    def apply(self, m: Message) -> tuple[int, str]:
        if isinstance(m, tiqe_tx.MsgCommitScore):
            rnd = self.rounds.get(m.result_id)
            mem = self.member(m.result_id, m.validator)
            if rnd is None or mem is None:
                return 3, "not a committee member"
            if rnd.phase != tiqe_types.ROUND_PHASE_COMMIT:
                return 4, "commit window closed"
            if mem.commitment:
                return 5, "already committed"
            if len(m.commitment) != 32:
                return 2, "commitment must be 32 bytes"
            mem.commitment = m.commitment
            if all(x.commitment for x in rnd.members):
                rnd.commit_deadline_height = self.height
                self.open_reveal(m.result_id)
            return 0, ""
        if isinstance(m, tiqe_tx.MsgRevealScore):
            rnd = self.rounds.get(m.result_id)
            mem = self.member(m.result_id, m.validator)
            if rnd is None or mem is None:
                return 3, "not a committee member"
            if rnd.phase != tiqe_types.ROUND_PHASE_REVEAL:
                return 6, "reveal while commits are still open"
            if not mem.commitment or mem.revealed:
                return 7, "nothing to reveal"
            if m.quality_ppm > 1_000_000 or m.fidelity_ppm > 1_000_000:
                return 8, "score out of range"
            if commitment(m.quality_ppm, m.fidelity_ppm, m.salt, m.validator) != mem.commitment:
                return 9, "reveal does not open the commitment"
            mem.revealed = True
            mem.quality_ppm, mem.fidelity_ppm = m.quality_ppm, m.fidelity_ppm
            return 0, ""
        raise AssertionError(f"unexpected msg {type(m).__name__}")

    def bond(self, address: str = ADDR, *, status: int = staking_types.BONDED, jailed: bool = False) -> None:
        self.validators[address] = staking_types.Validator(
            operator_address=address, moniker="v", tokens="1000000", status=status, jailed=jailed
        )

    def open_round(
        self,
        members: Sequence[str],
        *,
        prompt: str = "what is two plus two",
        response: str = "four",
    ) -> int:
        rid = len(self.inference_results) + 1
        req_id = 100 + rid
        self.requests[req_id] = inf_types.Request(
            id=req_id, model_id=MODEL, prompt=prompt, status=inf_types.REQUEST_STATUS_SCORING
        )
        self.inference_results[rid] = inf_types.Result(id=rid, request_id=req_id, worker=WORKER, response=response)
        self.rounds[rid] = tiqe_types.Round(
            result_id=rid,
            request_id=req_id,
            worker=WORKER,
            model_id=MODEL,
            phase=tiqe_types.ROUND_PHASE_COMMIT,
            created_height=self.height,
            commit_deadline_height=self.height + self.commit_blocks,
            members=[tiqe_types.Member(validator=v) for v in members],
        )
        for v in members:
            self.emit("committee", v)
        return rid

    def open_reveal(self, rid: int) -> None:
        """The commit window closes (all committed, or its deadline): members that committed may reveal."""
        rnd = self.rounds[rid]
        rnd.phase = tiqe_types.ROUND_PHASE_REVEAL
        rnd.reveal_deadline_height = self.height + self.reveal_blocks
        for mem in rnd.members:
            if mem.commitment:
                self.emit("reveal", mem.validator)

    def member(self, rid: int, validator: str) -> tiqe_types.Member | None:
        rnd = self.rounds.get(rid)
        for mem in rnd.members if rnd is not None else []:
            if mem.validator == validator:
                return mem
        return None

    def commit_for(
        self, rid: int, signer: Signer, quality_ppm: int, fidelity_ppm: int = 1_000_000, salt: bytes = b"\x01" * 32
    ) -> None:
        c = commitment(quality_ppm, fidelity_ppm, salt, signer.address)
        assert self.apply(tiqe_tx.MsgCommitScore(validator=signer.address, result_id=rid, commitment=c)) == (0, "")

    def tasks_of(self, validator: str) -> list[tiqe_q.ValidatorTask]:
        out = []
        for rid, rnd in self.rounds.items():
            mem = self.member(rid, validator)
            if mem is None:
                continue
            action, deadline = "", 0
            if rnd.phase == tiqe_types.ROUND_PHASE_COMMIT and not mem.commitment:
                action, deadline = "COMMIT", rnd.commit_deadline_height
            elif rnd.phase == tiqe_types.ROUND_PHASE_REVEAL and mem.commitment and not mem.revealed:
                action, deadline = "REVEAL", rnd.reveal_deadline_height
            if action:
                out.append(
                    tiqe_q.ValidatorTask(
                        action=action,
                        result_id=rid,
                        request_id=rnd.request_id,
                        deadline_height=deadline,
                        worker=rnd.worker,
                        model_id=rnd.model_id,
                    )
                )
        return out

    def emit(self, kind: str, validator: str) -> None:
        for query, q in self.subs:
            if query == f"tiqe.{kind}.validator='{validator}'":
                q.put_nowait(RpcEvent(query, "tendermint/event/Tx", {}, {}))

    def sent_of(self, cls: type[Message]) -> list[Any]:
        return [m for m in self.sent if isinstance(m, cls)]


class FakeScorer:
    """Scores quality `fn(prompt, response)` and fidelity `fidelity(prompt, response)`; counts calls
    and the most scorings running at once."""

    def __init__(
        self,
        fn: Callable[[str, str], float] = lambda p, r: 0.75,
        delay: float = 0.0,
        fidelity: Callable[[str, str], float] = lambda p, r: 0.9,
    ) -> None:
        self.fn = fn
        self.fidelity = fidelity
        self.delay = delay
        self.calls: list[tuple[str, str]] = []
        self.capped: list[bool] = []
        self.prepared: list[str] = []
        self.running = 0
        self.max_running = 0

    async def __aenter__(self) -> FakeScorer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def prepare(self, prompt: str) -> None:
        self.prepared.append(prompt)

    async def score(self, prompt: str, response: str, *, capped: bool = False, temperature: float = 0.0) -> Verdict:
        self.calls.append((prompt, response))
        self.capped.append(capped)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        s = self.fn(prompt, response)
        stages = [
            StageVerdict("relevance", s, 2.0, {"cosine": s}),
            StageVerdict("quality", s, 1.0, {}),
        ]
        f = self.fidelity(prompt, response)
        return Verdict(score=s, stages=stages, used_judge=False, decided_by="quality", latency_ms=3.0, fidelity=f)


def make_config(tmp_path: Path, **validator: Any) -> ValidatorConfig:
    data = {
        "chain": {"key": "val0", "home": str(tmp_path)},
        "validator": {
            "state_dir": str(tmp_path / "state"),
            "poll_interval_s": 0.05,
            "shutdown_timeout_s": 5.0,
            "tx_timeout_s": 2.0,
            # the preparer's own subscription is tested on its own (below); these tests count subscriptions
            "prepare": False,
            **validator,
        },
    }
    return parse_config(data, base_dir=tmp_path, check_scoring=False)


class Harness:
    """A Validator over a FakeChain and a FakeScorer, with its state file open."""

    def __init__(
        self,
        tmp_path: Path,
        chain: FakeChain,
        scorer: FakeScorer | None = None,
        signer: Signer = SIGNER,
        rng: random.Random | None = None,
        **validator: Any,
    ) -> None:
        self.cfg = make_config(tmp_path, **validator)
        self.chain = chain
        self.scorer = scorer or FakeScorer()
        self.signer = signer
        self.rng = rng
        self.metrics = ValidatorMetrics()
        self.state = ValidatorState(self.cfg.validator.state_file, signer.address)

    async def run_until(self, cond: Callable[[], bool], timeout: float = 5.0, *, then: float = 0.0) -> Validator:
        """Run the validator until `cond()` holds (plus `then` seconds), then stop it and wait for it."""
        with self.state:
            v = Validator(
                self.cfg,
                self.chain,
                self.scorer,
                self.signer,
                self.state,
                metrics=self.metrics,
                log=event_log(),
                rng=self.rng,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(v.run(stop))
            loop = asyncio.get_running_loop()
            end = loop.time() + timeout
            while not cond():
                if task.done():
                    task.result()
                    raise AssertionError("validator stopped before the condition held")
                if loop.time() > end:
                    stop.set()
                    await task
                    raise AssertionError("condition not met in time")
                await asyncio.sleep(0.01)
            if then:
                await asyncio.sleep(then)
            stop.set()
            await asyncio.wait_for(task, 10)
            return v


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def committed(chain: FakeChain, rid: int, who: str = ADDR) -> bool:
    m = chain.member(rid, who)
    return m is not None and bool(m.commitment)


def revealed(chain: FakeChain, rid: int, who: str = ADDR) -> bool:
    m = chain.member(rid, who)
    return m is not None and m.revealed


def stored(tmp_path: Path, rid: int) -> Any:
    with ValidatorState(make_config(tmp_path).validator.state_file, ADDR) as st:
        return st.get(rid)


def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


# -- pure helpers ----------------------------------------------------------------------


def test_commitment_is_quality_then_fidelity_8_bytes_be_then_salt_then_address() -> None:
    salt = bytes(range(32))
    expect = hashlib.sha256(
        (700_001).to_bytes(8, "big") + (900_000).to_bytes(8, "big") + salt + ADDR.encode()
    ).digest()
    assert commitment(700_001, 900_000, salt, ADDR) == expect
    assert len(expect) == 32
    assert commitment(700_002, 900_000, salt, ADDR) != expect
    assert commitment(700_001, 900_001, salt, ADDR) != expect
    assert commitment(900_000, 700_001, salt, ADDR) != expect
    assert commitment(700_001, 900_000, bytes(32), ADDR) != expect
    assert commitment(700_001, 900_000, salt, OTHER.address) != expect


def test_commitment_matches_the_chain() -> None:
    from chain.modules.tiqe.keeper import score_commitment  # the test may look; the service may not

    salt = b"\x03" * 32
    assert commitment(1, 999_999, salt, ADDR) == score_commitment(1, 999_999, salt, ADDR)


# -- start-up ---------------------------------------------------------------------------


def test_a_key_that_operates_no_validator_refuses_to_start(tmp_path: Path) -> None:
    chain = FakeChain()
    h = Harness(tmp_path, chain)
    with pytest.raises(ValidatorSetupError, match="is not the operator of any validator"):
        run(h.run_until(lambda: False))
    assert chain.sent == []
    assert PATH_VALIDATOR_TASKS not in chain.calls


def test_an_unbonded_or_jailed_validator_warns_and_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chain = FakeChain()
    chain.bond(status=staking_types.UNBONDING, jailed=True)
    h = Harness(tmp_path, chain)
    with caplog.at_level("INFO", logger=LOGGER):
        run(h.run_until(lambda: PATH_VALIDATOR_TASKS in chain.calls))
    (rec,) = [r for r in caplog.records if r.getMessage() == "validator.not_bonded"]
    assert rec.levelname == "WARNING"


def test_byzantine_behaviour_without_allow_is_refused_by_the_service(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    bad = replace(cfg, validator=replace(cfg.validator, behaviour="zero"))
    with (
        ValidatorState(cfg.validator.state_file, ADDR) as st,
        pytest.raises(ValidatorSetupError, match="allow_byzantine"),
    ):
        Validator(bad, FakeChain(), FakeScorer(), SIGNER, st)  # type: ignore[arg-type]


def test_retries_while_the_node_is_unreachable(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    real_query = chain.query
    failures = [2]

    async def flaky(path: str, request: Any, response_cls: Any, height: int = 0) -> Any:
        if failures[0] > 0:
            failures[0] -= 1
            raise NodeUnreachableError("connection refused")
        return await real_query(path, request, response_cls, height)

    chain.query = flaky  # type: ignore[method-assign]
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: PATH_VALIDATOR_TASKS in chain.calls))
    assert h.metrics.value("polylink_validator_errors_total", {"kind": "node"}) == 2


# -- commit and reveal ------------------------------------------------------------------


def test_commit_then_reveal_opens_the_commitment(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([OTHER.address, ADDR], prompt="2+2?", response="4")
    chain.commit_for(rid, OTHER, 900_000)  # ours closes the commit window
    h = Harness(tmp_path, chain, scorer=FakeScorer(lambda p, r: 0.8123456, fidelity=lambda p, r: 0.3456784))
    run(h.run_until(lambda: revealed(chain, rid)))
    assert chain.subscribes[:2] == [f"tiqe.committee.validator='{ADDR}'", f"tiqe.reveal.validator='{ADDR}'"]
    (c,) = chain.sent_of(tiqe_tx.MsgCommitScore)
    (r,) = chain.sent_of(tiqe_tx.MsgRevealScore)
    assert (c.validator, c.result_id, r.validator, r.result_id) == (ADDR, rid, ADDR, rid)
    assert r.quality_ppm == to_ppm(0.8123456) == 812_346
    assert r.fidelity_ppm == to_ppm(0.3456784) == 345_678
    assert len(r.salt) == 32
    assert c.commitment == hashlib.sha256(
        r.quality_ppm.to_bytes(8, "big") + r.fidelity_ppm.to_bytes(8, "big") + r.salt + ADDR.encode()
    ).digest()
    assert h.scorer.calls == [("2+2?", "4")]
    rec = stored(tmp_path, rid)
    assert rec.request_id == chain.rounds[rid].request_id
    assert (rec.score.quality_ppm, rec.score.fidelity_ppm, rec.score.salt, rec.score.behaviour) == (
        r.quality_ppm, r.fidelity_ppm, r.salt, "honest"
    )  # fmt: skip
    verdict = json.loads(rec.score.verdict)
    assert (verdict["honest_quality_ppm"], verdict["honest_fidelity_ppm"]) == (812_346, 345_678)
    assert [s["name"] for s in verdict["stages"]] == ["relevance", "quality"]
    assert rec.tx(Action.COMMIT).ok and rec.tx(Action.REVEAL).ok
    assert h.metrics.value("polylink_validator_tasks_total", {"action": "commit", "outcome": "ok"}) == 1
    assert h.metrics.value("polylink_validator_tasks_total", {"action": "reveal", "outcome": "ok"}) == 1


def test_event_wakes_the_validator_without_polling(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    h = Harness(tmp_path, chain, poll_interval_s=60.0)
    rid: list[int] = []

    def seated() -> bool:
        if not rid and len(chain.subs) == 2:
            rid.append(chain.open_round([ADDR]))  # alone: its commit opens the reveal window
        return bool(rid) and revealed(chain, rid[0])

    run(h.run_until(seated, timeout=3.0))
    assert len(chain.sent_of(tiqe_tx.MsgCommitScore)) == 1
    assert len(chain.sent_of(tiqe_tx.MsgRevealScore)) == 1


def test_subscription_reconnects_after_failures(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    chain.subscribe_failures = 2
    h = Harness(tmp_path, chain, poll_interval_s=60.0)
    run(h.run_until(lambda: len(chain.subs) == 2, timeout=5.0))
    assert len(chain.subscribes) == 4
    assert h.metrics.value("polylink_validator_errors_total", {"kind": "subscribe"}) == 2


def test_reveal_after_restart_uses_the_stored_score_and_salt(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address])  # the other member never commits: the window stays open
    h1 = Harness(tmp_path, chain, scorer=FakeScorer(lambda p, r: 0.3))
    run(h1.run_until(lambda: committed(chain, rid), then=0.1))
    first = stored(tmp_path, rid).score
    # the commit deadline passes while the validator is down
    chain.open_reveal(rid)
    h2 = Harness(tmp_path, chain, scorer=FakeScorer(lambda p, r: 0.9, fidelity=lambda p, r: 0.1))
    run(h2.run_until(lambda: revealed(chain, rid)))
    assert h2.scorer.calls == []
    (r,) = chain.sent_of(tiqe_tx.MsgRevealScore)
    assert (r.quality_ppm, r.fidelity_ppm, r.salt) == (300_000, 900_000, first.salt)
    assert len(chain.sent_of(tiqe_tx.MsgCommitScore)) == 1


def test_a_stored_but_uncommitted_score_is_reused(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address])
    salt = b"\x07" * 32
    with ValidatorState(make_config(tmp_path).validator.state_file, ADDR) as st:
        st.save_score(rid, chain.rounds[rid].request_id, Score(123_456, 654_321, salt, "{}"))
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: committed(chain, rid), then=0.1))
    (c,) = chain.sent_of(tiqe_tx.MsgCommitScore)
    assert c.commitment == commitment(123_456, 654_321, salt, ADDR)
    assert h.scorer.calls == []


def test_a_confirmed_commit_is_never_sent_again(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address])
    h1 = Harness(tmp_path, chain)
    run(h1.run_until(lambda: committed(chain, rid), then=0.1))
    # a lagging node still lists the COMMIT task after the restart
    chain.stale_tasks = [tiqe_q.ValidatorTask(action="COMMIT", result_id=rid, request_id=chain.rounds[rid].request_id)]
    h2 = Harness(tmp_path, chain, scorer=FakeScorer(lambda p, r: 0.1))
    run(h2.run_until(lambda: chain.calls.count(PATH_VALIDATOR_TASKS) >= 5, then=0.1))
    assert len(chain.sent_of(tiqe_tx.MsgCommitScore)) == 1
    assert h2.scorer.calls == []


def test_restart_finds_the_recorded_tx_on_chain_and_sends_nothing(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address])
    salt = b"\x09" * 32
    # the first life broadcast its commit and died before seeing it land
    msg = tiqe_tx.MsgCommitScore(validator=ADDR, result_id=rid, commitment=commitment(600_000, 700_000, salt, ADDR))
    chain.auto_block = False
    res = run(chain.send([msg], SIGNER))
    with ValidatorState(make_config(tmp_path).validator.state_file, ADDR) as st:
        st.save_score(rid, chain.rounds[rid].request_id, Score(600_000, 700_000, salt, "{}"))
        st.mark_sending(rid, Action.COMMIT, chain.height)
        st.mark_broadcast(rid, Action.COMMIT, res.hash)
    chain.produce_block()
    chain.auto_block = True
    sent_before = len(chain.sent)
    # the node's task list lags behind its tx index: the task is still listed
    chain.stale_tasks = [tiqe_q.ValidatorTask(action="COMMIT", result_id=rid, request_id=chain.rounds[rid].request_id)]
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: "tx" in chain.calls, then=0.3))
    assert len(chain.sent) == sent_before
    assert h.scorer.calls == []
    tx = stored(tmp_path, rid).tx(Action.COMMIT)
    assert tx.state is TxState.CONFIRMED and tx.tx_hash == res.hash and tx.confirmed_height == chain.height


def test_restart_resends_the_same_commit_after_the_grace(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address])
    salt = b"\x0a" * 32
    # the first life recorded its intent and died before the node accepted anything
    with ValidatorState(make_config(tmp_path).validator.state_file, ADDR) as st:
        st.save_score(rid, chain.rounds[rid].request_id, Score(250_000, 950_000, salt, "{}"))
        st.mark_sending(rid, Action.COMMIT, chain.height)
    h = Harness(tmp_path, chain, resend_grace_blocks=2)

    async def scenario() -> None:
        with pytest.raises(AssertionError, match="not met"):
            await h.run_until(lambda: False, timeout=0.4)
        assert chain.sent == []  # within the grace nothing is sent
        chain.height += 2
        h2 = Harness(tmp_path, chain, resend_grace_blocks=2)
        await h2.run_until(lambda: committed(chain, rid))
        assert h2.scorer.calls == []

    run(scenario())
    (c,) = chain.sent_of(tiqe_tx.MsgCommitScore)
    assert c.commitment == commitment(250_000, 950_000, salt, ADDR)


def test_checktx_rejection_is_retried_on_the_next_poll(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    chain.reject_next = [("tx", 6, "insufficient funds to pay the fee")]
    rid = chain.open_round([ADDR, OTHER.address])
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: committed(chain, rid)))
    assert len(chain.sent_of(tiqe_tx.MsgCommitScore)) == 1
    assert len(h.scorer.calls) == 1  # the stored score is reused
    assert h.metrics.value("polylink_validator_tasks_total", {"action": "commit", "outcome": "rejected"}) == 1
    assert h.metrics.value("polylink_validator_tasks_total", {"action": "commit", "outcome": "ok"}) == 1


def test_reveal_with_a_lost_score_logs_once_and_sends_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR])
    chain.member(rid, ADDR).commitment = b"\0" * 32  # type: ignore[union-attr]
    chain.open_reveal(rid)
    h = Harness(tmp_path, chain)
    lost = {"action": "reveal", "outcome": "lost"}
    with caplog.at_level("ERROR", logger=LOGGER):
        run(h.run_until(lambda: h.metrics.value("polylink_validator_tasks_total", lost) == 1, then=0.2))
    assert chain.sent_of(tiqe_tx.MsgRevealScore) == []
    assert h.scorer.calls == []
    assert events(caplog).count("task.lost_score") == 1


def test_a_stored_score_that_does_not_open_the_round_commitment_is_not_revealed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR])
    # the round holds (1, 5): the stored score agrees on quality, not on fidelity
    chain.member(rid, ADDR).commitment = commitment(1, 5, b"\x02" * 32, ADDR)  # type: ignore[union-attr]
    chain.open_reveal(rid)
    with ValidatorState(make_config(tmp_path).validator.state_file, ADDR) as st:
        st.save_score(rid, 1, Score(1, 6, b"\x02" * 32))
    h = Harness(tmp_path, chain)
    with caplog.at_level("ERROR", logger=LOGGER):
        run(h.run_until(lambda: "task.commitment_mismatch" in events(caplog), then=0.2))
    assert chain.sent_of(tiqe_tx.MsgRevealScore) == []
    assert events(caplog).count("task.commitment_mismatch") == 1


def test_failed_commit_in_its_block_is_counted_and_not_retried(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address])
    chain.fail_next = [("tiqe", 4, "commit window closed")]
    h = Harness(tmp_path, chain)
    failed = {"action": "commit", "outcome": "failed"}
    run(h.run_until(lambda: h.metrics.value("polylink_validator_tasks_total", failed) == 1, then=0.3))
    assert len(chain.sent_of(tiqe_tx.MsgCommitScore)) == 1
    assert not committed(chain, rid)
    assert h.metrics.value("polylink_validator_errors_total", {"kind": "tx_failed"}) == 1


def test_scoring_failure_is_counted_and_retried(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address])
    failures = [2]

    def flaky(prompt: str, response: str) -> float:
        if failures[0] > 0:
            failures[0] -= 1
            raise RuntimeError("judge unreachable")
        return 0.5

    h = Harness(tmp_path, chain, scorer=FakeScorer(flaky))
    run(h.run_until(lambda: committed(chain, rid)))
    assert h.metrics.value("polylink_validator_errors_total", {"kind": "scoring"}) == 2
    assert h.metrics.value("polylink_validator_tasks_total", {"action": "commit", "outcome": "error"}) == 2
    assert stored(tmp_path, rid).score.quality_ppm == 500_000


def test_an_unknown_result_is_an_error_not_a_commit(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address])
    del chain.inference_results[rid]
    h = Harness(tmp_path, chain)
    err = {"action": "commit", "outcome": "error"}
    run(h.run_until(lambda: h.metrics.value("polylink_validator_tasks_total", err) >= 1))
    assert chain.sent == []
    assert h.metrics.value("polylink_validator_errors_total", {"kind": "chain"}) >= 1


# -- Byzantine behaviours -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "expect"),
    [
        ("zero", lambda rng: (0, 0)),
        ("max", lambda rng: (1_000_000, 1_000_000)),
        ("random", lambda rng: (rng.randrange(1_000_001), rng.randrange(1_000_001))),
    ],
)
def test_score_replacing_behaviours_replace_both_numbers(
    behaviour: str,
    expect: Callable[[random.Random], tuple[int, int]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR])
    h = Harness(
        tmp_path,
        chain,
        scorer=FakeScorer(lambda p, r: 0.6),
        rng=random.Random(7),
        behaviour=behaviour,
        allow_byzantine=True,
    )
    with caplog.at_level("WARNING", logger=LOGGER):
        run(h.run_until(lambda: revealed(chain, rid)))
    want = expect(random.Random(7))
    (r,) = chain.sent_of(tiqe_tx.MsgRevealScore)
    assert (r.quality_ppm, r.fidelity_ppm) == want
    rec = stored(tmp_path, rid)
    assert rec.score.behaviour == behaviour
    assert (rec.score.quality_ppm, rec.score.fidelity_ppm) == want
    verdict = json.loads(rec.score.verdict)
    assert (verdict["honest_quality_ppm"], verdict["honest_fidelity_ppm"]) == (600_000, 900_000)
    assert "byzantine.score" in events(caplog) and "validator.byzantine" in events(caplog)


def test_no_reveal_commits_and_never_reveals(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR])  # alone: its commit opens the reveal window at once
    h = Harness(tmp_path, chain, behaviour="no_reveal", allow_byzantine=True)
    withheld = {"action": "reveal", "outcome": "withheld"}
    with caplog.at_level("WARNING", logger=LOGGER):
        run(h.run_until(lambda: h.metrics.value("polylink_validator_tasks_total", withheld) == 1, then=0.3))
    assert committed(chain, rid)
    assert chain.rounds[rid].phase == tiqe_types.ROUND_PHASE_REVEAL
    assert chain.sent_of(tiqe_tx.MsgRevealScore) == []
    assert not revealed(chain, rid)
    assert events(caplog).count("task.withheld") == 1  # once, not on every poll
    # it scores honestly, it just never reveals
    assert (stored(tmp_path, rid).score.quality_ppm, stored(tmp_path, rid).score.fidelity_ppm) == (750_000, 900_000)


@pytest.mark.parametrize("in_check", [True, False])
def test_copy_tries_an_early_reveal_which_the_chain_refuses(
    in_check: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chain = FakeChain()
    chain.bond()
    chain.refuse_early_reveal_in_check = in_check
    rid = chain.open_round([ADDR, OTHER.address])
    h = Harness(tmp_path, chain, behaviour="copy", allow_byzantine=True)
    outcome = {"action": "early_reveal", "outcome": "rejected" if in_check else "failed"}
    with caplog.at_level("WARNING", logger=LOGGER):
        run(h.run_until(lambda: h.metrics.value("polylink_validator_tasks_total", outcome) == 1, then=0.2))
    names = events(caplog)
    assert "byzantine.copy.read_round" in names
    assert "byzantine.copy.nothing_to_copy" in names  # no score is readable while commits are open
    (refused,) = [r for r in caplog.records if r.getMessage() == "byzantine.copy.early_reveal_refused"]
    assert refused.polylink_fields["stage"] == ("check" if in_check else "deliver")  # type: ignore[attr-defined]
    assert refused.polylink_fields["phase"] == "ROUND_PHASE_COMMIT"  # type: ignore[attr-defined]
    assert not revealed(chain, rid)
    assert len(chain.sent_of(tiqe_tx.MsgRevealScore)) == 1  # tried once, not on every poll
    # once the window opens, its (honest) score is revealed as usual
    chain.open_reveal(rid)
    h2 = Harness(tmp_path, chain, behaviour="copy", allow_byzantine=True)
    run(h2.run_until(lambda: revealed(chain, rid)))
    mem = chain.member(rid, ADDR)
    assert mem is not None and (mem.quality_ppm, mem.fidelity_ppm) == (750_000, 900_000)


def test_copy_copies_scores_a_leaky_chain_shows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address, THIRD.address])
    for who, score, fid in ((OTHER, 100_000, 800_000), (THIRD, 300_000, 600_000)):
        chain.commit_for(rid, who, score, fid)
        mem = chain.member(rid, who.address)
        assert mem is not None
        # a chain bug: scores visible during COMMIT
        mem.revealed, mem.quality_ppm, mem.fidelity_ppm = True, score, fid
    h = Harness(tmp_path, chain, behaviour="copy", allow_byzantine=True)
    with caplog.at_level("WARNING", logger=LOGGER):
        run(h.run_until(lambda: committed(chain, rid), then=0.1))
    # median_low of what it saw, each number on its own
    assert (stored(tmp_path, rid).score.quality_ppm, stored(tmp_path, rid).score.fidelity_ppm) == (100_000, 600_000)
    assert "byzantine.copy.copied" in events(caplog)
    # every member committed, so the window closed: no early reveal is attempted
    assert "byzantine.copy.early_reveal_skipped" in events(caplog)


# -- concurrency, shutdown, metrics ---------------------------------------------------------


def test_concurrency_is_never_exceeded(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rids = [chain.open_round([ADDR], prompt=f"prompt {i}") for i in range(7)]
    scorer = FakeScorer(delay=0.05)
    h = Harness(tmp_path, chain, scorer=scorer, concurrency=2)
    run(h.run_until(lambda: all(revealed(chain, r) for r in rids), timeout=10))
    assert scorer.max_running == 2
    assert len(scorer.calls) == 7
    assert len(chain.sent_of(tiqe_tx.MsgCommitScore)) == 7
    assert len(chain.sent_of(tiqe_tx.MsgRevealScore)) == 7


def test_stop_waits_for_inflight_scoring(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address])
    scorer = FakeScorer(delay=0.5)
    h = Harness(tmp_path, chain, scorer=scorer)
    run(h.run_until(lambda: scorer.running == 1))
    # run() returned only after the scoring finished and its commit landed
    assert committed(chain, rid)
    assert h.metrics.value("polylink_validator_inflight") == 0


def test_stop_cancels_scoring_that_outlasts_the_shutdown_timeout(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address])
    scorer = FakeScorer(delay=30.0)
    h = Harness(tmp_path, chain, scorer=scorer, shutdown_timeout_s=0.2)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await h.run_until(lambda: scorer.running == 1)
        assert loop.time() - t0 < 3
        assert chain.sent == []
        h2 = Harness(tmp_path, chain)
        await h2.run_until(lambda: committed(chain, rid))

    run(scenario())
    assert h.metrics.value("polylink_validator_inflight") == 0


def test_metrics_move(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    rids = [chain.open_round([ADDR]) for _ in range(3)]
    h = Harness(tmp_path, chain, scorer=FakeScorer(lambda p, r: 0.45, fidelity=lambda p, r: 0.85))
    run(h.run_until(lambda: all(revealed(chain, r) for r in rids)))
    v = h.metrics.value
    assert v("polylink_validator_tasks_total", {"action": "commit", "outcome": "ok"}) == 3
    assert v("polylink_validator_tasks_total", {"action": "reveal", "outcome": "ok"}) == 3
    assert v("polylink_validator_scoring_seconds_count") == 3
    assert v("polylink_validator_stage_seconds_count", {"stage": "relevance"}) == 3
    assert v("polylink_validator_stage_seconds_sum", {"stage": "relevance"}) == pytest.approx(0.006)
    assert v("polylink_validator_scores_count") == 3
    assert v("polylink_validator_scores_sum") == 3 * 450_000
    assert v("polylink_validator_scores_bucket", {"le": "400000.0"}) == 0
    assert v("polylink_validator_scores_bucket", {"le": "500000.0"}) == 3
    assert v("polylink_validator_fidelities_count") == 3
    assert v("polylink_validator_fidelities_sum") == 3 * 850_000
    assert v("polylink_validator_fidelities_bucket", {"le": "800000.0"}) == 0
    assert v("polylink_validator_inflight") == 0
    text = h.metrics.exposition().decode()
    for name in (
        "polylink_validator_tasks_total",
        "polylink_validator_scoring_seconds_bucket",
        "polylink_validator_stage_seconds_bucket",
        "polylink_validator_scores_bucket",
        "polylink_validator_fidelities_bucket",
        "polylink_validator_errors_total",
        "polylink_validator_inflight",
    ):
        assert name in text


# -- capped answers and preparation -------------------------------------------------------


def test_an_answer_that_used_all_its_max_tokens_is_scored_as_capped(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    full = chain.open_round([ADDR], prompt="tell a story", response="Once upon a time there was a")
    short = chain.open_round([ADDR], prompt="2+2?", response="4.")
    for rid, tokens in ((full, 32), (short, 2)):
        req = chain.requests[chain.inference_results[rid].request_id]
        req.max_tokens = 32
        chain.inference_results[rid].completion_tokens = tokens
    h = Harness(tmp_path, chain)
    run(h.run_until(lambda: revealed(chain, full) and revealed(chain, short)))
    by_prompt = dict(zip((p for p, _ in h.scorer.calls), h.scorer.capped, strict=True))
    assert by_prompt == {"tell a story": True, "2+2?": False}


def test_the_preparer_prepares_new_requests_while_they_wait_for_answers(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    chain.requests[7] = inf_types.Request(id=7, prompt="open one", status=inf_types.REQUEST_STATUS_ASSIGNED)
    chain.requests[8] = inf_types.Request(id=8, prompt="closed one", status=inf_types.REQUEST_STATUS_COMPLETED)
    h = Harness(tmp_path, chain, prepare=True, poll_interval_s=60.0)
    sent: list[bool] = []

    def prepared() -> bool:
        queues = [q for query, q in chain.subs if query == "inference.requested.request_id EXISTS"]
        if queues and not sent:
            # one tx with both requests, then the first again: prepared once, the closed one never
            ids = {"inference.requested.request_id": ["7", "8"]}
            queues[0].put_nowait(RpcEvent("q", "tendermint/event/Tx", {}, ids))
            queues[0].put_nowait(RpcEvent("q", "tendermint/event/Tx", {}, {"inference.requested.request_id": ["7"]}))
            sent.append(True)
        return h.scorer.prepared == ["open one"]

    run(h.run_until(prepared, timeout=5.0, then=0.2))
    assert h.scorer.prepared == ["open one"]


def test_byzantine_scorers_do_not_prepare(tmp_path: Path) -> None:
    chain = FakeChain()
    chain.bond()
    h = Harness(tmp_path, chain, prepare=True, behaviour="zero", allow_byzantine=True, poll_interval_s=60.0)
    run(h.run_until(lambda: len(chain.subs) >= 2, timeout=3.0, then=0.2))
    assert "inference.requested.request_id EXISTS" not in chain.subscribes
