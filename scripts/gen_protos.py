"""Generate Python protobuf/gRPC classes into gen/ (never committed).

CometBFT's ABCI protos and gogoproto's annotations come from the Go module
cache (`go mod download -json MODULE@VERSION` prints the module's folder); our
own schemas come from proto/. google/protobuf/*.proto ship with grpcio-tools.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent

COMETBFT_PROTOS = [
    "tendermint/abci/types.proto",
    "tendermint/crypto/proof.proto",
    "tendermint/crypto/keys.proto",
    "tendermint/types/params.proto",
    "tendermint/types/validator.proto",
]
GOGOPROTO_PROTOS = ["gogoproto/gogo.proto"]


def module_dir(module: str, version: str) -> Path:
    """Folder of a Go module in the local module cache (downloaded if missing)."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        check=True, capture_output=True, text=True,
    )
    info = json.loads(out.stdout)
    if info.get("Error"):
        raise SystemExit(f"go mod download {module}@{version}: {info['Error']}")
    return Path(info["Dir"])


def gogoproto_version(cometbft_dir: Path) -> str:
    for line in (cometbft_dir / "go.mod").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "github.com/cosmos/gogoproto":
            return parts[1]
        if len(parts) >= 2 and parts[0] == "require" and parts[1] == "github.com/cosmos/gogoproto":
            return parts[2]
    raise SystemExit("gogoproto version not found in cometbft's go.mod")


def run_protoc(includes: list[Path], out: Path, files: list[str], grpc: bool) -> None:
    args = ["protoc", *[f"-I{p}" for p in includes], f"--python_out={out}", f"--pyi_out={out}"]
    if grpc:
        args.append(f"--grpc_python_out={out}")
    args += files
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {files}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cometbft-version", required=True)
    ap.add_argument("--out", default="gen")
    a = ap.parse_args()
    out = (ROOT / a.out).resolve()
    cmt = module_dir("github.com/cometbft/cometbft", a.cometbft_version)
    gogo = module_dir("github.com/cosmos/gogoproto", gogoproto_version(cmt))
    std = Path(grpc_tools.__file__).parent / "_proto"
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    run_protoc([cmt / "proto", gogo, std], tmp, COMETBFT_PROTOS, grpc=False)
    run_protoc([gogo, std], tmp, GOGOPROTO_PROTOS, grpc=False)
    ours = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))
    run_protoc([ROOT / "proto", std], tmp, ours, grpc=True)
    for d in [tmp, *[p for p in tmp.rglob("*") if p.is_dir()]]:
        if d != tmp:
            (d / "__init__.py").touch()
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    # Make gen/ importable from the project's virtualenv.
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site / "polylink_gen.pth").write_text(str(out) + "\n")
    print(f"generated {len(COMETBFT_PROTOS) + len(GOGOPROTO_PROTOS) + len(ours)} proto files into {out}")


if __name__ == "__main__":
    main()
