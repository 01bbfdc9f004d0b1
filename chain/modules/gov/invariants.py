"""gov invariants: the gov account holds exactly the deposits of open proposals."""

from __future__ import annotations

from chain.app.module import Invariant
from chain.core.coins import Coins
from chain.core.context import Context
from chain.modules.gov.keeper import GOV_MODULE, OPEN, GovKeeper


def deposits_held(k: GovKeeper) -> Invariant:
    """gov module balance == sum of deposits; each open proposal's total_deposit == sum of its deposits;
    deposits exist only for open proposals."""

    def check(ctx: Context) -> str | None:
        per_proposal: dict[int, Coins] = {}
        for d in k.iterate_deposits(ctx):
            per_proposal[d.proposal_id] = per_proposal.get(d.proposal_id, Coins()) + Coins.from_proto(d.amount)
        total = Coins()
        for amount in per_proposal.values():
            total = total + amount
        held = k.bk.get_all_balances(ctx, k.ak.module_address(GOV_MODULE))
        if held != total:
            return f"gov account holds {held}, deposits sum to {total}"
        open_ids = set()
        for p in k.iterate_proposals(ctx):
            if p.status in OPEN:
                open_ids.add(p.id)
                if Coins.from_proto(p.total_deposit) != per_proposal.get(p.id, Coins()):
                    return f"proposal {p.id}: total_deposit {Coins.from_proto(p.total_deposit)} != its deposits"
        stray = sorted(set(per_proposal) - open_ids)
        if stray:
            return f"deposits of proposals that are not open: {stray}"
        return None

    return check
