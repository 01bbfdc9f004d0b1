"""rewards invariants."""

from __future__ import annotations

from chain.app.module import Invariant
from chain.core.coins import BOND_DENOM
from chain.core.context import Context
from chain.modules.rewards.keeper import RewardsKeeper


def supply_accounted(k: RewardsKeeper) -> Invariant:
    """initial supply + minted - burned == total supply of the bond denom, every block."""

    def check(ctx: Context) -> str | None:
        initial = k.get_initial_supply(ctx)
        minted = int(k.get_totals(ctx).minted)
        burned = k.bk.get_burned(ctx, BOND_DENOM)
        supply = k.bk.get_supply(ctx, BOND_DENOM)
        if initial + minted - burned != supply:
            return f"initial supply {initial} + minted {minted} - burned {burned} != supply {supply}"
        return None

    return check


def totals_consistent(k: RewardsKeeper) -> Invariant:
    """What emission paid out adds up to what it minted."""

    def check(ctx: Context) -> str | None:
        t = k.get_totals(ctx)
        paid = int(t.emission_to_validators) + int(t.emission_to_community)
        if paid != int(t.minted):
            return f"emission paid {paid} != minted {t.minted}"
        return None

    return check
