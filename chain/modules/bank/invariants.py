"""bank invariants: the sum of balances is the total supply; no balance is negative."""

from __future__ import annotations

from chain.app.module import Invariant
from chain.core.coins import Coins
from chain.core.context import Context
from chain.modules.bank.keeper import BankKeeper


def total_supply(k: BankKeeper) -> Invariant:
    def check(ctx: Context) -> str | None:
        total = Coins()
        for _addr, coins in k.iterate_balances(ctx):
            total = total + coins  # Coins() rejects negative amounts on construction
        supply = k.total_supply(ctx)
        if total != supply:
            return f"sum of balances {total} != total supply {supply}"
        return None

    return check
