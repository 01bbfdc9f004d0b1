"""Simulation `sybil` (pending): do tickets make Sybil identities unprofitable? (Fortytwo §4.1, figure 6)

To come, once the rewards module settles swarms (SPEC §3.8: the winner takes
the worker share; workers below pass_ppm forfeit their ticket to it): an
attacker runs m of the N workers of a swarm (n > 1 requests) with low-quality
answers, for N from 10 to 500 and ticket_ppm from 0 to a few percent of the
per-worker fee; its profit (rewards minus forfeited tickets, slashes and
fees, read from bank balances) per request, mapped like figure 6 with the
break-even line.
"""

from __future__ import annotations

from sim.framework import pending

SIMULATION = pending(
    "sybil",
    "Sybil profitability vs. ticket size (Fortytwo figure 6)",
    "the rewards module's swarm settlement with tickets (SPEC §3.8)",
    [
        (
            "Fortytwo §4.1.2, figure 6",
            "In summary, the graph demonstrates that setting a ticket price as low as 1% of the potential "
            "reward is sufficient to make an attack unprofitable, even in a moderately sized agent swarm",
        )
    ],
)
