"""What `make sim` leaves behind: <name>.json per simulation, report.md over all of them
(claims, figures, tables), and a table on stdout.

Each run saves its outcome as <name>.json and rebuilds report.md from every saved one, so
`make sim SIM=<name>` refreshes one section and keeps the others.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from sim.framework import Claim, Outcome, Verdict


def save_outcome(out: Path, o: Outcome) -> Path:
    path = out / f"{o.name}.json"
    data = asdict(o)
    data["claims"] = [{**asdict(c), "verdict": c.verdict.value} for c in o.claims]
    data["figures"] = [str(f) for f in o.figures]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


def load_outcome(path: Path) -> Outcome:
    d = json.loads(path.read_text())
    claims = [Claim(**{**c, "verdict": Verdict(c["verdict"])}) for c in d["claims"]]
    return Outcome(
        d["name"], d["title"], claims, d["table"], [Path(f) for f in d["figures"]], d["notes"], d["seconds"],
        d["pending"], d["at"],
    )  # fmt: skip


def saved_outcomes(out: Path, names: Sequence[str]) -> list[Outcome]:
    """The saved outcomes of `names` (in that order) that exist under `out`."""
    return [load_outcome(out / f"{n}.json") for n in names if (out / f"{n}.json").exists()]


def table_lines(rows: Sequence[Sequence[str]], markdown: bool) -> list[str]:
    if not rows:
        return []
    if markdown:
        out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        return out + ["| " + " | ".join(r) + " |" for r in rows[1:]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def write_report(path: Path, outcomes: Sequence[Outcome]) -> Path:
    lines = [
        "# PolyLink simulations",
        "",
        "Written by `make sim`. Each simulation drives the chain's real state machine "
        "(docs/SIMULATIONS.md says how); each claim is quoted from its seed paper and set against our figure.",
        "",
        "## Summary",
        "",
    ]
    lines += table_lines(summary_rows(outcomes), markdown=True)
    for o in outcomes:
        lines += ["", f"## `{o.name}`: {o.title}", ""]
        if o.pending:
            lines += [f"Not run yet: needs {o.pending}.", ""]
        for c in o.claims:
            lines += [
                f"- **Claim** ({c.source}): \"{c.quote}\"",
                f"  - **Ours**: {c.figure}",
                f"  - **Verdict**: {c.verdict.value}" + (f" ({c.test})" if c.test else ""),
            ]
        if o.table:
            lines += ["", *table_lines(o.table, markdown=True)]
        for f in o.figures:
            rel = f.relative_to(path.parent) if f.is_relative_to(path.parent) else f
            lines += ["", f"![{f.stem}]({rel})"]
        if o.notes:
            lines += ["", *(f"- {n}" for n in o.notes)]
        if not o.pending:
            lines += ["", f"Ran in {o.seconds:.0f} s (wall), {o.at}."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def summary_rows(outcomes: Sequence[Outcome]) -> list[list[str]]:
    rows = [["simulation", "claim", "verdict", "seconds"]]
    for o in outcomes:
        for c in o.claims:
            rows.append([o.name, c.source, c.verdict.value, "-" if o.pending else f"{o.seconds:.0f}"])
    return rows


def print_outcome(o: Outcome) -> None:
    print(f"\n== {o.name}: {o.title} ==")
    if o.pending:
        print(f"  not run yet: needs {o.pending}")
    for line in table_lines(o.table, markdown=False):
        print("  " + line)
    for c in o.claims:
        print(f"  [{c.verdict.value}] {c.source}: {c.figure}")
    for f in o.figures:
        print(f"  -> {f}")
