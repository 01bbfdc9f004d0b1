"""The plug-in interface every simulation implements, and what it hands back.

A simulation is a `Simulation(name, title, run)`; `run(options)` drives the
chain (`sim.chain.SimChain`), writes its figures under `options.out` and
returns an `Outcome`: the seed claims it tests, each with the paper's own
words, our figure and a verdict, plus a table for stdout and report.md.
A simulation whose modules do not exist yet returns `pending(...)`: it
states the claim and what it waits for, and runs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class Verdict(Enum):
    HOLDS = "holds"
    PARTLY = "partly holds"
    FAILS = "does not hold"
    PENDING = "not run yet"


@dataclass(frozen=True)
class Claim:
    """One claim of a seed paper, checked against one of our figures."""

    source: str  # where it is said, e.g. "Fortytwo §3.3.2, figures 3-5"
    quote: str  # the paper's words, verbatim
    figure: str  # what we measured (or why nothing was)
    verdict: Verdict
    test: str = ""  # the rule the verdict follows, stated before running


@dataclass
class Outcome:
    name: str
    title: str
    claims: list[Claim]
    # rows for stdout and report.md: the first row is the header
    table: list[list[str]] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # markdown paragraphs (method, caveats)
    seconds: float = 0.0
    pending: str = ""  # non-empty: what the simulation waits for; nothing ran
    at: str = ""  # when it ran (UTC), set by the runner


@dataclass(frozen=True)
class Options:
    out: Path  # where figures go (sim/results by default)
    quick: bool = False  # a short run (tests, smoke checks): fewer rounds and seeds
    plots: bool = True  # False: no matplotlib needed
    jobs: int = 2  # worker processes for independent runs (seeds)
    progress: Callable[[str], None] = print


@dataclass(frozen=True)
class Simulation:
    name: str
    title: str
    run: Callable[[Options], Outcome]


def pending(name: str, title: str, needs: str, claims: list[tuple[str, str]]) -> Simulation:
    """A simulation that cannot run until `needs` exists: its outcome names the claims
    ((source, quote) pairs) it will test and what it waits for."""

    def run(_: Options) -> Outcome:
        cs = [Claim(src, quote, f"not measured: needs {needs}", Verdict.PENDING) for src, quote in claims]
        return Outcome(name, title, cs, pending=needs)

    return Simulation(name, title, run)
