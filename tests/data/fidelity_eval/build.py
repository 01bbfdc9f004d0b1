"""The fidelity eval: does TIQE's fidelity tell the registered model's answers from a substitute's?

    .venv/bin/python tests/data/fidelity_eval/build.py generate   # answers.jsonl (about 10 minutes on 2 cores)
    .venv/bin/python tests/data/fidelity_eval/build.py score      # fidelity of every answer, the AUCs

``generate`` answers each prompt with the registered model (SmolLM2-135M-Instruct
Q4_1, digest checked) and with each substitute that
``scripts/make_substitute.py`` made (its ``manifest.json``), each greedily and
sampled (temperature 0.7, top_p 0.95, seeded), through the worker's own
:class:`~worker.engines.LlamaCppEngine` (what a worker serves). Prompts: the
40 of ``tests/data/tiqe_eval/prompts.json`` (general questions) and up to
20 held-out documentation prompts of ``tests/data/tiqe_eval/eval_v2.jsonl``
(18 today).

``score`` measures every answer with the validator's own fidelity stage
(:meth:`validator.scoring.Scorer.fidelity`, the registered weights) and
reports the AUC of registered against each substitute (greedy, sampled and
both) and the share of each model's answers below ``min_fidelity_ppm``; empty
answers are counted and not scored. Row fields: ``id``, ``prompt_id``,
``prompt``, ``response``, ``model`` ("registered" or a substitute's name),
``variant`` ("greedy" | "sampled"), ``finish_reason``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
sys.path.insert(0, str(ROOT))

ANSWERS = HERE / "answers.jsonl"
REPORT = ROOT / "bench" / "results" / "fidelity_eval.json"
SEED = 20261207
MAX_TOKENS = 64
SAMPLED = {"temperature": 0.7, "top_p": 0.95}
DOC_PROMPTS = 20
# the chain's default min_fidelity_ppm (chain/modules/tiqe/params.py), as a share; the chain applies it
# to the worker's fidelity EMA, so a share of single answers below it is only indicative
MIN_FIDELITY = 0.4


def prompts() -> list[dict[str, str]]:
    from tests.bench.tiqe_stages import load_rows

    general = json.loads((ROOT / "tests" / "data" / "tiqe_eval" / "prompts.json").read_text())
    out = [{"id": p["id"], "prompt": p["prompt"]} for p in general]
    seen: set[str] = set()
    for r in load_rows(ROOT / "tests" / "data" / "tiqe_eval" / "eval_v2.jsonl"):
        if r["split"] == "heldout" and r["kind"] == "good" and r["prompt_id"].endswith("0") and r["prompt"] not in seen:
            seen.add(r["prompt"])
            out.append({"id": r["prompt_id"], "prompt": r["prompt"]})
    return out[: len(general) + DOC_PROMPTS]


def models() -> list[tuple[str, Path, str | None]]:
    """(name, path, expected sha256 or None) of the registered model and each substitute made."""
    from worker.models import EMBEDDED_MODEL, embedded_gguf_path

    sys.path.insert(0, str(ROOT / "scripts"))
    from make_substitute import DEFAULT_CACHE

    out: list[tuple[str, Path, str | None]] = [("registered", embedded_gguf_path(), EMBEDDED_MODEL.sha256)]
    manifest = DEFAULT_CACHE / "manifest.json"
    if not manifest.is_file():
        sys.exit(f"error: no substitutes: {manifest} is missing; run scripts/make_substitute.py first")
    for name, entry in sorted(json.loads(manifest.read_text())["files"].items()):
        out.append((name, Path(entry["path"]), entry["sha256"]))
    return out


async def generate() -> None:
    from worker.engines import EngineConfig, GenerationParams, LlamaCppEngine

    ps = prompts()
    rows: list[dict[str, Any]] = []
    for name, path, digest in models():
        cfg = EngineConfig(kind="llamacpp", model_path=path, expected_sha256=digest, n_ctx=2048, n_threads=2)
        started = time.perf_counter()
        async with LlamaCppEngine(cfg) as engine:
            for n, p in enumerate(ps):
                for variant, params in (
                    ("greedy", GenerationParams(max_tokens=MAX_TOKENS)),
                    ("sampled", GenerationParams(max_tokens=MAX_TOKENS, seed=SEED + n, **SAMPLED)),
                ):
                    g = await engine.generate(p["prompt"], params)
                    rows.append(
                        {
                            "id": f"{p['id']}-{name}-{variant}",
                            "prompt_id": p["id"],
                            "prompt": p["prompt"],
                            "response": g.text,
                            "model": name,
                            "variant": variant,
                            "finish_reason": g.finish_reason,
                        }
                    )
        print(f"{name}: {len(ps)} prompts x 2 in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    with open(ANSWERS, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} answers -> {ANSWERS}")


async def score(out: Path) -> dict[str, Any]:
    from tests.bench.tiqe_stages import auc, load_rows
    from validator.scoring import Scorer

    rows = load_rows(ANSWERS)
    # an empty answer is refused on quality and says nothing about its model's weights: counted, not scored
    empty: dict[str, int] = {}
    for r in rows:
        if not r["response"].strip():
            empty[r["model"]] = empty.get(r["model"], 0) + 1
    rows = [r for r in rows if r["response"].strip()]
    fid: list[float] = []
    details: list[dict[str, Any]] = []
    async with Scorer() as scorer:
        for i, r in enumerate(rows):
            t = SAMPLED["temperature"] if r["variant"] == "sampled" else 0.0  # the request's, as the chain has it
            f, detail = await scorer.fidelity(r["prompt"], r["response"], temperature=t)
            fid.append(f)
            details.append(detail)
            if (i + 1) % 50 == 0:
                print(f"  scored {i + 1}/{len(rows)}", file=sys.stderr, flush=True)

    def of(model: str, variant: str | None = None) -> list[float]:
        return [f for r, f in zip(rows, fid, strict=True) if r["model"] == model and variant in (None, r["variant"])]

    report: dict[str, Any] = {"rows": len(rows), "empty_answers": empty, "auc": {}, "below_min_fidelity": {}}
    for model in sorted({r["model"] for r in rows}):
        report["below_min_fidelity"][model] = {
            v or "all": sum(f < MIN_FIDELITY for f in fs) / max(1, len(fs))
            for v in (None, "greedy", "sampled")
            for fs in [of(model, v)]
        }
        if model == "registered":
            continue
        report["auc"][model] = {v or "all": auc(of("registered", v), of(model, v)) for v in (None, "greedy", "sampled")}
    report["answers"] = [
        {"id": r["id"], "model": r["model"], "variant": r["variant"], "fidelity": round(f, 4), **d}
        for r, f, d in zip(rows, fid, details, strict=True)
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"\nfidelity eval: {len(rows)} answers (registered vs substitute, AUC; share below {MIN_FIDELITY})")
    for model, figures in report["auc"].items():
        cells = "  ".join(f"{k} {v:.3f}" for k, v in figures.items())
        print(f"  {model:<22} AUC {cells}")
    for model, shares in report["below_min_fidelity"].items():
        cells = "  ".join(f"{k} {v:.2f}" for k, v in shares.items())
        print(f"  {model:<22} below {cells}")
    for model, n in empty.items():
        print(f"  {model:<22} {n} empty answers, not scored")
    print(f"  report: {out}")
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("generate", "score"), help="generate the answers, or score them")
    ap.add_argument("--out", type=Path, default=REPORT, help=f"the score step's JSON report (default {REPORT})")
    args = ap.parse_args()
    if args.step == "generate":
        asyncio.run(generate())
    else:
        asyncio.run(score(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
