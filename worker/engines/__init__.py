"""Inference engines: the :class:`Engine` contract and its backends (llama.cpp, OpenAI-compatible HTTP, vLLM).

Backends import their heavy dependencies (llama_cpp, vllm) only when started,
so importing this package is cheap and works without them.
"""

from __future__ import annotations

from dataclasses import replace

import httpx

from worker.engines.base import (
    ENGINE_KINDS,
    Engine,
    EngineConfig,
    EngineConfigError,
    EngineError,
    EngineKind,
    Generation,
    GenerationParams,
)
from worker.engines.llamacpp import LlamaCppEngine
from worker.engines.openai import OpenAIEngine
from worker.engines.vllm import VLLMEngine

__all__ = [
    "ENGINE_KINDS",
    "Engine",
    "EngineConfig",
    "EngineConfigError",
    "EngineError",
    "EngineKind",
    "Generation",
    "GenerationParams",
    "LlamaCppEngine",
    "OpenAIEngine",
    "VLLMEngine",
    "make_engine",
]


def make_engine(cfg: EngineConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> Engine:
    """The engine ``cfg.kind`` names, not yet started: use it as ``async with make_engine(cfg) as engine``.

    ``transport`` replaces the network for the openai engine (tests pass an
    ``httpx.MockTransport``); the other engines do not use HTTP.
    """
    engine: Engine
    if cfg.kind == "llamacpp":
        engine = LlamaCppEngine(cfg)
    elif cfg.kind == "openai":
        engine = OpenAIEngine(cfg, transport=transport)
    elif cfg.kind == "vllm":
        engine = VLLMEngine(cfg)
    else:
        raise EngineConfigError(f"unknown engine kind {cfg.kind!r}; expected one of {', '.join(ENGINE_KINDS)}")
    if cfg.degrade:
        from worker.engines.degraded import DegradedEngine

        substitute = None
        if cfg.degrade == "substitute":
            assert cfg.substitute_model_path is not None  # EngineConfig checks it
            substitute = LlamaCppEngine(
                replace(
                    cfg,
                    model_path=cfg.substitute_model_path,
                    expected_sha256=None,
                    degrade="",
                    substitute_model_path=None,
                )
            )
        return DegradedEngine(engine, cfg.degrade, substitute=substitute)
    return engine
