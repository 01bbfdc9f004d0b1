"""The registered model in the validator: its likelihood of an answer, its own answer, its yes/no.

An honest worker runs the registered model, so the answer it returns is text
that model finds likely: a high mean log-probability per token, and most
tokens are the model's own first choice (greedy decoding gives 100%).
Shuffled, random or hand-made text, and the output of another model, score
lower. One forward pass over ``chat template(prompt) + answer`` gives both.

llama-cpp-python 0.3.36 keeps per-position logits only with
``logits_all=True`` (``Llama.scores``, ``n_ctx x n_vocab`` float32: 200 MB
at ``n_ctx = 1024``). The same ``Llama`` also generates the reference answer
(the same chat call and sampling parameters as the worker's
:class:`~worker.engines.LlamaCppEngine`) and reads the judge's P(Yes): one
copy of the model, one key-value cache. The cache of a prompt is kept
between calls, so a second answer to the same prompt (or its reference)
evaluates only its own tokens.

Threads: a ``Llama`` is not thread-safe, and this CPU build of llama.cpp
runs on OpenMP, whose worker team belongs to the OS thread that calls it and
spins for a while after each call. Calls that hop between the threads of a
pool (``asyncio.to_thread``) leave teams spinning against each other: on a
2-core machine generation ran about 3x slower (2.2 s instead of 0.7 s for 64
tokens). Every call therefore runs on one dedicated thread, one at a time.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import numpy as np
import numpy.typing as npt

from worker.engines.base import EngineError, Generation, GenerationParams

if TYPE_CHECKING:
    from types import TracebackType

    from llama_cpp import Llama

T = TypeVar("T")


class ModelError(RuntimeError):
    """The model could not be loaded or could not read an answer."""


@dataclass(frozen=True)
class AnswerStats:
    """What the model thinks of an answer's first ``n_tokens`` tokens (``capped`` when the answer had more)."""

    n_tokens: int
    mean_logprob: float
    # share of tokens that are the model's argmax at their position
    greedy_agreement: float
    # log-probability that the turn ends right after the answer (None when capped or empty)
    eos_logprob: float | None
    capped: bool
    # with a sampling temperature T > 0: the mean over tokens of log p_T(token) + H_T(position), p_T the
    # model's distribution at T and H_T its entropy. An answer the model sampled at T scores about 0 (the
    # expected log-probability of a sample is -H_T); another model's answer scores below. None at T = 0.
    sampled_excess: float | None = None


def log_softmax_rows(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Row-wise log-softmax in float32 (max-shifted, so it does not overflow)."""
    top = rows.max(axis=1, keepdims=True)
    shifted = rows - top
    out: npt.NDArray[np.float32] = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return out


class RegisteredModel:
    """A digest-checked GGUF loaded once with ``logits_all=True``; an :class:`~worker.engines.Engine` too.

    ``load``/``close`` (or ``async with``) bound its life. The blocking
    methods run on the caller's thread; the ``a*`` methods and
    :meth:`generate` run them on the model's own thread.
    """

    name = "llamacpp"

    def __init__(self, model_path: Path, *, n_ctx: int = 1024, n_threads: int | None = None) -> None:
        self._path = model_path
        self._n_ctx = n_ctx
        self._n_threads = n_threads or max(1, os.cpu_count() or 1)
        self._llm: Llama | None = None
        self._format: Any = None
        self._lock = asyncio.Lock()
        self._thread: ThreadPoolExecutor | None = None
        self._eos: int = -1

    # ------------------------------------------------------------ lifecycle

    def load(self) -> None:
        """Load the weights (blocking; about 0.2 s for the embedded model)."""
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as e:
            raise ModelError("llama-cpp-python is not installed: run `make setup`") from e
        try:
            llm = Llama(
                model_path=str(self._path),
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                logits_all=True,
                verbose=False,
                seed=0,
            )
        except Exception as e:
            raise ModelError(f"llama.cpp could not load {self._path}: {type(e).__name__}: {e}") from e
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            llm.close()
            raise ModelError(f"{self._path} has no chat template (tokenizer.chat_template)")
        eos, bos = llm.token_eos(), llm.token_bos()
        self._format = Jinja2ChatFormatter(
            template=template,
            eos_token=llm.detokenize([eos], special=True).decode("utf-8", errors="ignore") if eos >= 0 else "",
            bos_token=llm.detokenize([bos], special=True).decode("utf-8", errors="ignore") if bos >= 0 else "",
        )
        self._eos = eos
        self._llm = llm

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        await self._serialized(self.load)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        async with self._lock:
            llm, self._llm = self._llm, None
            if llm is not None and self._thread is not None:
                await asyncio.get_running_loop().run_in_executor(self._thread, llm.close)
        self.close()

    def _model(self) -> Llama:
        if self._llm is None:
            raise ModelError("the registered model is not loaded: use it inside the scorer's `async with`")
        return self._llm

    # ------------------------------------------------------------ blocking work

    def _chat_tokens(self, llm: Llama, prompt: str) -> list[int]:
        """The tokens the worker's chat call feeds the model for ``prompt`` (same template, same BOS rule)."""
        result = self._format(messages=[{"role": "user", "content": prompt}])
        return list(llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True))

    def _eval(self, llm: Llama, tokens: list[int]) -> None:
        """Evaluate ``tokens``, reusing the cached key-value prefix they share with the last call."""
        cached = llm.n_tokens
        prefix = 0
        limit = min(cached, len(tokens))
        ids = llm.input_ids
        while prefix < limit and ids[prefix] == tokens[prefix]:
            prefix += 1
        if prefix == len(tokens) and prefix > 0:
            prefix -= 1  # re-evaluate the last token so its logits are fresh
        llm.n_tokens = prefix  # eval() drops the cache past n_tokens
        llm.eval(tokens[prefix:])

    def answer_stats(self, prompt: str, answer: str, max_tokens: int, *, temperature: float = 0.0) -> AnswerStats:
        """Log-probabilities of the first ``max_tokens`` tokens of ``answer`` after ``prompt`` (blocking);
        with ``temperature`` > 0 also ``sampled_excess`` at that temperature."""
        llm = self._model()
        head = self._chat_tokens(llm, prompt)
        body = list(llm.tokenize(answer.encode("utf-8"), add_bos=False, special=False))
        room = self._n_ctx - len(head) - 1
        if room < 1:
            raise ModelError(f"the prompt takes {len(head)} tokens, more than n_ctx={self._n_ctx} allows")
        keep = min(max_tokens, room)
        capped = len(body) > keep
        body = body[:keep]
        if not body:
            return AnswerStats(0, -math.inf, 0.0, None, capped=False)
        self._eval(llm, head + body)
        start = len(head)
        # row j of scores holds the logits that predict token j + 1
        logits = np.asarray(llm.scores[start - 1 : start + len(body)], dtype=np.float32)
        logp = log_softmax_rows(logits)
        target = np.asarray(body, dtype=np.int64)
        rows = np.arange(len(body))
        token_logp = logp[rows, target]
        agree = float(np.mean(logp[: len(body)].argmax(axis=1) == target))
        eos = None if capped or self._eos < 0 else float(logp[len(body), self._eos])
        excess = None
        if temperature > 0:
            hot = log_softmax_rows(logits[: len(body)] / np.float32(temperature))
            entropy = -(np.exp(hot) * hot).sum(axis=1)
            excess = float(np.mean(hot[rows, target] + entropy))
        return AnswerStats(len(body), float(token_logp.mean()), agree, eos, capped, excess)

    def prime(self, prompt: str, greedy_tokens: int = 0) -> int:
        """Evaluate the chat prompt into the key-value cache, so its answers evaluate only their own tokens (blocking).

        With ``greedy_tokens`` > 0 the model then writes its own greedy answer (up to that many tokens, until
        the end of its turn) into the cache as well: an answer that begins with the same tokens, as an
        honest greedy worker's does, reuses those positions and costs one token's evaluation instead of
        one per token. Nothing is returned of it; it only warms the cache. Returns the prompt's length.
        """
        llm = self._model()
        head = self._chat_tokens(llm, prompt)
        if len(head) >= self._n_ctx:
            raise ModelError(f"the prompt takes {len(head)} tokens, more than n_ctx={self._n_ctx} allows")
        self._eval(llm, head)
        for _ in range(min(greedy_tokens, self._n_ctx - len(head) - 1)):
            token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            if token == self._eos:
                break
            llm.eval([token])
        return len(head)

    def next_token_logprobs(self, prompt: str, candidates: dict[str, str]) -> dict[str, float]:
        """Log-probability of each candidate's first token as the model's first answer token (blocking).

        ``candidates`` maps a label to its text ("yes" -> "Yes"); the judge
        reads P(Yes) and P(No) this way instead of sampling a word.
        """
        llm = self._model()
        head = self._chat_tokens(llm, prompt)
        if len(head) >= self._n_ctx:
            raise ModelError(f"the judge prompt takes {len(head)} tokens, more than n_ctx={self._n_ctx}")
        self._eval(llm, head)
        logp = log_softmax_rows(np.asarray(llm.scores[len(head) - 1 : len(head)], dtype=np.float32))[0]
        out: dict[str, float] = {}
        for label, text in candidates.items():
            first = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)[:1]
            out[label] = float(logp[first[0]]) if first else -math.inf
        return out

    def chat(self, prompt: str, params: GenerationParams) -> Generation:
        """Answer ``prompt`` exactly as the worker's llama.cpp engine does (blocking)."""
        llm = self._model()
        started = time.perf_counter()
        result = llm.create_chat_completion(
            messages=[{"role": "user", "content": prompt}],
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stream=False,
        )
        if not isinstance(result, dict):
            raise EngineError("llama.cpp streamed although stream=False was asked")
        try:
            choice, usage = result["choices"][0], result["usage"]
            return Generation(
                text=choice["message"].get("content") or "",
                prompt_tokens=int(usage["prompt_tokens"]),
                completion_tokens=int(usage["completion_tokens"]),
                finish_reason=str(choice.get("finish_reason") or "unknown"),
                seconds=time.perf_counter() - started,
            )
        except (KeyError, IndexError, TypeError) as e:
            raise EngineError(f"llama.cpp returned an unexpected result: {result!r}") from e

    # ------------------------------------------------------------ async, on the model's thread

    async def _serialized(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the model's thread, one call at a time; a cancelled caller holds the lock until it ends."""
        async with self._lock:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registered-model")
            work = asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                await asyncio.wait([work])
                raise

    async def astats(self, prompt: str, answer: str, max_tokens: int, *, temperature: float = 0.0) -> AnswerStats:
        return await self._serialized(
            functools.partial(self.answer_stats, temperature=temperature), prompt, answer, max_tokens
        )

    async def aprime(self, prompt: str, greedy_tokens: int = 0) -> int:
        return await self._serialized(self.prime, prompt, greedy_tokens)

    async def anext_token_logprobs(self, prompt: str, candidates: dict[str, str]) -> dict[str, float]:
        return await self._serialized(self.next_token_logprobs, prompt, candidates)

    async def generate(self, prompt: str, params: GenerationParams) -> Generation:
        """The :class:`~worker.engines.Engine` call: the reference stage takes this model or any engine."""
        try:
            return await self._serialized(self.chat, prompt, params)
        except EngineError:
            raise
        except Exception as e:
            raise EngineError(f"llama.cpp failed to generate: {type(e).__name__}: {e}") from e
