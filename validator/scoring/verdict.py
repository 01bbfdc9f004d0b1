"""What the pipeline says about one answer: a :class:`Verdict` made of :class:`StageVerdict` s.

Scores stay floats in [0, 1] inside the pipeline; :func:`to_ppm` turns the
final one into the integer parts-per-million the chain takes, and nothing
else in the pipeline rounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PPM = 1_000_000


@dataclass(frozen=True)
class StageVerdict:
    """One stage's outcome: its score in [0, 1] (1 = no problem found), wall time, and what it saw.

    ``detail`` holds the stage's raw signals (cosines, log-likelihoods, which
    guard fired), JSON-serializable, so a verdict can be logged and stored.
    """

    name: str
    score: float
    latency_ms: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """The pipeline's verdict: ``quality`` and ``fidelity`` in [0, 1], every stage that ran, whether the judge did.

    ``quality``: does the answer correctly and relevantly answer the prompt,
    however it is phrased (it decides pass/fail). ``fidelity``: evidence that
    the registered model produced it (the substitution guard). ``score`` is
    ``quality``, the number the chain uses to judge the answer.
    """

    score: float
    stages: list[StageVerdict]
    used_judge: bool
    # which stage made the cascade stop ("" when every configured stage ran)
    decided_by: str = ""
    latency_ms: float = 0.0
    # 1.0 when no fidelity stage ran (no evidence against the registered model)
    fidelity: float = 1.0

    @property
    def quality(self) -> float:
        """The answer's quality (the same number as ``score``)."""
        return self.score

    @property
    def score_ppm(self) -> int:
        """The quality as the chain's integer ppm (see :func:`to_ppm`)."""
        return to_ppm(self.score)

    @property
    def quality_ppm(self) -> int:
        """The quality as the chain's integer ppm."""
        return to_ppm(self.score)

    @property
    def fidelity_ppm(self) -> int:
        """The fidelity as the chain's integer ppm."""
        return to_ppm(self.fidelity)

    def stage(self, name: str) -> StageVerdict | None:
        """The verdict of the stage called ``name``, or None when it did not run."""
        for s in self.stages:
            if s.name == name:
                return s
        return None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the offline scorer's output row, the validator's logs)."""
        return {
            "score": self.score,
            "score_ppm": self.score_ppm,
            "quality": self.score,
            "quality_ppm": self.quality_ppm,
            "fidelity": self.fidelity,
            "fidelity_ppm": self.fidelity_ppm,
            "used_judge": self.used_judge,
            "decided_by": self.decided_by,
            "latency_ms": round(self.latency_ms, 3),
            "stages": [
                {"name": s.name, "score": s.score, "latency_ms": round(s.latency_ms, 3), "detail": s.detail}
                for s in self.stages
            ],
        }


def to_ppm(score: float) -> int:
    """``score`` in [0, 1] as an integer in [0, 1_000_000], rounded half up; out-of-range values are clamped.

    NaN is refused: a pipeline that produced it is broken, and committing a
    made-up number would be worse than failing the task.
    """
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise TypeError(f"score must be a number, got {score!r}")
    if math.isnan(score):
        raise ValueError("score is NaN: the scoring pipeline produced no number")
    clamped = min(1.0, max(0.0, float(score)))
    return min(PPM, max(0, math.floor(clamped * PPM + 0.5)))


def clamp01(x: float) -> float:
    """``x`` limited to [0, 1] (NaN becomes 0: a signal that could not be measured counts as no evidence of quality)."""
    if math.isnan(x):
        return 0.0
    return min(1.0, max(0.0, x))


def ramp(x: float, lo: float, hi: float) -> float:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between: how stages map a raw signal to [0, 1]."""
    if hi <= lo:
        return 1.0 if x >= hi else 0.0
    return clamp01((x - lo) / (hi - lo))
