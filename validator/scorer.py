"""The seam between the validator loop and the scoring pipeline.

The loop (`validator.service`) needs only "score this answer to this prompt":
`Scorer.score(prompt, response) -> Verdict` (`validator.scoring.verdict`: a
float score in [0, 1], the per-stage verdicts, whether the LLM judge ran).
The Protocol states exactly that, so tests pass a fake and production passes
the pipeline of `validator.scoring`, which `open_scorer` builds and imports
only when called (its stages load models and heavy libraries).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from validator.config import ValidatorConfig, parse_scoring
from validator.errors import ValidatorSetupError
from validator.scoring.verdict import Verdict, to_ppm

__all__ = ["Scorer", "Verdict", "open_scorer", "to_ppm", "verdict_json"]


class Scorer(Protocol):
    """Scores an answer; its lifecycle (models loaded, judge connected) is the caller's `async with`."""

    async def score(self, prompt: str, response: str, *, capped: bool = False, temperature: float = 0.0) -> Verdict:
        """``capped``: the answer used all of the request's ``max_tokens`` (a cut-off ending is expected);
        ``temperature``: the request's sampling temperature (0 = greedy), which fidelity is tested against."""
        ...

    async def prepare(self, prompt: str) -> None:
        """Compute what depends only on the prompt ahead of its answers (may do nothing)."""
        ...


def verdict_json(verdict: Verdict, **extra: Any) -> str:
    """A verdict as one JSON object (kept in the state file beside the committed score)."""
    return json.dumps({**verdict.as_dict(), **extra}, default=str, sort_keys=True, ensure_ascii=False)


@asynccontextmanager
async def open_scorer(cfg: ValidatorConfig) -> AsyncIterator[Scorer]:
    """The real pipeline for `cfg`'s `[scoring]` table, open for the `async with` block."""
    from validator.scoring.cascade import Scorer as PipelineScorer
    from validator.scoring.cascade import ScoringError
    from validator.scoring.encoders import EncoderError
    from validator.scoring.registered_model import ModelError

    async with contextlib.AsyncExitStack() as stack:
        try:
            scorer = await stack.enter_async_context(PipelineScorer(parse_scoring(cfg)))
        except (ScoringError, EncoderError, ModelError) as e:
            raise ValidatorSetupError(f"the scoring pipeline cannot start: {e}") from None
        yield scorer
