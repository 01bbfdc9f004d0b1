"""`make bench [BENCH=name]`: run benchmarks; each writes bench/results/<name>.json and prints a table."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCHES = {
    "throughput": "tests.bench.throughput",
    "worker": "tests.bench.worker",
    "tiqe": "tests.bench.tiqe",
    "gateway": "tests.bench.gateway",
    "fuzz": "tests.bench.fuzz",
    "faults": "tests.bench.faults",
}


def write_result(name: str, figures: dict[str, object]) -> Path:
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out.write_text(json.dumps({"bench": name, "at": at, **figures}, indent=1))
    return out


def print_table(name: str, figures: dict[str, object]) -> None:
    width = max(len(k) for k in figures)
    print(f"\n== {name} ==")
    for k, v in figures.items():
        if isinstance(v, float):
            v = f"{v:.3f}"
        elif isinstance(v, list) and len(v) > 3:  # a log: in the json file, not the table
            v = f"[{len(v)} entries: see the json file]"
        print(f"  {k:<{width}}  {v}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(BENCHES)}")
    a = ap.parse_args()
    names = a.names or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {sorted(BENCHES)}", file=sys.stderr)
        return 2
    for n in names:
        figures = importlib.import_module(BENCHES[n]).run()
        path = write_result(n, figures)
        print_table(n, figures)
        print(f"  -> {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
