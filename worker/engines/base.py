"""The engine contract: what the worker asks of any inference backend.

An engine turns one prompt into one :class:`Generation`. Its resources (a
loaded model, an HTTP client, a GPU engine) belong to exactly one owner, the
engine's own async context manager: ``__aenter__`` acquires them and
``__aexit__`` releases them. The worker receives an :class:`Engine`, so its
tests pass a fake while production passes llama.cpp, an OpenAI-compatible
server or vLLM.

:class:`EngineConfig` is the worker's TOML ``[engine]`` table, parsed and
validated by :meth:`EngineConfig.from_dict`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self, get_args

EngineKind = Literal["llamacpp", "openai", "vllm"]
ENGINE_KINDS: tuple[str, ...] = get_args(EngineKind)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class EngineError(Exception):
    """An engine could not start or could not generate; the message says what and, where it can, how to fix it."""


class EngineConfigError(EngineError, ValueError):
    """The ``[engine]`` configuration is invalid."""


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters of one request. ``temperature == 0`` means greedy decoding."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature!r}")
        if not (0 < self.top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")


@dataclass(frozen=True)
class Generation:
    """One answer: its text, token counts as the engine reports them, why it stopped, and wall time."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    # "stop" (end of answer), "length" (hit max_tokens) or whatever the backend reports.
    finish_reason: str
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        """Completion tokens per second of wall time (prompt processing included)."""
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


class Engine(Protocol):
    """An inference backend whose lifecycle is one ``async with`` block."""

    name: str  # "llamacpp" | "openai" | "vllm"

    async def __aenter__(self) -> Self:
        """Load the model or open the client; raise :class:`EngineError` when that is impossible."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release everything ``__aenter__`` acquired."""
        ...

    async def generate(self, prompt: str, params: GenerationParams) -> Generation:
        """Answer ``prompt``, sent as one user chat message through the model's chat template."""
        ...


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class EngineConfig:
    """Which engine to run and its options (the worker's ``[engine]`` table).

    ``llamacpp``: ``model_path`` (default: the embedded GGUF), ``expected_sha256``,
    ``n_ctx``, ``n_threads`` (default: the CPU count shared among ``instances``),
    ``instances`` (Llama objects serving requests in parallel).
    ``openai``: ``base_url``, ``model_name`` (both required), ``api_key``,
    ``stream``, ``timeout_s``, ``connect_retries``.
    ``vllm``: ``model_name`` (a Hugging Face id) or ``model_path`` (a local
    model folder), ``n_ctx``.
    ``extra`` goes to the backend unchanged: ``Llama(**extra)``, the JSON body of
    each chat completion request, or ``AsyncEngineArgs(**extra)``.
    ``degrade`` (tests and demos of the model-degradation defence only; empty
    in production): "shuffle" garbles each answer's word order, "offtopic"
    answers an unrelated prompt, "noise" samples at a very high temperature,
    all on the right, digest-checked weights; "substitute" checks the
    registered weights but answers with another model, the GGUF at
    ``substitute_model_path`` (the model-substitution attack, which TIQE's
    fidelity number catches).
    """

    kind: EngineKind
    model_path: Path | None = None
    expected_sha256: str | None = None
    n_ctx: int = 2048
    n_threads: int | None = None
    instances: int = 1
    base_url: str | None = None
    model_name: str | None = None
    api_key: str | None = None
    stream: bool = False
    timeout_s: float = 120.0
    connect_retries: int = 2
    extra: Mapping[str, Any] = field(default_factory=dict)
    degrade: str = ""
    substitute_model_path: Path | None = None

    def __post_init__(self) -> None:
        if self.degrade not in DEGRADE_MODES:
            raise EngineConfigError(f"degrade must be one of {DEGRADE_MODES}; got {self.degrade!r}")
        if (self.degrade == "substitute") != (self.substitute_model_path is not None):
            raise EngineConfigError('degrade = "substitute" and substitute_model_path go together; set both or neither')
        if self.degrade == "substitute" and self.kind != "llamacpp":
            raise EngineConfigError(f'degrade = "substitute" needs engine kind llamacpp; got {self.kind!r}')
        if self.kind not in ENGINE_KINDS:
            raise EngineConfigError(f"engine kind must be one of {', '.join(ENGINE_KINDS)}; got {self.kind!r}")
        if self.expected_sha256 is not None and not _SHA256_HEX.fullmatch(self.expected_sha256):
            raise EngineConfigError(
                f"expected_sha256 must be 64 lower-case hex characters; got {self.expected_sha256!r}"
            )
        for name in ("n_ctx", "instances"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise EngineConfigError(f"{name} must be an integer >= 1; got {value!r}")
        if self.n_threads is not None and (not _is_int(self.n_threads) or self.n_threads < 1):
            raise EngineConfigError(f"n_threads must be an integer >= 1; got {self.n_threads!r}")
        if not _is_int(self.connect_retries) or self.connect_retries < 0:
            raise EngineConfigError(f"connect_retries must be an integer >= 0; got {self.connect_retries!r}")
        if isinstance(self.timeout_s, bool) or not (
            isinstance(self.timeout_s, int | float) and math.isfinite(self.timeout_s) and self.timeout_s > 0
        ):
            raise EngineConfigError(f"timeout_s must be a number of seconds > 0; got {self.timeout_s!r}")
        if self.kind == "openai":
            missing = [name for name in ("base_url", "model_name") if not getattr(self, name)]
            if missing:
                raise EngineConfigError(f"engine kind 'openai' needs {' and '.join(missing)}")
            assert self.base_url is not None
            if not self.base_url.startswith(("http://", "https://")):
                raise EngineConfigError(f"base_url must start with http:// or https://; got {self.base_url!r}")
        if self.kind == "vllm" and self.model_path is None and not self.model_name:
            raise EngineConfigError(
                "engine kind 'vllm' needs model_name (a Hugging Face model id) or model_path (a local model folder)"
            )

    @classmethod
    def from_dict(cls, table: Mapping[str, object], *, base_dir: Path | None = None) -> EngineConfig:
        """Parse the ``[engine]`` table of a worker's TOML config.

        Unknown keys and values of the wrong type raise :class:`EngineConfigError`
        naming the key. A relative ``model_path`` is taken relative to
        ``base_dir`` (the config file's folder) when given.
        """
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in table if k not in known)
        if unknown:
            raise EngineConfigError(f"unknown key(s) in [engine]: {', '.join(unknown)}; known keys: {', '.join(known)}")
        if "kind" not in table:
            raise EngineConfigError(f"[engine] needs kind = one of {', '.join(repr(k) for k in ENGINE_KINDS)}")
        kwargs: dict[str, Any] = {}
        for key, value in table.items():
            kwargs[key] = _parse_value(key, value, base_dir)
        return cls(**kwargs)


_STR_KEYS = ("kind", "expected_sha256", "base_url", "model_name", "api_key", "degrade")
DEGRADE_MODES = ("", "shuffle", "offtopic", "noise", "substitute")
_INT_KEYS = ("n_ctx", "n_threads", "instances", "connect_retries")


def _parse_value(key: str, value: object, base_dir: Path | None) -> object:
    where = f"[engine] {key}"
    if key in _STR_KEYS:
        if not isinstance(value, str):
            raise EngineConfigError(f"{where} must be a string; got {value!r}")
        return value.lower() if key == "expected_sha256" else value
    if key in _INT_KEYS:
        if not _is_int(value):
            raise EngineConfigError(f"{where} must be an integer; got {value!r}")
        return value
    if key in ("model_path", "substitute_model_path"):
        if not isinstance(value, str) or not value:
            raise EngineConfigError(f"{where} must be a non-empty path string; got {value!r}")
        path = Path(value).expanduser()
        return base_dir / path if base_dir is not None and not path.is_absolute() else path
    if key == "stream":
        if not isinstance(value, bool):
            raise EngineConfigError(f"{where} must be true or false; got {value!r}")
        return value
    if key == "timeout_s":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EngineConfigError(f"{where} must be a number of seconds; got {value!r}")
        return float(value)
    if key == "extra":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise EngineConfigError(f"{where} must be a table of options; got {value!r}")
        return dict(value)
    raise AssertionError(f"no parser for [engine] key {key!r}")  # pragma: no cover - keys are checked first
