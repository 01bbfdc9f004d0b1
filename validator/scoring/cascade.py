"""The :class:`Scorer`: the TIQE scoring cascade and the one owner of its models.

Stages, cheapest first (typical latency on a 2-core CPU in brackets):

1. ``injection`` (< 1 ms): patterns that address the grader, ask for a score,
   praise the answer itself, override instructions or fake chat turns, and
   rare-character padding. Gate factor I.
2. ``garble`` (< 1 ms): repetition loops, non-words, odd characters, an
   answer cut mid-word. Gate factor G.
3. ``relevance`` (a few ms): bi-encoder cosine of prompt and answer (or a
   cross-encoder). Evidence R.
4. ``reference`` (a few ms once the prompt is prepared; one greedy
   generation, about 0.4 s, otherwise): the registered model's own answer,
   compared by embedding cosine and content-word overlap. Evidence F.
5. ``likelihood`` (one forward pass of the registered model over prompt +
   answer, about 0.25 s): mean log-probability per token and the share of
   tokens that are the model's own first choice. Evidence Q = the mean of
   the two ramps.
6. ``judge`` (an LLM asked yes/no): only inside [judge_low, judge_high].

Combination rule. Gates multiply; evidence is a weighted geometric mean over
the evidence stages that ran::

    E = (R^wr * F^wf * Q^wq) ^ (1 / (wr + wf + wq))
    score = I * G * E

A geometric mean lets one very bad signal pull the score down (an off-topic
answer is bad however fluent), while two mediocre signals only cost what
they measure. The judge, when it runs, moves the evidence toward its grade
J by ``judge_weight`` (jw): ``score = I * G * ((1 - jw) * E + jw * J)``;
gates are applied after it, so the judge can never lift an answer over an
injection or garble penalty.

Cascade. Each stage's score is at most 1, so after every stage the best
score still reachable is known (the stages not yet run scoring 1). When it
is below ``reject_below`` the answer fails whatever comes next and the
cascade stops. After the reference stage, an answer that no gate touched
and whose reference score is at least ``accept_above`` with at least
``accept_verbatim`` of its word pairs found in the reference (it says what
the registered model says, in its words and their order: a shuffled copy of
the reference does not qualify) skips the likelihood pass. A
stage that was skipped leaves the weighted mean (its weight is dropped).
Floats become integer ppm only at the end (:func:`to_ppm`).

Reuse. The reference depends only on the prompt: :meth:`Scorer.prepare`
computes it (and the prompt's embedding) when the request appears, while
the worker is still generating, and every answer to that prompt (a swarm's
several) shares it. The likelihood pass reuses the model's cached key-value
prefix of the prompt.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from validator.scoring.config import ScoringConfig
from validator.scoring.encoders import BiEncoder, CrossEncoder
from validator.scoring.garble import GarbleCheck
from validator.scoring.injection import InjectionGuard, InjectionPenalties
from validator.scoring.judge import Judge, LlamaCppJudge, OpenAIJudge
from validator.scoring.reference import ReferenceStage
from validator.scoring.registered_model import RegisteredModel
from validator.scoring.relevance import BiEncoderRelevance, CrossEncoderRelevance, Relevance
from validator.scoring.verdict import StageVerdict, Verdict, clamp01, ramp
from worker.engines.base import Engine, EngineConfig
from worker.engines.openai import OpenAIEngine
from worker.logs import EventLog
from worker.models import ModelNotFoundError, embedded_gguf_path, sha256_file

LOGGER_NAME = "polylink.validator.scoring"


class ScoringError(RuntimeError):
    """The pipeline cannot start (a model is missing or has the wrong digest) or a stage failed."""


@dataclass
class _Run:
    """One answer on its way through the cascade."""

    prompt: str
    response: str
    stages: list[StageVerdict] = field(default_factory=list)
    gates: float = 1.0
    # (score, weight) of each evidence stage that ran
    evidence: list[tuple[float, float]] = field(default_factory=list)

    def mean(self) -> float:
        """Weighted geometric mean of the evidence so far (1 when none)."""
        total = sum(w for _, w in self.evidence)
        if total <= 0:
            return 1.0
        if any(s <= 0 for s, _ in self.evidence):
            return 0.0
        return math.exp(sum(w * math.log(s) for s, w in self.evidence) / total)

    def reachable(self, weight_left: float) -> float:
        """The best final score if every remaining evidence stage (``weight_left`` in all) scores 1."""
        total = sum(w for _, w in self.evidence) + weight_left
        if any(s <= 0 for s, _ in self.evidence):
            return 0.0
        log_sum = sum(w * math.log(s) for s, w in self.evidence)
        return self.gates * (math.exp(log_sum / total) if total > 0 else 1.0)

    def score(self) -> float:
        return clamp01(self.gates * self.mean())


class Scorer:
    """Scores answers with the cascade described in this module; ``async with`` loads and releases the models.

    Stages can be injected (tests pass fakes that need no model): ``relevance``,
    ``reference_engine`` (any :class:`~worker.engines.Engine`, for example an
    OpenAI-compatible server running the registered model; it is the caller's
    and must already be started) and ``judge``. Concurrent ``score`` calls are
    safe: each model serializes its own use.
    """

    def __init__(
        self,
        config: ScoringConfig | None = None,
        *,
        relevance: Relevance | None = None,
        reference_engine: Engine | None = None,
        judge: Judge | None = None,
        log: EventLog | None = None,
    ) -> None:
        self.config = config or ScoringConfig()
        self.log = log or EventLog(logging.getLogger(LOGGER_NAME))
        self._relevance_override = relevance
        self._engine_override = reference_engine
        self._judge_override = judge
        self._encoder: BiEncoder | None = None
        self._cross: CrossEncoder | None = None
        self._model: RegisteredModel | None = None
        self._judge_model: RegisteredModel | None = None
        self._judge_engine: Engine | None = None
        self._relevance: Relevance | None = None
        self._garble: GarbleCheck | None = None
        self._guard: InjectionGuard | None = None
        self._reference: ReferenceStage | None = None
        self._judge: Judge | None = None
        self.model_path: Path | None = None

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        try:
            await self._open()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _open(self) -> None:
        cfg = self.config
        started = time.perf_counter()
        encoder = BiEncoder(cfg.bi_encoder_path, cfg.tokenizer_path, n_threads=cfg.encoder_thread_count)
        await asyncio.to_thread(encoder.load)
        self._encoder = encoder
        if self._relevance_override is not None:
            self._relevance = self._relevance_override
        elif cfg.relevance == "cross-encoder":
            assert cfg.cross_encoder_path is not None  # checked by the config
            cross = CrossEncoder(cfg.cross_encoder_path, n_threads=cfg.encoder_thread_count)
            await asyncio.to_thread(cross.load)
            self._cross = cross
            self._relevance = CrossEncoderRelevance(cross, low=cfg.relevance_low, high=cfg.relevance_high)
        else:
            self._relevance = BiEncoderRelevance(encoder, low=cfg.relevance_low, high=cfg.relevance_high)
        self._garble = GarbleCheck(encoder.vocabulary())
        p = InjectionPenalties(
            addresses_grader=cfg.injection_penalty,
            requests_score=cfg.injection_penalty,
            self_praise=cfg.self_praise_penalty,
            overrides_instructions=cfg.injection_penalty,
            role_tags=cfg.injection_penalty,
            rare_chars_min=cfg.rare_chars_min,
            rare_chars_factor=cfg.injection_penalty,
        )
        self._guard = InjectionGuard(p)
        needs_model = (
            cfg.likelihood
            or (cfg.reference and self._engine_override is None)
            or (cfg.judge == "llamacpp" and self._judge_override is None and cfg.judge_model_path is None)
        )
        if needs_model:
            path = await self._checked_model_path()
            self.model_path = path
            model = RegisteredModel(path, n_ctx=cfg.n_ctx, n_threads=cfg.threads)
            self._model = model
            try:
                await model.__aenter__()
                # the first decode allocates buffers and faults the weights in: pay it here, not on a task
                await model.astats("Hello", "Hello! How can I help you today?", 8)
            except Exception as e:
                raise ScoringError(f"the registered model could not start: {e}") from e
        await asyncio.to_thread(encoder.encode, ["warm-up"])
        if cfg.reference:
            engine: Engine | None = self._engine_override or self._model
            assert engine is not None
            self._reference = ReferenceStage(
                engine,
                encoder,
                max_tokens=cfg.reference_max_tokens,
                low=cfg.reference_low,
                high=cfg.reference_high,
                overlap_low=cfg.overlap_low,
                overlap_high=cfg.overlap_high,
            )
        if self._judge_override is not None:
            self._judge = self._judge_override
        elif cfg.judge == "llamacpp" and cfg.judge_model_path is not None:
            if not cfg.judge_model_path.is_file():
                raise ScoringError(f"judge model file not found: {cfg.judge_model_path}")
            judge_model = RegisteredModel(cfg.judge_model_path, n_ctx=cfg.n_ctx, n_threads=cfg.threads)
            self._judge_model = judge_model
            try:
                await judge_model.__aenter__()
            except Exception as e:
                raise ScoringError(f"the judge model could not start: {e}") from e
            self._judge = LlamaCppJudge(judge_model)
        elif cfg.judge == "llamacpp":
            assert self._model is not None
            self._judge = LlamaCppJudge(self._model)
        elif cfg.judge == "openai":
            judge_engine = OpenAIEngine(
                EngineConfig(
                    kind="openai",
                    base_url=cfg.judge_base_url,
                    model_name=cfg.judge_model,
                    api_key=cfg.judge_api_key or None,
                    timeout_s=cfg.judge_timeout_s,
                )
            )
            await judge_engine.__aenter__()
            self._judge_engine = judge_engine
            self._judge = OpenAIJudge(judge_engine)
        self.log.info(
            "scoring.ready",
            relevance=self._relevance.name,
            likelihood=cfg.likelihood,
            reference=cfg.reference,
            judge=self._judge.name if self._judge is not None else "off",
            model=str(self.model_path) if self.model_path else "",
            load_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    async def _checked_model_path(self) -> Path:
        """The registered model's file, refused unless its sha256 is the configured (registered) digest."""
        cfg = self.config
        try:
            path = cfg.model_path if cfg.model_path is not None else embedded_gguf_path()
        except ModelNotFoundError as e:
            raise ScoringError(str(e)) from e
        if not path.is_file():
            raise ScoringError(f"model file not found: {path}")
        digest = await asyncio.to_thread(sha256_file, path)
        if digest != cfg.model_sha256:
            raise ScoringError(
                f"model file {path} has sha256 {digest}, but the registered digest is {cfg.model_sha256}: "
                "the validator must score with the registered weights"
            )
        return path

    async def _close(self) -> None:
        if self._judge_engine is not None:
            engine, self._judge_engine = self._judge_engine, None
            await engine.__aexit__(None, None, None)
        self._reference = None
        self._judge = None
        for attr in ("_judge_model", "_model"):
            model = getattr(self, attr)
            setattr(self, attr, None)
            if model is not None:
                await model.__aexit__(None, None, None)
        if self._cross is not None:
            self._cross.close()
            self._cross = None
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None
        self._relevance = None

    # ------------------------------------------------------------ scoring

    async def prepare(self, prompt: str) -> None:
        """Compute what depends only on the prompt (its embedding, the reference answer) ahead of its answers.

        A validator learns the prompt when the request is created, before any
        worker answers: calling this then (as a task) takes the reference
        generation, the cascade's slowest step, off the scoring path.
        """
        encoder = self._encoder
        if encoder is None:
            raise ScoringError("the scorer is not started: use it inside `async with Scorer(...)`")
        await asyncio.to_thread(encoder.encode, [prompt])
        if self._reference is not None:
            await self._reference.reference(prompt)

    async def score(self, prompt: str, response: str, *, capped: bool = False) -> Verdict:
        """Run the cascade on one answer; see the module docstring for the rule.

        ``capped``: the answer used all of the request's ``max_tokens``
        (completion tokens on chain == max_tokens), so a cut-off ending is
        the request's doing, not the worker's.
        """
        relevance, garble, guard = self._relevance, self._garble, self._guard
        if relevance is None or garble is None or guard is None:
            raise ScoringError("the scorer is not started: use it inside `async with Scorer(...)`")
        cfg = self.config
        started = time.perf_counter()
        run = _Run(prompt, response)
        weight_left = cfg.weight_relevance
        if self._model is not None and cfg.likelihood:
            weight_left += cfg.weight_likelihood
        if self._reference is not None:
            weight_left += cfg.weight_reference

        async def gate(name: str, fn: Callable[[], tuple[float, dict[str, Any]]]) -> None:
            s, _ = await self._timed(run, name, _sync(fn))
            run.gates *= s

        async def evidence(name: str, fn: Callable[[], Awaitable[tuple[float, dict[str, Any]]]], w: float) -> None:
            nonlocal weight_left
            s, _ = await self._timed(run, name, fn)
            run.evidence.append((s, w))
            weight_left -= w

        def hopeless() -> bool:
            return run.reachable(weight_left) < cfg.reject_below

        decided_by = ""
        await gate("injection", lambda: guard.check(prompt, response))
        await gate("garble", lambda: garble.check(response, capped=capped))
        if hopeless():
            decided_by = run.stages[-1].name
        else:
            await evidence("relevance", lambda: relevance.relevance(prompt, response), cfg.weight_relevance)
            if hopeless():
                decided_by = "relevance"
        if not decided_by and self._reference is not None:
            reference = self._reference
            await evidence("reference", lambda: reference.compare(prompt, response), cfg.weight_reference)
            if hopeless():
                decided_by = "reference"
            elif (
                run.gates >= 1.0
                and run.stages[-1].score >= cfg.accept_above
                and float(run.stages[-1].detail.get("verbatim", 0.0)) >= cfg.accept_verbatim
                and self._model is not None
                and cfg.likelihood
            ):
                decided_by = "reference"
                weight_left -= cfg.weight_likelihood
        if not decided_by and self._model is not None and cfg.likelihood:
            await evidence("likelihood", lambda: self._likelihood_stage(prompt, response), cfg.weight_likelihood)
        used_judge = False
        final = run.score()
        if self._judge is not None and cfg.judge_low <= final <= cfg.judge_high:
            judge = self._judge
            j, _ = await self._timed(run, "judge", lambda: judge.judge(prompt, response))
            used_judge = True
            blended = (1 - cfg.judge_weight) * run.mean() + cfg.judge_weight * j
            final = clamp01(run.gates * blended)
        total_ms = (time.perf_counter() - started) * 1000
        verdict = Verdict(
            score=final,
            stages=run.stages,
            used_judge=used_judge,
            decided_by=decided_by or run.stages[-1].name,
            latency_ms=total_ms,
        )
        self.log.info(
            "scoring.verdict",
            score=round(final, 6),
            used_judge=used_judge,
            decided_by=verdict.decided_by,
            latency_ms=round(total_ms, 2),
        )
        return verdict

    async def _timed(
        self, run: _Run, name: str, fn: Callable[[], Awaitable[tuple[float, dict[str, Any]]]]
    ) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        try:
            s, detail = await fn()
        except Exception as e:
            self.log.error("scoring.stage_failed", stage=name, error=f"{type(e).__name__}: {e}")
            raise ScoringError(f"scoring stage {name} failed: {type(e).__name__}: {e}") from e
        ms = (time.perf_counter() - t0) * 1000
        s = clamp01(s)
        run.stages.append(StageVerdict(name, s, ms, detail))
        self.log.info("scoring.stage", stage=name, score=round(s, 6), latency_ms=round(ms, 3), **_flat(detail))
        return s, detail

    async def _likelihood_stage(self, prompt: str, response: str) -> tuple[float, dict[str, Any]]:
        model, cfg = self._model, self.config
        assert model is not None
        st = await model.astats(prompt, response, cfg.likelihood_max_tokens)
        if st.n_tokens == 0:
            return 0.0, {"tokens": 0}
        lp = ramp(st.mean_logprob, cfg.logprob_low, cfg.logprob_high)
        agree = ramp(st.greedy_agreement, cfg.agreement_low, cfg.agreement_high)
        detail = {
            "tokens": st.n_tokens,
            "capped": st.capped,
            "mean_logprob": round(st.mean_logprob, 4),
            "agreement": round(st.greedy_agreement, 4),
            "eos_logprob": None if st.eos_logprob is None else round(st.eos_logprob, 4),
        }
        return (lp + agree) / 2, detail


def _sync(fn: Callable[[], tuple[float, dict[str, Any]]]) -> Callable[[], Awaitable[tuple[float, dict[str, Any]]]]:
    async def call() -> tuple[float, dict[str, Any]]:
        return fn()

    return call


_LOG_FIELDS = frozenset({"stage", "score", "latency_ms", "event", "level", "ts"})


def _flat(detail: dict[str, Any]) -> dict[str, Any]:
    """Scalar fields of a stage's detail, for one log line (long texts are left to the verdict)."""
    return {
        k: v
        for k, v in detail.items()
        if k not in _LOG_FIELDS and (isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) < 80))
    }
