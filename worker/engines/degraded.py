"""A degraded engine: the model-degradation attack TIQE must catch (tests and demos only).

It wraps a real engine on the right, digest-checked weights and spoils what
comes out, the way a cheating or broken worker would: garbled word order, an
answer to some other prompt, decoding at a temperature that turns text
into noise, or (``substitute``) another model's answer while the digest
check sees the registered weights. Workers choose it with `degrade = "..."`
in their `[engine]` table; an honest configuration never sets it.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from types import TracebackType
from typing import Self

from worker.engines.base import Engine, Generation, GenerationParams

OFF_TOPIC_PROMPT = "Describe the rules of chess in detail."
NOISE_TEMPERATURE = 4.0


class DegradedEngine:
    def __init__(self, inner: Engine, mode: str, *, substitute: Engine | None = None) -> None:
        if (mode == "substitute") != (substitute is not None):
            raise ValueError("the substitute mode needs a substitute engine, and only it")
        self.inner = inner
        self.mode = mode
        self.substitute = substitute
        self.name = f"{inner.name}+degraded-{mode}"

    async def __aenter__(self) -> Self:
        await self.inner.__aenter__()
        if self.substitute is not None:
            try:
                await self.substitute.__aenter__()
            except BaseException:
                await self.inner.__aexit__(None, None, None)
                raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.substitute is not None:
                await self.substitute.__aexit__(exc_type, exc, tb)
        finally:
            await self.inner.__aexit__(exc_type, exc, tb)

    def __getattr__(self, name: str) -> object:
        # weights_sha256, model_path, ...: the digest check sees the real weights
        return getattr(self.inner, name)

    async def generate(self, prompt: str, params: GenerationParams) -> Generation:
        if self.substitute is not None:
            return await self.substitute.generate(prompt, params)
        if self.mode == "offtopic":
            return await self.inner.generate(OFF_TOPIC_PROMPT, params)
        if self.mode == "noise":
            return await self.inner.generate(prompt, replace(params, temperature=NOISE_TEMPERATURE, top_p=1.0))
        out = await self.inner.generate(prompt, params)
        words = out.text.split()
        seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
        random.Random(seed).shuffle(words)
        return replace(out, text=" ".join(words))
