"""The :class:`Scorer`: the TIQE scoring cascade and the one owner of its models.

Two numbers per answer (SPEC 3.6): **quality**, whether the answer answers
the prompt correctly, however it is worded, and **fidelity**, evidence that
the registered model wrote it. They are measured apart: a correct answer in
other words is good quality at low fidelity, and the registered model's own
wrong answer is high fidelity at low quality.

Stages, cheapest first (typical latency on a 2-core CPU in brackets):

1. ``injection`` (< 1 ms): text that addresses the grader, asks for a score,
   praises itself, overrides instructions or fakes chat turns; rare-character
   padding. Gate I.
2. ``garble`` (< 1 ms): repetition loops, non-words, odd characters, an
   answer cut inside a word, an answer that only repeats the prompt's words
   ("One fruit is not a fruit." to "Name a fruit."). A terse answer without
   a final period is not garbled. Gate G.
3. ``relevance`` (a few ms): bi-encoder cosine of prompt and answer (or a
   cross-encoder). Score R.
4. ``specificity`` (a few ms): is the answer about the entity the prompt
   names, or about a neighbour (:mod:`validator.scoring.specificity`)? It
   combines R with its own signals by a fitted logistic rule into the topic
   evidence T.
5. ``reference`` (off by default): the registered model's greedy answer,
   prepared with the prompt; its similarity adds ``topic_reference`` to T's
   logit, weak evidence of topic, never a template to match.
6. ``fidelity`` (one pass of the registered model over chat(prompt) +
   answer, reusing the prompt's cached prefix: tens of ms for a short
   answer): mean log-probability per token and the share of tokens that are
   the model's first choice, each ramped; their mean is the **fidelity** of a
   greedy request. For a request sampled at temperature T it is the ramped
   excess log-probability mean(log p_T(token) + H_T), about 0 for the
   model's own samples. It is not part of quality.
7. ``order`` (passes over ``order_shuffles`` seeded shuffles of the answer's
   own words): lp(answer) - mean lp(shuffles) per token. Text whose word
   order the model finds no likelier than shuffles of the same bag of words
   is not English; absolute fluency is not asked for. Gate O. Skipped for
   an answer the model reads at ``order_fluent_above`` (-2 nats per token)
   or above: no shuffled text comes near that (the likeliest of 275
   measured: -4.1), and it saves the pass for the model's own answers.
   ``ending``: the model's log-probability that the turn ends right after
   the answer (from the fidelity pass), ramped: gate E, which catches an
   answer cut off inside a phrase (skipped when capped at max_tokens).
8. ``judge`` (an LLM asked yes/no): only when quality is inside
   [judge_low, judge_high].

Combination rule::

    T = sigmoid(b + wr*R + wn*name_cosine + ws*specificity + wo*name_overlap [+ wref*reference])
    quality = I * G * O * E * T
    with the judge: quality = I * G * O * E * ((1 - jw) * T + jw * J)

Gates multiply, so one clear problem sinks the answer, and the judge can
never lift an answer over a gate. The order and ending gates, statistical
evidence read from the registered model, never go below ``soft_gate_floor``
(0.02), while each finding of the injection guard, a deliberate attack,
costs ``injection_penalty`` (0.01): on the same topic evidence, an answer
that asks the grader for marks ranks below one that only the order or
ending gate sank, and cannot win a swarm's best answer over it. The weights are
config, fitted on the tune sources of ``tests/data/tiqe_eval`` and reported
on its held-out ones (``scripts/eval_tiqe.py``).

Cascade. After the gates and after T the best quality still reachable is
known (the stages not yet run scoring 1); when it is below ``reject_below``
the answer fails whatever comes next and the cascade stops before the
model's passes. Such an answer's fidelity is not measured (it stays 1.0, "no
evidence against"): it is already refused on quality, which is what the
chain acts on first. Floats become integer ppm only at the end (:func:`to_ppm`).

Reuse. :meth:`Scorer.prepare` embeds the prompt-side texts, evaluates the
chat prompt into the model's key-value cache and (when on) generates the
reference, when the request appears, while the worker is still generating;
every answer to that prompt (a swarm's several) shares it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from validator.scoring.config import ScoringConfig
from validator.scoring.encoders import BiEncoder, CrossEncoder
from validator.scoring.garble import GarbleCheck
from validator.scoring.injection import GraderSentences, InjectionGuard, InjectionPenalties
from validator.scoring.judge import Judge, LlamaCppJudge, OpenAIJudge
from validator.scoring.reference import ReferenceStage
from validator.scoring.registered_model import RegisteredModel
from validator.scoring.relevance import BiEncoderRelevance, CrossEncoderRelevance, Relevance
from validator.scoring.specificity import SpecificityStage, TopicWeights, sigmoid
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
    # the topic evidence T (1 until the relevance stage ran)
    topic: float = 1.0

    def score(self) -> float:
        return clamp01(self.gates * self.topic)


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
        self._specificity: SpecificityStage | None = None
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
        semantic = None
        if cfg.injection_semantic:
            semantic = await asyncio.to_thread(
                GraderSentences,
                encoder,
                low=cfg.injection_semantic_low,
                high=cfg.injection_semantic_high,
                factor=cfg.injection_penalty,
            )
        self._guard = InjectionGuard(p, semantic)
        if cfg.specificity:
            self._specificity = SpecificityStage(
                encoder,
                TopicWeights(
                    bias=cfg.topic_bias,
                    relevance=cfg.topic_relevance,
                    name=cfg.topic_name,
                    specificity=cfg.topic_specificity,
                    overlap=cfg.topic_overlap,
                    plain_bias=cfg.topic_plain_bias,
                    plain_relevance=cfg.topic_plain_relevance,
                ),
            )
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
        self._specificity = None
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
        """Compute what depends only on the prompt ahead of its answers.

        A validator learns the prompt when the request is created, before any
        worker answers: calling this then (as a task) embeds the prompt-side
        texts, puts the chat prompt and the model's own greedy answer
        (``prepare_greedy_tokens``) into the model's key-value cache and
        generates the reference (when on), all off the scoring path. A
        greedy worker's answer then shares the cached positions and its
        fidelity pass evaluates one token.
        """
        encoder = self._encoder
        if encoder is None:
            raise ScoringError("the scorer is not started: use it inside `async with Scorer(...)`")
        await asyncio.to_thread(encoder.encode, SpecificityStage.prompt_texts(prompt))
        if self._model is not None and self.config.likelihood:
            await self._model.aprime(prompt, self.config.prepare_greedy_tokens)
        if self._reference is not None:
            await self._reference.reference(prompt)

    async def score(self, prompt: str, response: str, *, capped: bool = False, temperature: float = 0.0) -> Verdict:
        """Run the cascade on one answer; see the module docstring for the rule.

        ``capped``: the answer used all of the request's ``max_tokens``
        (completion tokens on chain == max_tokens), so a cut-off ending is
        the request's doing, not the worker's. ``temperature``: the request's
        sampling temperature (0 = greedy), which the fidelity stage tests the
        answer against.
        """
        relevance, garble, guard = self._relevance, self._garble, self._guard
        if relevance is None or garble is None or guard is None:
            raise ScoringError("the scorer is not started: use it inside `async with Scorer(...)`")
        cfg = self.config
        started = time.perf_counter()
        run = _Run(prompt, response)

        async def gate(name: str, fn: Callable[[], Awaitable[tuple[float, dict[str, Any]]]]) -> None:
            s, _ = await self._timed(run, name, fn)
            run.gates *= s

        def hopeless() -> bool:
            return run.score() < cfg.reject_below

        decided_by = ""
        fidelity = 1.0
        # with the meaning-based detector the check embeds the answer's sentences: off the event loop
        await gate("injection", lambda: asyncio.to_thread(guard.check, prompt, response))
        await gate("garble", _sync(lambda: garble.check(response, capped=capped, prompt=prompt)))
        if hopeless():
            decided_by = run.stages[-1].name
        else:
            r, _ = await self._timed(run, "relevance", lambda: relevance.relevance(prompt, response))
            run.topic = r
            if self._specificity is not None:
                spec = self._specificity
                run.topic, _ = await self._timed(run, "specificity", lambda: spec.score(prompt, response, r))
            if self._reference is not None and run.gates * _shift_logit(run.topic, cfg.topic_reference / 2) >= (
                cfg.reject_below
            ):
                reference = self._reference
                ref, _ = await self._timed(run, "reference", lambda: reference.compare(prompt, response))
                run.topic = _shift_logit(run.topic, cfg.topic_reference * (ref - 0.5))
            if hopeless():
                decided_by = run.stages[-1].name
        if not decided_by and self._model is not None and cfg.likelihood:
            fidelity, detail = await self._timed(
                run, "fidelity", lambda: self._fidelity_stage(prompt, response, temperature)
            )
            await gate("order", lambda: self._order_stage(prompt, response, detail))
            if cfg.ending:
                await gate("ending", _sync(lambda: self._ending_stage(detail, capped)))
        used_judge = False
        final = run.score()
        if not decided_by and self._judge is not None and cfg.judge_low <= final <= cfg.judge_high:
            judge = self._judge
            j, _ = await self._timed(run, "judge", lambda: judge.judge(prompt, response))
            used_judge = True
            final = clamp01(run.gates * ((1 - cfg.judge_weight) * run.topic + cfg.judge_weight * j))
        total_ms = (time.perf_counter() - started) * 1000
        verdict = Verdict(
            score=final,
            stages=run.stages,
            used_judge=used_judge,
            decided_by=decided_by or run.stages[-1].name,
            latency_ms=total_ms,
            fidelity=fidelity,
        )
        self.log.info(
            "scoring.verdict",
            quality=round(final, 6),
            fidelity=round(fidelity, 6),
            used_judge=used_judge,
            decided_by=verdict.decided_by,
            latency_ms=round(total_ms, 2),
        )
        return verdict

    async def fidelity(self, prompt: str, response: str, *, temperature: float = 0.0) -> tuple[float, dict[str, Any]]:
        """The fidelity stage alone, whatever the answer's quality (the fidelity eval; the cascade skips it on
        answers already refused on quality). Returns the fidelity in [0, 1] and the stage's detail."""
        if self._model is None:
            raise ScoringError("fidelity needs the registered model: start the scorer with likelihood = true")
        score, detail = await self._fidelity_stage(prompt, response, temperature)
        return clamp01(score), detail

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

    async def _fidelity_stage(self, prompt: str, response: str, temperature: float) -> tuple[float, dict[str, Any]]:
        """Fidelity under the request's sampling. Greedy (temperature 0): the registered model's mean
        log-probability of the answer and its greedy agreement, ramped, averaged. Sampled: the answer's
        excess log-probability at that temperature (mean of log p_T + H_T, about 0 for the model's own
        samples, below for another model's), ramped."""
        model, cfg = self._model, self.config
        assert model is not None
        hot = temperature if temperature > cfg.greedy_below else 0.0
        st = await model.astats(prompt, response, cfg.likelihood_max_tokens, temperature=hot)
        if st.n_tokens == 0:
            return 0.0, {"tokens": 0, "mean_logprob": None}
        detail: dict[str, Any] = {
            "tokens": st.n_tokens,
            "capped": st.capped,
            "temperature": hot,
            "mean_logprob": round(st.mean_logprob, 4),
            "agreement": round(st.greedy_agreement, 4),
            "eos_logprob": None if st.eos_logprob is None else round(st.eos_logprob, 4),
        }
        if st.sampled_excess is not None:
            detail["sampled_excess"] = round(st.sampled_excess, 4)
            return ramp(st.sampled_excess, cfg.excess_low, cfg.excess_high), detail
        lp = ramp(st.mean_logprob, cfg.logprob_low, cfg.logprob_high)
        agree = ramp(st.greedy_agreement, cfg.agreement_low, cfg.agreement_high)
        return (lp + agree) / 2, detail

    def _ending_stage(self, fidelity: dict[str, Any], capped: bool) -> tuple[float, dict[str, Any]]:
        """Gate E: does the answer end where an answer ends? The registered model's log-probability that the
        turn ends right after it (read by the fidelity pass), ramped: an answer cut inside a word or a
        phrase is almost never followed by the end of the turn; a terse one without a final period is."""
        cfg = self.config
        eos = fidelity.get("eos_logprob")
        if capped:
            return 1.0, {"skipped": "capped at max_tokens"}
        if eos is None:
            why = "longer than likelihood_max_tokens" if fidelity.get("capped") else "no end token"
            return 1.0, {"skipped": why}
        return max(cfg.soft_gate_floor, ramp(float(eos), cfg.ending_low, cfg.ending_high)), {"eos_logprob": eos}

    async def _order_stage(self, prompt: str, response: str, fidelity: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """Gate O: lp(answer) - the mean lp of ``order_shuffles`` seeded shuffles of its words, per token, all
        after the chat prompt: word order measured against the answer's own bag of words, not as fluency."""
        model, cfg = self._model, self.config
        assert model is not None
        if len(response.split()) < cfg.order_min_words or fidelity.get("mean_logprob") is None:
            return 1.0, {"skipped": "too few words to order"}
        if float(fidelity["mean_logprob"]) >= cfg.order_fluent_above:
            # likelier than any shuffled text measured: the shuffles' pass would only confirm it
            return 1.0, {"skipped": "fluent", "mean_logprob": fidelity["mean_logprob"]}
        shuffles = shuffle_words(response, cfg.order_shuffles)
        if not shuffles:
            return 1.0, {"skipped": "too few words to order"}
        # the same number of tokens as the fidelity pass read, so both means cover the same text
        limit = min(cfg.likelihood_max_tokens, int(fidelity["tokens"]) + 4)
        lps = []
        for shuffled in shuffles:
            st = await model.astats(prompt, shuffled, limit)
            if st.n_tokens:
                lps.append(st.mean_logprob)
        if not lps:
            return 1.0, {"skipped": "empty shuffle"}
        shuffled_lp = sum(lps) / len(lps)
        gap = float(fidelity["mean_logprob"]) - shuffled_lp
        return max(cfg.soft_gate_floor, ramp(gap, cfg.order_low, cfg.order_high)), {
            "gap": round(gap, 4),
            "shuffled_logprob": round(shuffled_lp, 4),
            "shuffles": len(lps),
        }


def shuffle_words(text: str, n: int = 1) -> list[str]:
    """``n`` seeded random orders of the words of ``text``, each differing from theirs (fewer when the
    words allow fewer; none when no order differs).

    The seed is the text's sha256, so every validator shuffles an answer the same way.
    """
    words = text.split()
    if len(set(words)) < 2:
        return []
    rng = random.Random(hashlib.sha256(text.encode("utf-8")).digest())
    out: list[str] = []
    for _ in range(n):
        order = words[:]
        for _ in range(8):
            rng.shuffle(order)
            if order != words and " ".join(order) not in out:
                out.append(" ".join(order))
                break
    if not out:
        out.append(" ".join(words[1:] + words[:1]))
    return out


def _shift_logit(p: float, delta: float) -> float:
    """``p`` moved by ``delta`` on the logit scale (how weak evidence nudges T)."""
    p = min(1 - 1e-9, max(1e-9, p))
    return sigmoid(math.log(p / (1 - p)) + delta)


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
