"""The reference stage: regenerate an answer with the registered model and compare it with the worker's.

An honest worker runs the registered model (its digest is on chain); the
validator runs its own digest-checked copy through the same engine code
(:mod:`worker.engines`), greedy, and compares the two answers by the cosine
of their bi-encoder embeddings and by how many of the answer's content words
the reference also uses (:func:`fact_overlap`). Greedy output differs
slightly between llama.cpp builds, so answers are never compared for
equality. A worker that serves a cheaper model, garbles its output or
answers something else lands far from the reference.

Why the word overlap: a bi-encoder embeds "The capital of Japan is Kyoto."
right next to "... is Tokyo." (same topic, same shape), so the cosine alone
cannot see a false fact. The words an answer adds to the question are where
its facts are; an honest answer shares many of them with the registered
model's own answer, a fluent false one few (on the evaluation set: AUC 0.91
against hand-written false answers, where the cosine gives about 0.75).
The stage's score is the mean of the two ramps, so a correct answer in
other words (low overlap, high cosine) is not rejected by the overlap alone.

The reference of a prompt is computed once and shared by every answer to it
(a swarm request has several; two scorings of one prompt in flight wait for
the same generation).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import OrderedDict
from typing import Any

from validator.scoring.encoders import BiEncoder
from validator.scoring.verdict import ramp
from worker.engines.base import Engine, Generation, GenerationParams


class ReferenceStage:
    """Cached greedy references from ``engine``; the score ramps the cosine from ``low`` (0) to ``high`` (1)."""

    name = "reference"

    def __init__(
        self,
        engine: Engine,
        encoder: BiEncoder,
        *,
        max_tokens: int,
        low: float,
        high: float,
        overlap_low: float = 0.0,
        overlap_high: float = 0.4,
        cache_size: int = 256,
    ) -> None:
        self._engine = engine
        self._encoder = encoder
        self._params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
        self._low = low
        self._high = high
        self._overlap_low = overlap_low
        self._overlap_high = overlap_high
        self._cache_size = cache_size
        self._cache: OrderedDict[str, asyncio.Future[Generation]] = OrderedDict()

    async def reference(self, prompt: str) -> tuple[Generation, bool]:
        """The reference answer for ``prompt`` and whether it came from the cache."""
        fut = self._cache.get(prompt)
        if fut is not None:
            self._cache.move_to_end(prompt)
            if fut.done() and (fut.cancelled() or fut.exception() is not None):
                del self._cache[prompt]  # a failed generation is retried, not remembered
            else:
                return await asyncio.shield(fut), True
        fut = asyncio.ensure_future(self._engine.generate(prompt, self._params))
        self._cache[prompt] = fut
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        try:
            return await asyncio.shield(fut), False
        except BaseException:
            if self._cache.get(prompt) is fut and fut.done():
                del self._cache[prompt]
            raise

    async def compare(self, prompt: str, response: str) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        ref, cached = await self.reference(prompt)
        generate_ms = 0.0 if cached else (time.perf_counter() - started) * 1000
        theirs = response
        if ref.finish_reason == "length":
            # the reference stopped at max_tokens: compare like with like, the same length of the answer
            theirs = _head_chars(response, len(ref.text))
        cos = await asyncio.to_thread(self._encoder.cosine, ref.text, theirs)
        overlap = fact_overlap(prompt, ref.text, theirs)
        detail = {
            "cosine": round(cos, 4),
            "overlap": None if overlap is None else round(overlap, 4),
            "verbatim": round(verbatim_share(ref.text, theirs), 4),
            "cached": cached,
            "generate_ms": round(generate_ms, 3),
            "reference_tokens": ref.completion_tokens,
            "reference": ref.text[:200],
        }
        by_cosine = ramp(cos, self._low, self._high)
        if overlap is None:  # the answer adds no content word to the question: the cosine alone decides
            return by_cosine, detail
        return (by_cosine + ramp(overlap, self._overlap_low, self._overlap_high)) / 2, detail


# function words: they carry no facts, and every answer shares them
_STOP_WORDS = frozenset(
    " ".join(
        (
            "a an the of to in on at by for with from and or but if then so as is are was were be been being",
            "it its this that these those there their they them he she his her we our you your i me my not no",
            "do does did can could will would should may might must have has had which who whom what when where",
            "why how than also into about over under more most less such other some any each every all both very",
            "just only one",
        )
    ).split()
)
_WORD = re.compile(r"[^\W_]+(?:[.,]\d+)?", re.UNICODE)


def _stem(word: str) -> str:
    """A crude suffix strip, enough to match "metal"/"metals", "warm"/"warming"."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str, exclude: frozenset[str] = frozenset()) -> list[str]:
    """Lower-cased, stemmed words and numbers of ``text``, without function words and ``exclude``."""
    out = []
    for w in _WORD.findall(text.lower()):
        if w in _STOP_WORDS:
            continue
        s = _stem(w)
        if s not in exclude:
            out.append(s)
    return out


def verbatim_share(reference: str, answer: str) -> float:
    """Share of the answer's word pairs (in order) that the reference has too: 1 for the same text.

    The cosine and the content-word overlap cannot see word order (a shuffled
    copy of the reference scores like the reference); pairs can. The cascade
    lets an answer skip the likelihood pass only when it is close to
    verbatim.
    """
    words = _WORD.findall(answer.lower())
    pairs = list(itertools.pairwise(words))
    if not pairs:
        return 0.0
    ref_words = _WORD.findall(reference.lower())
    ref_pairs = set(itertools.pairwise(ref_words))
    return sum(p in ref_pairs for p in pairs) / len(pairs)


def fact_overlap(prompt: str, reference: str, answer: str) -> float | None:
    """Share of the answer's content words (those not already in the prompt) that the reference uses too.

    None when the answer adds no content word to the prompt (nothing to check).
    """
    asked = frozenset(content_words(prompt))
    words = content_words(answer, asked)
    if not words:
        return None
    ref = set(content_words(reference, asked))
    return sum(w in ref for w in words) / len(words)


def _head_chars(text: str, n: int) -> str:
    if len(text) <= n:
        return text
    cut = text.rfind(" ", 0, n)
    return text[: cut if cut > n // 2 else n]
