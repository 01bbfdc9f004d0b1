"""Simulation `incentives` (pending): do rewards follow quality and stake? (PolyLink, SPEC §3.8)

To come, once the rewards module pays results and committees: workers of
different true quality and validators of different stake and scoring noise
(honest, lazy, outlier); after many blocks, each one's earnings (bank
balances and delegation rewards) against its quality or stake x rating,
and whether an honest strategy out-earns a lazy or a deviating one.
"""

from __future__ import annotations

from sim.framework import pending

SIMULATION = pending(
    "incentives",
    "Incentive alignment: rewards vs. quality and stake (PolyLink)",
    "the rewards module (SPEC §3.8: worker, committee and royalty shares, block emission)",
    [
        (
            "PolyLink, key results",
            "Reward distribution mechanisms ensure fair allocation based on model quality scores and validator "
            "stakes, with results validating the effectiveness of the incentive model.",
        )
    ],
)
