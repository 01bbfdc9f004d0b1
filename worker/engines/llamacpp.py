"""An engine running GGUF models in this process with llama-cpp-python (CPU).

A ``Llama`` object is not safe to use from two threads at once, so the engine
keeps a pool of ``instances`` of them: each request takes one from the queue,
runs on that instance's own thread so the event loop stays free, and gives it
back when the thread is done, even when the caller was cancelled.

One OS thread per instance, for its whole life (load, every generation,
close), not a hop between the threads of ``asyncio.to_thread``'s pool: this
CPU build of llama.cpp runs on OpenMP, whose worker team belongs to the
calling thread and spins for a while after each call, and teams left by
other threads spin against the new one (measured in the validator's
:mod:`validator.scoring.registered_model`: about 3x slower generation on a
2-core machine).
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from worker.engines.base import EngineConfig, EngineError, Generation, GenerationParams
from worker.models import ModelNotFoundError, embedded_gguf_path, sha256_file

if TYPE_CHECKING:
    from llama_cpp import Llama


@dataclass(frozen=True)
class _Instance:
    """A loaded model and the one thread that ever touches it."""

    llm: Llama
    thread: ThreadPoolExecutor


class LlamaCppEngine:
    """Chat completions with llama.cpp on a pool of ``cfg.instances`` loaded copies of the model."""

    name: str = "llamacpp"

    def __init__(self, cfg: EngineConfig) -> None:
        if cfg.kind != "llamacpp":
            raise EngineError(f"LlamaCppEngine needs an EngineConfig of kind 'llamacpp', got {cfg.kind!r}")
        self._cfg = cfg
        self._instances: list[_Instance] = []
        self._pool: asyncio.Queue[_Instance] | None = None
        self._model_path: Path | None = None
        self._sha256: str | None = None

    @property
    def model_path(self) -> Path:
        """The GGUF file being served (known once started)."""
        if self._model_path is None:
            raise EngineError("the llamacpp engine is not started: use it inside `async with engine:`")
        return self._model_path

    @property
    def weights_sha256(self) -> str:
        """sha256 of the GGUF file, computed at start-up; compare it with the model's registered digest."""
        if self._sha256 is None:
            raise EngineError("the llamacpp engine is not started: use it inside `async with engine:`")
        return self._sha256

    async def __aenter__(self) -> Self:
        cfg = self._cfg
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise EngineError(
                "llama-cpp-python is not installed: run `make setup` (it builds it with portable AVX2 flags)"
            ) from e
        try:
            path = cfg.model_path if cfg.model_path is not None else embedded_gguf_path()
        except ModelNotFoundError as e:
            raise EngineError(str(e)) from e
        if not path.is_file():
            raise EngineError(f"model file not found: {path}")
        digest = await asyncio.to_thread(sha256_file, path)
        if cfg.expected_sha256 is not None and digest != cfg.expected_sha256:
            raise EngineError(
                f"model file {path} has sha256 {digest}, but {cfg.expected_sha256} was expected: "
                "the weights differ from the registered model"
            )
        n_threads = cfg.n_threads or max(1, (os.cpu_count() or 1) // cfg.instances)
        kwargs: dict[str, Any] = {
            "model_path": str(path),
            "n_ctx": cfg.n_ctx,
            "n_threads": n_threads,
            "verbose": False,
            "seed": 0,
            **cfg.extra,
        }
        pool: asyncio.Queue[_Instance] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        try:
            for i in range(cfg.instances):
                thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llamacpp-{i}")
                try:
                    llm = await loop.run_in_executor(thread, lambda: Llama(**kwargs))
                except BaseException:
                    thread.shutdown(wait=True)
                    raise
                inst = _Instance(llm, thread)
                self._instances.append(inst)
                pool.put_nowait(inst)
        except Exception as e:
            self._close_all()
            raise EngineError(f"llama.cpp could not load {path}: {type(e).__name__}: {e}") from e
        self._pool = pool
        self._model_path = path
        self._sha256 = digest
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Wait until every instance is back: a thread may still be decoding
            # for a request whose caller was cancelled.
            for _ in range(len(self._instances)):
                await pool.get()
        self._close_all()

    def _close_all(self) -> None:
        instances, self._instances = self._instances, []
        for inst in instances:
            inst.thread.submit(inst.llm.close).result()
            inst.thread.shutdown(wait=True)

    async def generate(self, prompt: str, params: GenerationParams) -> Generation:
        pool = self._pool
        if pool is None:
            raise EngineError("the llamacpp engine is not started: use it inside `async with engine:`")
        inst = await pool.get()
        started = time.perf_counter()
        work = asyncio.get_running_loop().run_in_executor(inst.thread, _chat, inst.llm, prompt, params)

        def give_back(done: asyncio.Future[dict[str, Any]]) -> None:
            if not done.cancelled():
                done.exception()  # retrieved here so an abandoned failure is not logged as unhandled
            pool.put_nowait(inst)

        work.add_done_callback(give_back)
        # shield: cancelling the caller must not hand the instance back while
        # its thread is still running; give_back runs when the thread ends.
        try:
            result = await asyncio.shield(work)
        except EngineError:
            raise
        except Exception as e:
            raise EngineError(f"llama.cpp failed to generate: {type(e).__name__}: {e}") from e
        seconds = time.perf_counter() - started
        try:
            choice = result["choices"][0]
            usage = result["usage"]
            return Generation(
                text=choice["message"].get("content") or "",
                prompt_tokens=int(usage["prompt_tokens"]),
                completion_tokens=int(usage["completion_tokens"]),
                finish_reason=str(choice.get("finish_reason") or "unknown"),
                seconds=seconds,
            )
        except (KeyError, IndexError, TypeError) as e:
            raise EngineError(f"llama.cpp returned an unexpected result: {result!r}") from e


def _chat(llm: Llama, prompt: str, params: GenerationParams) -> dict[str, Any]:
    result = llm.create_chat_completion(
        messages=[{"role": "user", "content": prompt}],
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        seed=params.seed,
        stream=False,
    )
    if not isinstance(result, dict):  # stream=False always gives one response
        raise EngineError("llama.cpp streamed although stream=False was asked")
    return dict(result)
