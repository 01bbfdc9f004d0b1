"""TIQE scoring pipeline on the labelled evaluation set: quality (AUC) and cost (latency, judge share).

``run()`` scores every row of ``tests/data/tiqe_eval/rows.jsonl`` with the
real pipeline and the embedded models (``make bench BENCH=tiqe_stages``
once registered; ``scripts/eval_tiqe.py`` prints the full table).
:func:`evaluate` is the shared core.

Figures: ``relevance_p50_ms``, ``cascade_p50_ms``, ``cascade_p95_ms``,
``judge_share``, ``auc_overall`` and ``auc_<kind>`` (good answers against
each kind of bad one), and ``<stage>_p50_ms`` / ``<stage>_p95_ms`` /
``<stage>_share`` for every stage (its latency when it ran, and the share of
answers it ran on).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from validator.scoring import Scorer, ScoringConfig, Verdict

ROOT = Path(__file__).resolve().parent.parent.parent
EVAL_ROWS = ROOT / "tests" / "data" / "tiqe_eval" / "rows.jsonl"
BAD_KINDS = ("off_topic", "wrong", "garbled", "injection")
PASS_AT = 0.5  # pass_ppm 500_000, the chain's default
STAGES = ("injection", "garble", "relevance", "specificity", "reference", "fidelity", "order", "judge")


def load_rows(path: Path = EVAL_ROWS) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half): ROC AUC."""
    if not positives or not negatives:
        return float("nan")
    wins = 0.0
    for p in positives:
        for n in negatives:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(positives) * len(negatives))


def quantile(values: Iterable[float], q: float) -> float:
    """The ``q`` quantile by linear interpolation between closest ranks (NaN when empty)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


MODEL_GOOD = ("greedy", "sampled")


def aucs(
    rows: Sequence[Mapping[str, Any]], scores: Sequence[float], good_variants: Sequence[str] | None = None
) -> dict[str, float]:
    """AUC of good answers (all, or only ``good_variants``) against all bad ones, each bad kind and variant."""
    good = [
        s
        for r, s in zip(rows, scores, strict=True)
        if r["label"] == "good" and (good_variants is None or r["variant"] in good_variants)
    ]
    out = {"overall": auc(good, [s for r, s in zip(rows, scores, strict=True) if r["label"] == "bad"])}
    for kind in sorted({str(r["kind"]) for r in rows if r["label"] == "bad"} | set(BAD_KINDS)):
        out[kind] = auc(good, [s for r, s in zip(rows, scores, strict=True) if r["kind"] == kind])
    variants = sorted({(r["kind"], r["variant"]) for r in rows if r["label"] == "bad"})
    for kind, variant in variants:
        bad = [s for r, s in zip(rows, scores, strict=True) if r["kind"] == kind and r["variant"] == variant]
        out[f"{kind}/{variant}"] = auc(good, bad)
    return out


async def score_rows(
    rows: Sequence[Mapping[str, Any]], config: ScoringConfig | None = None
) -> tuple[list[Verdict], list[float]]:
    """Score each row in turn; returns the verdicts and the milliseconds each prompt's preparation took.

    A validator prepares a prompt (:meth:`Scorer.prepare`: its reference
    answer) when the request appears on chain, while the worker generates;
    here each prompt is prepared just before its first answer is scored, and
    that time is reported apart from the cascade's.
    """
    verdicts: list[Verdict] = []
    prepare_ms: list[float] = []
    prepared: set[str] = set()
    async with Scorer(config) as scorer:
        for r in rows:
            if r["prompt"] not in prepared:
                t0 = time.perf_counter()
                await scorer.prepare(r["prompt"])
                prepare_ms.append((time.perf_counter() - t0) * 1000)
                prepared.add(r["prompt"])
            verdicts.append(await scorer.score(r["prompt"], r["response"]))
    return verdicts, prepare_ms


def summarize(
    rows: Sequence[Mapping[str, Any]], verdicts: Sequence[Verdict], prepare_ms: Sequence[float] = ()
) -> dict[str, Any]:
    """Every figure of the evaluation, from the rows and their verdicts."""
    scores = [v.score for v in verdicts]
    n = len(verdicts)
    report: dict[str, Any] = {"rows": n, "auc": aucs(rows, scores)}
    # good = what an honest worker returns: the registered model's own answers (greedy and sampled)
    report["auc_model_good"] = {k: v for k, v in aucs(rows, scores, MODEL_GOOD).items() if "/" not in k}
    # the same AUCs over the two halves of the prompts: a rule tuned to single rows would differ between them
    halves: dict[str, dict[str, float]] = {}
    order = {pid: n for n, pid in enumerate(dict.fromkeys(str(r["prompt_id"]) for r in rows))}
    for half in (0, 1):
        keep = [i for i, r in enumerate(rows) if order[str(r["prompt_id"])] % 2 == half]
        halves["odd" if half else "even"] = aucs([rows[i] for i in keep], [scores[i] for i in keep])
    report["auc_by_prompt_half"] = halves
    good_variants = sorted({r["variant"] for r in rows if r["label"] == "good"})
    bad = [s for r, s in zip(rows, scores, strict=True) if r["label"] == "bad"]
    report["auc_by_good_variant"] = {
        v: auc([s for r, s in zip(rows, scores, strict=True) if r["label"] == "good" and r["variant"] == v], bad)
        for v in good_variants
    }
    report["pass_rate_at_0.5"] = {
        group: _share(s >= PASS_AT for r, s in zip(rows, scores, strict=True) if _group(r) == group)
        for group in sorted({_group(r) for r in rows})
    }
    if all("source" in r for r in rows):
        report["by_split"] = _breakdown(rows, scores, "split")
        report["by_source"] = _breakdown(rows, scores, "source")
    report["judge_share"] = _share(v.used_judge for v in verdicts)
    # fidelity: the registered model's own answers against everything written by someone else
    fid = [v.fidelity for v in verdicts]
    report["fidelity_auc_model_vs_human"] = auc(
        [f for r, f in zip(rows, fid, strict=True) if r["label"] == "good" and r["variant"] in MODEL_GOOD],
        [f for r, f in zip(rows, fid, strict=True) if r["label"] == "good" and r["variant"] not in MODEL_GOOD],
    )
    report["decided_by"] = {
        name: _share(v.decided_by == name for v in verdicts) for name in sorted({v.decided_by for v in verdicts})
    }
    latency: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        ms = [s.latency_ms for v in verdicts for s in v.stages if s.name == stage]
        latency[stage] = {
            "p50_ms": quantile(ms, 0.5),
            "p95_ms": quantile(ms, 0.95),
            "share": len(ms) / n if n else 0.0,
        }
    # the reference generation, once per prompt (in prepare, or in the cascade when it was not prepared)
    ref_cold = list(prepare_ms) + [
        s.latency_ms for v in verdicts for s in v.stages if s.name == "reference" and not s.detail.get("cached", True)
    ]
    latency["reference_cold"] = {"p50_ms": quantile(ref_cold, 0.5), "p95_ms": quantile(ref_cold, 0.95)}
    total = [v.latency_ms for v in verdicts]
    latency["cascade"] = {"p50_ms": quantile(total, 0.5), "p95_ms": quantile(total, 0.95), "max_ms": max(total)}
    report["latency"] = latency
    return report


def _breakdown(rows: Sequence[Mapping[str, Any]], scores: Sequence[float], field: str) -> dict[str, Any]:
    """Per value of ``field`` (a row's source or split): the AUCs by kind and each kind's pass rate at PASS_AT."""
    out: dict[str, Any] = {}
    for value in sorted({str(r[field]) for r in rows}):
        keep = [i for i, r in enumerate(rows) if str(r[field]) == value]
        sub, sc = [rows[i] for i in keep], [scores[i] for i in keep]
        out[value] = {
            "rows": len(sub),
            "auc": {k: v for k, v in aucs(sub, sc).items() if "/" not in k and not math.isnan(v)},
            "pass_rate": {
                kind: _share(s >= PASS_AT for r, s in zip(sub, sc, strict=True) if r["kind"] == kind)
                for kind in sorted({str(r["kind"]) for r in sub})
            },
        }
    return out


def _group(row: Mapping[str, Any]) -> str:
    return f"good/{row['variant']}" if row["label"] == "good" else str(row["kind"])


def _share(flags: Iterable[bool]) -> float:
    xs = list(flags)
    return sum(xs) / len(xs) if xs else float("nan")


def evaluate(
    rows: Sequence[Mapping[str, Any]] | None = None, config: ScoringConfig | None = None
) -> tuple[dict[str, Any], list[Verdict]]:
    """Score ``rows`` (default: the evaluation set) and summarize; returns the report and the verdicts."""
    rows = list(rows) if rows is not None else load_rows()
    started = time.perf_counter()
    verdicts, prepare_ms = asyncio.run(score_rows(rows, config))
    report = summarize(rows, verdicts, prepare_ms)
    report["wall_s"] = time.perf_counter() - started
    return report, verdicts


def run() -> dict[str, Any]:
    """The bench figures (flat), for ``scripts/bench.py``."""
    report, _ = evaluate()
    lat = report["latency"]
    figures: dict[str, Any] = {
        "rows": report["rows"],
        "relevance_p50_ms": lat["relevance"]["p50_ms"],
        "cascade_p50_ms": lat["cascade"]["p50_ms"],
        "cascade_p95_ms": lat["cascade"]["p95_ms"],
        "judge_share": report["judge_share"],
    }
    for key, value in report["auc"].items():
        if "/" not in key:
            figures[f"auc_{key}"] = value
    for stage in STAGES:
        figures[f"{stage}_p50_ms"] = lat[stage]["p50_ms"]
        figures[f"{stage}_p95_ms"] = lat[stage]["p95_ms"]
        figures[f"{stage}_share"] = lat[stage]["share"]
    figures["reference_cold_p50_ms"] = lat["reference_cold"]["p50_ms"]
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
