"""`make sim [SIM=name]` / `python -m sim [names] [--quick]`: run simulations, write sim/results/report.md."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from sim.framework import Options, Outcome
from sim.registry import SIMULATIONS, by_name
from sim.report import print_outcome, save_outcome, saved_outcomes, summary_rows, table_lines, write_report

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    ap.add_argument("names", nargs="*", help=f"simulations (default all): {', '.join(s.name for s in SIMULATIONS)}")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where report.md and the figures go")
    ap.add_argument("--quick", action="store_true", help="short runs (fewer rounds and seeds): a smoke check")
    ap.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 4), help="processes for independent runs")
    ap.add_argument("--no-plots", action="store_true", help="skip the PNGs (no matplotlib needed)")
    a = ap.parse_args(argv)
    try:
        sims = [by_name(n) for n in a.names] if a.names else list(SIMULATIONS)
    except KeyError as e:
        print(e.args[0], file=sys.stderr)
        return 2
    opts = Options(out=a.out, quick=a.quick, plots=not a.no_plots, jobs=a.jobs)
    outcomes: list[Outcome] = []
    t0 = time.monotonic()
    for s in sims:
        print(f"==> {s.name}: {s.title}", flush=True)
        o = s.run(opts)
        o.at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        if a.quick and not o.pending:
            o.notes.append("A quick run (--quick): fewer rounds and seeds, a smoke check; not figures to quote.")
        outcomes.append(o)
        save_outcome(a.out, o)
        print_outcome(o)
    # report.md covers every simulation saved so far, this run's and earlier ones
    report = write_report(a.out / "report.md", saved_outcomes(a.out, [s.name for s in SIMULATIONS]))
    print("\n== summary (this run) ==")
    for line in table_lines(summary_rows(outcomes), markdown=False):
        print("  " + line)
    print(f"\n{len(outcomes)} simulation(s) in {time.monotonic() - t0:.0f} s -> {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
