"""Every simulation, in the order `make sim` runs them (add a module, then a line here)."""

from __future__ import annotations

from sim import incentives, pricing, rating, sybil
from sim.framework import Simulation

SIMULATIONS: list[Simulation] = [
    rating.SIMULATION,
    pricing.SIMULATION,
    sybil.SIMULATION,
    incentives.SIMULATION,
]


def by_name(name: str) -> Simulation:
    for s in SIMULATIONS:
        if s.name == name:
            return s
    raise KeyError(f"unknown simulation {name!r}; known: {', '.join(s.name for s in SIMULATIONS)}")
