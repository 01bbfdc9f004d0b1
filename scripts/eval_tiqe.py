"""Score the TIQE evaluation set with the real pipeline; print AUCs, judge share and latencies; write a JSON report.

    .venv/bin/python scripts/eval_tiqe.py [--config validator.toml] [--out tiqe_eval.json] [--rows FILE]

Good answers are scored against each kind of bad answer (ROC AUC: the
chance that a random good answer scores above a random bad one). Latency is
per stage (when it ran) and for the whole cascade, on this machine, with the
embedded models unless ``--config`` names other ones (its ``[scoring]``
table). The report also has every row's score and verdict, and the AUCs on
the two halves of the prompts (a rule tuned to single rows shows it there).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench.tiqe_stages import EVAL_ROWS, STAGES, evaluate, load_rows  # noqa: E402
from validator.scoring import ScoringConfig  # noqa: E402

TARGETS = {
    "auc": 0.90,
    "judge_share": 0.30,
    "relevance_p50_ms": 10.0,
    "cascade_p50_ms": 125.0,
    "cascade_p95_ms": 1500.0,
}


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _print_breakdown(title: str, table: dict[str, dict]) -> None:
    """One line per split or source: AUC overall and per bad kind, then the pass rates at pass_ppm."""
    kinds = sorted({k for t in table.values() for k in t["pass_rate"] if k != "good"})
    print(f"\n  {title.replace('_', ' ')}: AUC (good vs ...) | share passing pass_ppm")
    print(
        f"    {'':<14} {'all':>6} "
        + " ".join(f"{k[:9]:>9}" for k in kinds)
        + f" | {'good':>5} "
        + " ".join(f"{k[:9]:>9}" for k in kinds)
    )
    for name, t in table.items():
        auc_cells = " ".join(f"{t['auc'].get(k, float('nan')):9.3f}" for k in kinds)
        rates = t["pass_rate"]
        pass_cells = " ".join(f"{rates.get(k, float('nan')):9.2f}" for k in kinds)
        good = rates.get("good", float("nan"))
        print(f"    {name:<14} {t['auc'].get('overall', float('nan')):6.3f} {auc_cells} | {good:5.2f} {pass_cells}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=Path, default=EVAL_ROWS, help="labelled JSONL (default: the evaluation set)")
    ap.add_argument("--config", type=Path, help="a TOML file whose [scoring] table configures the pipeline")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tiqe_eval.json", help="JSON report")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N rows")
    args = ap.parse_args()

    config = ScoringConfig()
    if args.config:
        table = tomllib.loads(args.config.read_text()).get("scoring", {})
        config = ScoringConfig.from_dict(table, base_dir=args.config.resolve().parent)
    rows = load_rows(args.rows)
    if args.limit:
        rows = rows[: args.limit]
    report, verdicts = evaluate(rows, config)
    report["config"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(config).items()}
    report["verdicts"] = [
        {k: row[k] for k in ("id", "kind", "variant", "label")} | v.as_dict()
        for row, v in zip(rows, verdicts, strict=True)
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n")

    print(f"\nTIQE evaluation: {report['rows']} rows, {report['wall_s']:.0f} s\n")
    print(f"  {'good vs':<28} {'AUC':>6}")
    for key, value in report["auc"].items():
        indent = "    " if "/" in key else ""
        flag = "" if "/" in key else f"  {_mark(value >= TARGETS['auc'])}"
        print(f"  {indent + key:<28} {value:6.3f}{flag}")
    print("\n  good = the registered model's own answers only (greedy, sampled) vs")
    for key, value in report["auc_model_good"].items():
        print(f"    {key:<26} {value:6.3f}")
    print("\n  AUC by good-answer source (against all bad answers)")
    for key, value in report["auc_by_good_variant"].items():
        print(f"    {key:<26} {value:6.3f}")
    print("\n  AUC on each half of the prompts (overall / wrong)")
    for half, figures in report["auc_by_prompt_half"].items():
        print(f"    {half:<26} {figures['overall']:6.3f} / {figures['wrong']:.3f}")
    print("\n  share scoring >= 0.5")
    for group, share in report["pass_rate_at_0.5"].items():
        print(f"    {group:<26} {share:6.2f}")
    for field in ("by_split", "by_source"):
        if field in report:
            _print_breakdown(field, report[field])
    judge = report["judge_share"]
    print(f"\n  judge share {judge:.3f}  {_mark(judge <= TARGETS['judge_share'])}")
    print("  decided by  " + ", ".join(f"{k} {v:.2f}" for k, v in report["decided_by"].items()))
    lat = report["latency"]
    print(f"\n  {'latency (ms)':<18} {'p50':>8} {'p95':>8} {'ran on':>7}")
    for stage in STAGES:
        s = lat[stage]
        print(f"  {stage:<18} {s['p50_ms']:8.1f} {s['p95_ms']:8.1f} {s['share']:7.2f}")
    cold = lat["reference_cold"]
    print(f"  {'prepare (per prompt)':<18} {cold['p50_ms']:8.1f} {cold['p95_ms']:8.1f}   (off the scoring path)")
    c = lat["cascade"]
    print(f"  {'cascade':<18} {c['p50_ms']:8.1f} {c['p95_ms']:8.1f}   (max {c['max_ms']:.0f})")
    rel = lat["relevance"]["p50_ms"]
    print(
        f"\n  targets: relevance p50 <= 10 ms {_mark(rel <= TARGETS['relevance_p50_ms'])}, "
        f"cascade p50 <= 125 ms {_mark(c['p50_ms'] <= TARGETS['cascade_p50_ms'])}, "
        f"p95 <= 1500 ms {_mark(c['p95_ms'] <= TARGETS['cascade_p95_ms'])}"
    )

    print(f"\n  report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
