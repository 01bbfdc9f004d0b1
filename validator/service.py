"""The validator's scorer loop: score the answers its committee seats ask for, commit, then reveal.

`Validator(config, client, scorer, signer, state).run(stop_event)`:

1. Prepare (retrying while the node is unreachable): the key must be a
   validator's operator (staking `Validator` query); one that is not bonded
   or is jailed gets a warning and keeps running, since it may still owe
   reveals for seats it had, and gets seats again once bonded.
2. Watch: two websocket subscriptions (`tiqe.committee.validator='ADDR'`,
   `tiqe.reveal.validator='ADDR'`), reconnected with bounded backoff. An
   event, a (re)connect and every `poll_interval_s` wake the dispatcher,
   which reads `ValidatorTasks` (what this validator owes now) and starts a
   handler for each result not already being handled.
3. Score and commit: COMMIT -> fetch the answer (inference `Result`) and its
   prompt (`Request`) -> score (the pipeline, holding one of `concurrency`
   slots; two numbers: the verdict's quality and fidelity) -> fresh 32-byte
   salt -> store both numbers + salt (fsync) -> MsgCommitScore(sha256(
   quality_ppm (8 bytes BE) || fidelity_ppm (8 bytes BE) || salt ||
   utf8(address))). REVEAL -> MsgRevealScore (both numbers and the salt) from
   the store, after checking they open the commitment the round holds.

Crash safety is the worker's (`worker.service`): score and intent are on
disk before anything is broadcast; a recorded tx is looked up by hash before
anything is resent, and the same content is resent only after
`resend_grace_blocks` without it landing. A stored score is never replaced,
so a restarted validator reveals exactly what it committed to.

Byzantine behaviours (`[validator] behaviour`, tests only), each applied to
both numbers: "zero" (quality 0, fidelity 0), "max" (10^6, 10^6) and
"random" (each drawn uniformly) replace the pipeline's; "no_reveal" commits
and never reveals; "copy" reads the round for other members' revealed scores
to copy (the median of each number; there are none while commits are open)
and then tries to reveal during the commit window, which the chain must
refuse; what happened is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from polylink.inference.v1 import query_pb2 as inf_q
from polylink.staking.v1 import query_pb2 as staking_q
from polylink.staking.v1 import types_pb2 as staking_types
from polylink.tiqe.v1 import query_pb2 as tiqe_q
from polylink.tiqe.v1 import tx_pb2 as tiqe_tx
from polylink.tiqe.v1 import types_pb2 as tiqe_types

from chain.client.errors import (
    ChainQueryError,
    ClientError,
    NodeUnreachableError,
    TxRejectedError,
    TxTimeoutError,
)
from chain.client.results import TxResult
from chain.client.signer import Signer
from validator.config import HONEST, ValidatorConfig
from validator.errors import ValidatorSetupError
from validator.metrics import ValidatorMetrics
from validator.prepare import Preparer
from validator.scorer import Scorer, Verdict, verdict_json
from validator.state import Action, Score, ScoreRecord, TxRecord, TxState, ValidatorState
from worker.logs import EventLog
from worker.service import (
    BACKOFF_MAX_S,
    BACKOFF_MIN_S,
    CATCH_UP_DELAY_S,
    MAX_SENDS,
    OUT_OF_GAS,
    PATH_REQUEST,
    SALT_BYTES,
    ChainClient,
    ChainRPC,
    _until,
    is_not_found,
)

PATH_VALIDATOR_TASKS = "/polylink.tiqe.v1.Query/ValidatorTasks"
PATH_ROUND = "/polylink.tiqe.v1.Query/Round"
PATH_RATING = "/polylink.tiqe.v1.Query/Rating"
PATH_RESULT = "/polylink.inference.v1.Query/Result"
PATH_STAKING_VALIDATOR = "/polylink.staking.v1.Query/Validator"

LOGGER_NAME = "polylink.validator"
PPM = 1_000_000
GAS_BASE = 200_000
GAS_PER_BYTE = 80

__all__ = [
    "LOGGER_NAME",
    "PATH_RATING",
    "PATH_RESULT",
    "PATH_ROUND",
    "PATH_STAKING_VALIDATOR",
    "PATH_VALIDATOR_TASKS",
    "ChainClient",
    "ChainRPC",
    "Validator",
    "ValidatorSetupError",
    "commitment",
    "event_log",
    "query_validator",
]


class _Stopping(Exception):
    """A queued scoring found the validator stopping: it is not started."""


class _ScoringFailed(Exception):
    """The scoring pipeline raised (counted as errors_total{kind="scoring"})."""


@dataclass(frozen=True)
class _Pair:
    """The two numbers of one score (ppm)."""

    quality_ppm: int
    fidelity_ppm: int


def _reveal_msg(validator: str, result_id: int, score: Score) -> tiqe_tx.MsgRevealScore:
    """The reveal of a stored score: both numbers and the salt it was committed with."""
    return tiqe_tx.MsgRevealScore(
        validator=validator,
        result_id=result_id,
        quality_ppm=score.quality_ppm,
        fidelity_ppm=score.fidelity_ppm,
        salt=score.salt,
    )


@dataclass(frozen=True)
class _Task:
    """One ValidatorTask, decoded."""

    action: Action
    result_id: int
    request_id: int
    deadline_height: int


def commitment(quality_ppm: int, fidelity_ppm: int, salt: bytes, validator: str) -> bytes:
    """The commit-reveal commitment: sha256(quality_ppm as 8-byte big-endian || fidelity_ppm as
    8-byte big-endian || salt || utf8(validator)) (the chain's `score_commitment`; the validator
    reaches the chain only through `chain.client`, so it keeps its own copy)."""
    return hashlib.sha256(
        quality_ppm.to_bytes(8, "big") + fidelity_ppm.to_bytes(8, "big") + salt + validator.encode()
    ).digest()


def event_log() -> EventLog:
    """The validator's structured log (the worker's JSON-lines format, logger `polylink.validator`)."""
    return EventLog(logging.getLogger(LOGGER_NAME))


async def query_validator(client: ChainClient, address: str) -> staking_types.Validator | None:
    """The staking record of the validator operated by `address`, or None when there is none."""
    try:
        r = await client.query(
            PATH_STAKING_VALIDATOR,
            staking_q.QueryValidatorRequest(validator_address=address),
            staking_q.QueryValidatorResponse,
        )
    except ChainQueryError as e:
        if is_not_found(e):
            return None
        raise
    return r.validator if r.validator.operator_address else None


def bond_status_name(status: int) -> str:
    v = staking_types.BondStatus.DESCRIPTOR.values_by_number.get(status)
    return str(v.name) if v is not None else str(status)


def phase_name(phase: int) -> str:
    v = tiqe_types.RoundPhase.DESCRIPTOR.values_by_number.get(phase)
    return str(v.name) if v is not None else str(phase)


def _error_kind(e: Exception) -> str:
    if isinstance(e, _ScoringFailed):
        return "scoring"
    if isinstance(e, NodeUnreachableError | OSError):
        return "node"
    if isinstance(e, ClientError):
        return "chain"
    return "internal"


class Validator:
    """One validator operator scoring its committee seats until `stop_event` is set."""

    def __init__(
        self,
        config: ValidatorConfig,
        client: ChainClient,
        scorer: Scorer,
        signer: Signer,
        state: ValidatorState,
        *,
        metrics: ValidatorMetrics | None = None,
        log: EventLog | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.cfg = config.validator
        if self.cfg.byzantine and not self.cfg.allow_byzantine:
            raise ValidatorSetupError(
                f"behaviour {self.cfg.behaviour!r} is for the adversarial tests only (set allow_byzantine = true)"
            )
        self.client = client
        self.scorer = scorer
        self.signer = signer
        self.address = signer.address
        self.state = state
        self.metrics = metrics if metrics is not None else ValidatorMetrics()
        self.log = log if log is not None else event_log()
        self.rng = rng if rng is not None else random.Random()
        self._slots = asyncio.Semaphore(self.cfg.concurrency)
        self._wake = asyncio.Event()
        self._inflight: set[int] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._reported: set[tuple[int, Action, str]] = set()
        self._early_revealed: set[int] = set()
        self._stopping = False

    @property
    def behaviour(self) -> str:
        return self.cfg.behaviour

    @property
    def queries(self) -> tuple[str, str]:
        """The websocket subscriptions: this validator's committee seats and reveal windows."""
        return (
            f"tiqe.committee.validator='{self.address}'",
            f"tiqe.reveal.validator='{self.address}'",
        )

    # -- lifecycle ---------------------------------------------------------------

    async def run(self, stop_event: asyncio.Event) -> None:
        """Score until `stop_event` is set; then stop taking tasks, let in-flight ones finish
        (up to `shutdown_timeout_s`), and return. Raises ValidatorSetupError if it cannot start."""
        prepared = await _until(self.prepare(), stop_event)
        if not prepared:
            self.log.info("validator.stopped", reason="stopped before start")
            return
        self.log.info("validator.scoring", address=self.address, behaviour=self.behaviour)
        if self.cfg.byzantine:
            self.log.warning("validator.byzantine", behaviour=self.behaviour, hint="adversarial test mode")
        loops = [asyncio.create_task(self._subscribe_loop(q), name=f"subscribe {q}") for q in self.queries]
        loops.append(asyncio.create_task(self._dispatch_loop(), name="dispatch"))
        if self.cfg.prepare and not self.cfg.byzantine:
            preparer = Preparer(self.client, self.scorer, self.log)
            loops.append(asyncio.create_task(preparer.run(), name="prepare"))
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
        self.log.info("validator.stopped", reason="stop requested")

    async def _drain(self, timeout: float) -> None:
        """Let in-flight handlers finish for up to `timeout` s, then cancel the rest (their state is on disk)."""
        if not self._handlers:
            return
        pending = set(self._handlers)
        self.log.info("validator.draining", inflight=len(pending), timeout_s=timeout)
        still = pending
        if timeout > 0:
            _, still = await asyncio.wait(pending, timeout=timeout)
        for t in still:
            t.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
            self.log.warning("validator.drain_timeout", cancelled=len(still))

    # -- preparation -------------------------------------------------------------

    async def prepare(self) -> None:
        """Check the key operates a validator; retried while the node is unreachable."""
        await self._retry_unreachable("prepare", self.check_validator)

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

    async def check_validator(self) -> None:
        """The key must be a validator's operator; not bonded or jailed is a warning (reveals may be owed)."""
        v = await query_validator(self.client, self.address)
        if v is None:
            raise ValidatorSetupError(
                f"{self.address} (the [chain] key) is not the operator of any validator: TIQE committees are "
                "drawn from bonded validators; use the key that created the validator "
                "(`polylink tx staking create-validator`), or create one with it"
            )
        status = bond_status_name(v.status)
        if v.status != staking_types.BONDED or v.jailed:
            self.log.warning(
                "validator.not_bonded",
                address=self.address,
                status=status,
                jailed=v.jailed,
                hint="no new committee seats until it is bonded and not jailed; reveals still owed are sent",
            )
        else:
            self.log.info("validator.bonded", address=self.address, moniker=v.moniker, tokens=v.tokens)

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
            except Exception as e:  # one bad poll must not end the validator
                self.metrics.errors.labels(kind="poll").inc()
                self.log.error("poll.error", error=repr(e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.poll_interval_s)

    async def poll(self) -> int:
        """Read ValidatorTasks once and start a handler for each result not in flight; returns how many started."""
        if self._stopping:
            return 0
        try:
            resp = await self.client.query(
                PATH_VALIDATOR_TASKS,
                tiqe_q.QueryValidatorTasksRequest(validator=self.address),
                tiqe_q.QueryValidatorTasksResponse,
            )
        except (ClientError, OSError) as e:
            self.metrics.errors.labels(kind="node" if isinstance(e, NodeUnreachableError) else "query").inc()
            self.log.warning("poll.failed", error=str(e))
            return 0
        started = 0
        for raw in sorted(resp.tasks, key=lambda t: (t.deadline_height, t.result_id)):
            task = self._decode(raw)
            if task is None or task.result_id in self._inflight:
                continue
            self._inflight.add(task.result_id)
            h = asyncio.create_task(self._handle(task), name=f"result {task.result_id} {task.action}")
            self._handlers.add(h)
            h.add_done_callback(self._handlers.discard)
            started += 1
        return started

    def _decode(self, raw: tiqe_q.ValidatorTask) -> _Task | None:
        try:
            action = Action(raw.action.lower())
        except ValueError:
            self._report_once(raw.result_id, Action.COMMIT, "bad_action", chain_action=raw.action)
            return None
        return _Task(action, raw.result_id, raw.request_id, raw.deadline_height)

    def _report_once(self, rid: int, action: Action, what: str, *, level: str = "error", **fields: Any) -> bool:
        """Log a problem with a task once per process, not on every poll; True the first time."""
        key = (rid, action, what)
        if key in self._reported:
            return False
        self._reported.add(key)
        if level == "error":
            self.metrics.errors.labels(kind=what).inc()
            self.log.error(f"task.{what}", result_id=rid, action=str(action), **fields)
        else:
            self.log.warning(f"task.{what}", result_id=rid, action=str(action), **fields)
        return True

    # -- handling ----------------------------------------------------------------

    async def _handle(self, task: _Task) -> None:
        self.metrics.inflight.inc()
        try:
            if task.action is Action.REVEAL:
                await self._reveal(task)
            else:
                await self._commit(task)
        except _Stopping:
            self.log.info("task.deferred", result_id=task.result_id, action=str(task.action), reason="stopping")
        except Exception as e:
            kind = _error_kind(e)
            self.metrics.errors.labels(kind=kind).inc()
            self.metrics.tasks.labels(action=str(task.action), outcome="error").inc()
            cause = e.__cause__ if isinstance(e, _ScoringFailed) and e.__cause__ is not None else e
            self.log.error(
                "task.error", result_id=task.result_id, action=str(task.action), kind=kind, error=repr(cause)
            )
        finally:
            self.metrics.inflight.dec()
            self._inflight.discard(task.result_id)

    async def _commit(self, task: _Task) -> None:
        """COMMIT: reuse or compute the score, then commit to it (once)."""
        rid = task.result_id
        rec = self.state.get(rid)
        if await self._should_send(task, rec):
            score = rec.score if rec is not None and rec.score is not None else None
            if score is None:
                score = await self._score(task)
            if len(score.salt) != SALT_BYTES:
                self._report_once(rid, task.action, "bad_salt", salt_len=len(score.salt))
                return
            msg = tiqe_tx.MsgCommitScore(
                validator=self.address,
                result_id=rid,
                commitment=commitment(score.quality_ppm, score.fidelity_ppm, score.salt, self.address),
            )
            await self._send(task, msg, rec)
        if self.behaviour == "copy":
            await self._early_reveal(task)

    async def _reveal(self, task: _Task) -> None:
        """REVEAL: open the stored commitment (once), unless this is the "no_reveal" Byzantine mode."""
        rid = task.result_id
        if self.behaviour == "no_reveal":
            if self._report_once(rid, Action.REVEAL, "withheld", level="warning", behaviour=self.behaviour):
                self.metrics.tasks.labels(action="reveal", outcome="withheld").inc()
            return
        rec = self.state.get(rid)
        score = rec.score if rec is not None else None
        if score is None or len(score.salt) != SALT_BYTES:
            if self._report_once(
                rid,
                Action.REVEAL,
                "lost_score",
                hint="the committed score or salt is not in the state file: this round will count as a no-reveal",
            ):
                self.metrics.tasks.labels(action="reveal", outcome="lost").inc()
            return
        if not await self._should_send(task, rec):
            return
        onchain = await self._my_commitment(rid)
        if onchain is not None and onchain != commitment(
            score.quality_ppm, score.fidelity_ppm, score.salt, self.address
        ):
            self._report_once(
                rid,
                Action.REVEAL,
                "commitment_mismatch",
                hint="the stored score does not open the round's commitment; not revealing",
            )
            return
        await self._send(task, _reveal_msg(self.address, rid, score), rec)

    async def _round(self, rid: int) -> tiqe_types.Round | None:
        try:
            r = await self.client.query(PATH_ROUND, tiqe_q.QueryRoundRequest(result_id=rid), tiqe_q.QueryRoundResponse)
        except ChainQueryError as e:
            if is_not_found(e):
                return None
            raise
        return r.round if r.HasField("round") else None

    async def _my_commitment(self, rid: int) -> bytes | None:
        """This validator's commitment in the round (None when the round cannot be read or holds none)."""
        try:
            rnd = await self._round(rid)
        except (ClientError, OSError) as e:
            self.log.debug("round.unreadable", result_id=rid, error=str(e))
            return None
        if rnd is None:
            return None
        for m in rnd.members:
            if m.validator == self.address and m.commitment:
                return bytes(m.commitment)
        return None

    # -- scoring -----------------------------------------------------------------

    async def _score(self, task: _Task) -> Score:
        """Fetch the answer and its prompt, score it (holding a slot), apply the behaviour, store it."""
        rid = task.result_id
        res = await self.client.query(PATH_RESULT, inf_q.QueryResultRequest(id=rid), inf_q.QueryResultResponse)
        result = res.result
        request_id = result.request_id or task.request_id
        req = await self.client.query(
            PATH_REQUEST, inf_q.QueryRequestRequest(id=request_id), inf_q.QueryRequestResponse
        )
        prompt = req.request.prompt
        async with self._slots:
            if self._stopping:  # queued behind the slots when the stop came: leave it for the next run
                raise _Stopping()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            try:
                capped = req.request.max_tokens > 0 and result.completion_tokens >= req.request.max_tokens
                temperature = req.request.sampling.temperature_ppm / PPM
                verdict = await self.scorer.score(prompt, result.response, capped=capped, temperature=temperature)
            except Exception as e:
                raise _ScoringFailed(str(e)) from e
            seconds = loop.time() - t0
        self.metrics.scoring_seconds.observe(seconds)
        for s in verdict.stages:
            self.metrics.stage_seconds.labels(stage=s.name).observe(max(0.0, float(s.latency_ms)) / 1000)
        honest = _Pair(verdict.quality_ppm, verdict.fidelity_ppm)
        sent = await self._apply_behaviour(task, honest)
        fresh = Score(
            quality_ppm=sent.quality_ppm,
            fidelity_ppm=sent.fidelity_ppm,
            salt=os.urandom(SALT_BYTES),
            verdict=verdict_json(
                verdict, honest_quality_ppm=honest.quality_ppm, honest_fidelity_ppm=honest.fidelity_ppm
            ),
            behaviour=self.behaviour,
        )
        stored = self.state.save_score(rid, request_id, fresh)
        self.metrics.scores.observe(stored.quality_ppm)
        self.metrics.fidelities.observe(stored.fidelity_ppm)
        self._log_verdict(task, verdict, stored, honest, seconds)
        return stored

    def _log_verdict(self, task: _Task, verdict: Verdict, stored: Score, honest: _Pair, seconds: float) -> None:
        self.log.info(
            "score.done",
            result_id=task.result_id,
            quality_ppm=stored.quality_ppm,
            fidelity_ppm=stored.fidelity_ppm,
            honest_quality_ppm=honest.quality_ppm,
            honest_fidelity_ppm=honest.fidelity_ppm,
            used_judge=verdict.used_judge,
            decided_by=verdict.decided_by,
            seconds=round(seconds, 3),
            stages={s.name: round(float(s.score), 4) for s in verdict.stages},
        )
        for s in verdict.stages:
            self.log.debug(
                "score.stage",
                result_id=task.result_id,
                stage=s.name,
                score=s.score,
                latency_ms=s.latency_ms,
                detail=s.detail,
            )

    async def _apply_behaviour(self, task: _Task, honest: _Pair) -> _Pair:
        """The two numbers to commit: the pipeline's, or what a Byzantine mode puts in their place
        (each mode acts on both: "zero" sends quality 0 and fidelity 0)."""
        b = self.behaviour
        if b in (HONEST, "no_reveal"):
            return honest
        if b == "zero":
            out = _Pair(0, 0)
        elif b == "max":
            out = _Pair(PPM, PPM)
        elif b == "random":
            out = _Pair(self.rng.randrange(PPM + 1), self.rng.randrange(PPM + 1))
        else:  # copy
            out = await self._copy_score(task, honest)
        self.log.warning(
            "byzantine.score",
            result_id=task.result_id,
            behaviour=b,
            honest_quality_ppm=honest.quality_ppm,
            honest_fidelity_ppm=honest.fidelity_ppm,
            quality_ppm=out.quality_ppm,
            fidelity_ppm=out.fidelity_ppm,
        )
        return out

    async def _copy_score(self, task: _Task, honest: _Pair) -> _Pair:
        """"copy": the medians of other members' revealed qualities and fidelities, when the round
        shows any (it must not)."""
        rid = task.result_id
        try:
            rnd = await self._round(rid)
        except (ClientError, OSError) as e:
            self.log.warning("byzantine.copy.round_unreadable", result_id=rid, error=str(e))
            return honest
        if rnd is None:
            self.log.warning("byzantine.copy.no_round", result_id=rid)
            return honest
        others = [m for m in rnd.members if m.validator != self.address]
        seen = [_Pair(m.quality_ppm, m.fidelity_ppm) for m in others if m.revealed]
        self.log.warning(
            "byzantine.copy.read_round",
            result_id=rid,
            phase=phase_name(rnd.phase),
            others=len(others),
            others_committed=sum(1 for m in others if m.commitment),
            others_revealed=len(seen),
        )
        if not seen:
            self.log.warning(
                "byzantine.copy.nothing_to_copy",
                result_id=rid,
                hint="no other member's score is readable during COMMIT; committing the pipeline's score",
            )
            return honest
        copied = _Pair(
            int(statistics.median_low(x.quality_ppm for x in seen)),
            int(statistics.median_low(x.fidelity_ppm for x in seen)),
        )
        self.log.error(
            "byzantine.copy.copied",
            result_id=rid,
            quality_ppm=copied.quality_ppm,
            fidelity_ppm=copied.fidelity_ppm,
            from_scores=[(x.quality_ppm, x.fidelity_ppm) for x in seen],
        )
        return copied

    async def _early_reveal(self, task: _Task) -> None:
        """"copy": try to reveal while commits are still open; the chain must refuse it. Once per result.

        Skipped when the round already left COMMIT (every member committed: revealing now is
        allowed, and the REVEAL task does it). Nothing is recorded in the state file: this is
        not the round's reveal, and a refused one changes nothing on chain."""
        rid = task.result_id
        if rid in self._early_revealed:
            return
        rec = self.state.get(rid)
        if rec is None or rec.score is None or not rec.tx(Action.COMMIT).ok:
            return  # nothing committed (yet): nothing to reveal
        self._early_revealed.add(rid)
        rnd = await self._round(rid)
        phase = phase_name(rnd.phase) if rnd is not None else "unknown"
        if rnd is not None and rnd.phase != tiqe_types.ROUND_PHASE_COMMIT:
            self.log.warning("byzantine.copy.early_reveal_skipped", result_id=rid, phase=phase)
            return
        score = rec.score
        msg = _reveal_msg(self.address, rid, score)
        height = (await self.client.status()).latest_height
        what: dict[str, Any] = {
            "result_id": rid,
            "phase": phase,
            "height": height,
            "commit_deadline_height": rnd.commit_deadline_height if rnd is not None else task.deadline_height,
            "quality_ppm": score.quality_ppm,
            "fidelity_ppm": score.fidelity_ppm,
        }
        self.log.warning("byzantine.copy.early_reveal", **what)
        try:
            res = await self.client.send([msg], self.signer, gas=_gas(msg))
        except TxRejectedError as e:
            self.metrics.tasks.labels(action="early_reveal", outcome="rejected").inc()
            self.log.warning(
                "byzantine.copy.early_reveal_refused",
                stage=e.stage,
                codespace=e.codespace,
                code=e.code,
                log=e.log,
                **what,
            )
            return
        try:
            result = await self.client.wait(res.hash, self.cfg.tx_timeout_s)
        except TxTimeoutError:
            self.metrics.tasks.labels(action="early_reveal", outcome="pending").inc()
            self.log.warning("byzantine.copy.early_reveal_pending", tx_hash=res.hash, **what)
            return
        if not result.ok:
            self.metrics.tasks.labels(action="early_reveal", outcome="failed").inc()
            self.log.warning(
                "byzantine.copy.early_reveal_refused",
                stage="deliver",
                tx_hash=res.hash,
                tx_height=result.height,
                codespace=result.codespace,
                code=result.code,
                log=result.log,
                **what,
            )
            return
        self.metrics.tasks.labels(action="early_reveal", outcome="ok").inc()
        after = await self._round(rid)
        if after is not None and 0 < after.commit_deadline_height < result.height:
            # the last commit closed the window before this tx's block: an ordinary reveal
            self.log.warning(
                "byzantine.copy.early_reveal_too_late",
                tx_hash=res.hash,
                tx_height=result.height,
                window_closed_at=after.commit_deadline_height,
                **what,
            )
        else:
            self.log.error(
                "byzantine.copy.early_reveal_accepted",
                tx_hash=res.hash,
                tx_height=result.height,
                hint="the chain accepted a reveal while commits were open: a chain bug",
                **what,
            )

    # -- sending -----------------------------------------------------------------

    async def _should_send(self, task: _Task, rec: ScoreRecord | None) -> bool:
        """Decide from the recorded tx (if any) whether content must be broadcast now (as the worker does).

        confirmed -> no; sending/broadcast -> look the hash up: in a block -> record it, no;
        not found -> no until `resend_grace_blocks` have passed, then yes (same content);
        rejected by CheckTx -> yes (it never reached a block) unless MAX_SENDS is spent.
        """
        rid = task.result_id
        txr = rec.tx(task.action) if rec is not None else TxRecord()
        if txr.state is TxState.CONFIRMED and (txr.ok or txr.error != OUT_OF_GAS):
            self.log.debug("task.already_done", result_id=rid, action=str(task.action), code=txr.code)
            return False
        if txr.sends >= MAX_SENDS:
            self._report_once(rid, task.action, "gave_up", sends=txr.sends, last_log=txr.log)
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
                    "task.tx_pending", result_id=rid, action=str(task.action), tx_hash=txr.tx_hash, blocks=waited
                )
                return False
            self.log.warning(
                "task.resend", result_id=rid, action=str(task.action), previous_tx=txr.tx_hash, blocks_waited=waited
            )
        return True

    async def _send(self, task: _Task, msg: Message, rec: ScoreRecord | None) -> None:
        """Record the intent (fsync), broadcast, record the hash, wait for the block, record the result."""
        rid, action = task.result_id, task.action
        prev = rec.tx(action) if rec is not None else TxRecord()
        gas = _gas(msg)
        if prev.state is TxState.CONFIRMED and prev.error == OUT_OF_GAS:
            gas *= 2**prev.sends
        height = (await self.client.status()).latest_height
        self.state.mark_sending(rid, action, height)
        try:
            res = await self.client.send([msg], self.signer, gas=gas)
        except TxRejectedError as e:
            self.state.mark_rejected(rid, action, e.codespace, e.code, e.log)
            self.metrics.tasks.labels(action=str(action), outcome="rejected").inc()
            self.log.warning(
                "task.rejected", result_id=rid, action=str(action), codespace=e.codespace, code=e.code, log=e.log
            )
            return
        self.state.mark_broadcast(rid, action, res.hash)
        self.log.info("task.broadcast", result_id=rid, action=str(action), tx_hash=res.hash)
        try:
            result = await self.client.wait(res.hash, self.cfg.tx_timeout_s)
        except TxTimeoutError:
            self.metrics.errors.labels(kind="tx_timeout").inc()
            self.metrics.tasks.labels(action=str(action), outcome="pending").inc()
            self.log.warning("task.tx_timeout", result_id=rid, action=str(action), tx_hash=res.hash)
            return
        self._settle(task, res.hash, result)

    def _settle(self, task: _Task, tx_hash: str, result: TxResult) -> None:
        """The tx is in a block: record its height and code, count the outcome."""
        rid, action = task.result_id, task.action
        self.state.mark_confirmed(rid, action, tx_hash, result.height, result.codespace, result.code, result.log)
        if result.ok:
            self.metrics.tasks.labels(action=str(action), outcome="ok").inc()
            self.log.info("task.done", result_id=rid, action=str(action), tx_hash=tx_hash, height=result.height)
        else:
            self.metrics.tasks.labels(action=str(action), outcome="failed").inc()
            self.metrics.errors.labels(kind="tx_failed").inc()
            self.log.error(
                "task.failed",
                result_id=rid,
                action=str(action),
                tx_hash=tx_hash,
                height=result.height,
                codespace=result.codespace,
                code=result.code,
                log=result.log,
            )


def _gas(msg: Message) -> int:
    return GAS_BASE + GAS_PER_BYTE * msg.ByteSize()
