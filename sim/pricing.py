"""Simulation `pricing` (pending): does the dynamic price follow demand? (PolyLink; SPEC §3.7)

To come, once chain/modules/pricing exists: users whose demand for a model
steps up and down (bursts above and below the target utilisation) and
workers whose capacity changes; read the per-block price back with the
pricing query and check that it rises while demand is above the target,
falls back to base_price when it is below, never moves more than
1/adjust_denominator per block, and stays within [base_price, max_price].
"""

from __future__ import annotations

from sim.framework import pending

SIMULATION = pending(
    "pricing",
    "Dynamic pricing under changing demand (PolyLink)",
    "the pricing module (chain/modules/pricing, SPEC §3.7)",
    [
        (
            "PolyLink, abstract",
            "we integrate a comprehensive token-based incentive model with dynamic pricing and reward "
            "mechanisms for all participants.",
        )
    ],
)
