"""The degraded engine used to stage the model-degradation attack: it spoils a real engine's output."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from worker.engines import make_engine
from worker.engines.base import EngineConfig, EngineConfigError, GenerationParams
from worker.engines.degraded import NOISE_TEMPERATURE, OFF_TOPIC_PROMPT, DegradedEngine
from worker.engines.fake import FakeEngine

PARAMS = GenerationParams(max_tokens=50, temperature=0.0)


def run_with(mode: str, prompt: str) -> tuple[str, FakeEngine]:
    inner = FakeEngine(answer=lambda p, _params: f"one two three four five six seven eight for {p}")

    async def body() -> str:
        async with DegradedEngine(inner, mode) as eng:
            return (await eng.generate(prompt, PARAMS)).text

    return asyncio.run(body()), inner


def test_shuffle_keeps_the_words_but_not_their_order_deterministically() -> None:
    a, inner = run_with("shuffle", "q")
    b, _ = run_with("shuffle", "q")
    clean = "one two three four five six seven eight for q"
    assert a == b and a != clean and sorted(a.split()) == sorted(clean.split())
    assert inner.calls[0][0] == "q"


def test_offtopic_answers_another_prompt_and_noise_raises_the_temperature() -> None:
    text, inner = run_with("offtopic", "What is 2+2?")
    assert inner.calls[0][0] == OFF_TOPIC_PROMPT and OFF_TOPIC_PROMPT in text
    _, inner = run_with("noise", "q")
    assert inner.calls[0][1].temperature == NOISE_TEMPERATURE


def test_config_selects_and_validates_the_mode() -> None:
    eng = make_engine(EngineConfig.from_dict({"kind": "llamacpp", "degrade": "shuffle"}))
    assert isinstance(eng, DegradedEngine) and eng.name == "llamacpp+degraded-shuffle"
    assert not isinstance(make_engine(EngineConfig.from_dict({"kind": "llamacpp"})), DegradedEngine)
    with pytest.raises(EngineConfigError, match="degrade"):
        EngineConfig.from_dict({"kind": "llamacpp", "degrade": "sabotage"})


def test_substitute_answers_with_the_other_engine_and_starts_and_stops_both() -> None:
    inner = FakeEngine(answer=lambda p, _params: f"registered: {p}")
    sub = FakeEngine(answer=lambda p, _params: f"substitute: {p}")

    async def body() -> str:
        async with DegradedEngine(inner, "substitute", substitute=sub) as eng:
            return (await eng.generate("q", PARAMS)).text

    assert asyncio.run(body()) == "substitute: q"
    assert inner.calls == [] and [c[0] for c in sub.calls] == ["q"]
    with pytest.raises(ValueError, match="substitute"):
        DegradedEngine(inner, "substitute")
    with pytest.raises(ValueError, match="substitute"):
        DegradedEngine(inner, "shuffle", substitute=sub)


def test_substitute_config_needs_a_path_and_a_local_engine(tmp_path: Path) -> None:
    eng = make_engine(
        EngineConfig.from_dict(
            {"kind": "llamacpp", "degrade": "substitute", "substitute_model_path": "sub.gguf"}, base_dir=tmp_path
        )
    )
    assert isinstance(eng, DegradedEngine) and eng.substitute is not None
    assert eng.substitute._cfg.model_path == tmp_path / "sub.gguf"  # type: ignore[attr-defined]
    assert eng.substitute._cfg.expected_sha256 is None  # type: ignore[attr-defined]
    with pytest.raises(EngineConfigError, match="substitute_model_path"):
        EngineConfig.from_dict({"kind": "llamacpp", "degrade": "substitute"})
    with pytest.raises(EngineConfigError, match="substitute_model_path"):
        EngineConfig.from_dict({"kind": "llamacpp", "substitute_model_path": "sub.gguf"})
    with pytest.raises(EngineConfigError, match="llamacpp"):
        EngineConfig.from_dict(
            {
                "kind": "openai",
                "base_url": "http://127.0.0.1:1",
                "model_name": "m",
                "degrade": "substitute",
                "substitute_model_path": "sub.gguf",
            }
        )
