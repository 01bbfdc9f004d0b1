"""Offline scoring of a JSONL file (``polylink validator score --input rows.jsonl --output scores.jsonl``).

Each input line is a JSON object with at least ``prompt`` and ``response``
and, optionally, ``temperature`` (the request's sampling temperature, 0 =
greedy, the default: the fidelity stage tests the answer against it); every
other field is kept. Each output line is the input row plus
``score`` and ``score_ppm`` (the quality, the integer the chain uses to
judge the answer), ``quality``/``quality_ppm``, ``fidelity``/``fidelity_ppm``,
``used_judge``, ``decided_by``, ``latency_ms`` and ``stages`` (each stage's
name, score, latency and detail). Rows are scored one after another, in
file order, with one :class:`~validator.scoring.Scorer`; each new prompt is
prepared first, as the validator prepares it when the request appears, so
``latency_ms`` is the scoring path alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chain.modules.inference.msg_server import MAX_TEMPERATURE_PPM
from validator.scoring.cascade import Scorer
from validator.scoring.config import ScoringConfig
from validator.scoring.verdict import PPM

MAX_TEMPERATURE = MAX_TEMPERATURE_PPM / PPM  # the chain's bound on a request's temperature


class OfflineInputError(ValueError):
    """A line of the input file is not a JSON object with string ``prompt`` and ``response``."""


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file; blank lines are skipped, a bad line raises naming its number."""
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise OfflineInputError(f"{path}:{n}: not JSON: {e.msg}") from None
            if not isinstance(row, dict):
                raise OfflineInputError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
            for key in ("prompt", "response"):
                if not isinstance(row.get(key), str):
                    raise OfflineInputError(f"{path}:{n}: {key!r} must be a string")
            t = row.get("temperature", 0.0)
            if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= MAX_TEMPERATURE:
                raise OfflineInputError(
                    f"{path}:{n}: 'temperature' must be a number in [0, {MAX_TEMPERATURE:g}] (0 = greedy)"
                )
            rows.append(row)
    return rows


async def score_file(
    input_path: Path | str,
    output_path: Path | str,
    config: ScoringConfig | None = None,
    *,
    scorer: Scorer | None = None,
) -> int:
    """Score every row of ``input_path`` into ``output_path``; returns the number of rows written.

    The input is read and checked in full before any model loads, so a bad
    line fails fast. ``scorer`` (already started) is used instead of a new
    one when given.
    """
    rows = read_rows(Path(input_path))
    out = Path(output_path)
    if scorer is not None:
        return await _write(rows, out, scorer)
    async with Scorer(config) as own:
        return await _write(rows, out, own)


async def _write(rows: list[dict[str, Any]], out: Path, scorer: Scorer) -> int:
    tmp = out.with_name(out.name + ".tmp")
    prepared = None
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            if row["prompt"] != prepared:
                await scorer.prepare(row["prompt"])
                prepared = row["prompt"]
            verdict = await scorer.score(row["prompt"], row["response"], temperature=float(row.get("temperature", 0.0)))
            f.write(json.dumps({**row, **verdict.as_dict()}, ensure_ascii=False, default=str) + "\n")
    tmp.replace(out)
    return len(rows)
