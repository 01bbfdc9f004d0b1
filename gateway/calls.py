"""`Call`: one checked OpenAI call, the input of `inference.InferenceService.run` (pure data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PPM = 1_000_000

Kind = Literal["chat", "text"]


@dataclass(frozen=True)
class Options:
    """The body's `polylink` object; None = the gateway's configured default."""

    min_quality_ppm: int | None = None
    redundancy: int | None = None
    timeout_s: float | None = None
    max_price: str | None = None


@dataclass(frozen=True)
class Call:
    """What the chain request is built from (`kind` only shapes the response)."""

    kind: Kind
    model: str
    prompt: str
    max_tokens: int | None = None
    temperature_ppm: int = 0
    top_p_ppm: int = PPM
    seed: int = 0
    stream: bool = False
    include_usage: bool = False
    options: Options = field(default_factory=Options)
