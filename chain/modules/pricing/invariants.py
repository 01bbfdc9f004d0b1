"""pricing invariants (checked after every block when the app's invariant period is set)."""

from __future__ import annotations

from chain.app.module import Invariant
from chain.core.coins import parse_amount
from chain.core.context import Context
from chain.modules.pricing.keeper import PricingKeeper


def prices_in_bounds(k: PricingKeeper) -> Invariant:
    """Every stored price lies in [base, max(cap, base)] of a registered model, and the
    ABOVE_BASE index names exactly the models priced above their base."""

    def check(ctx: Context) -> str | None:
        cap = parse_amount(k.get_params(ctx).max_price)
        above = []
        for mp in k.stored_prices(ctx):
            model = k.registry.get_model(ctx, mp.model_id)
            if model is None:
                return f"price of unregistered model {mp.model_id!r}"
            price, base = parse_amount(mp.price), parse_amount(model.base_price)
            if not base <= price <= max(cap, base):
                return f"{mp.model_id}: price {price} outside [{base}, {max(cap, base)}]"
            if price > base:
                above.append(mp.model_id)
        if k.above_base(ctx) != above:
            return f"above-base index {k.above_base(ctx)} != models priced above base {above}"
        return None

    return check


def demand_cleared(k: PricingKeeper) -> Invariant:
    """No block's demand outlives its EndBlock, and history points stay within the window."""

    def check(ctx: Context) -> str | None:
        if k.pending_demand(ctx):
            return f"demand left after the block: {k.pending_demand(ctx)}"
        window = k.get_params(ctx).history_blocks
        for model_id in k.history_models(ctx):
            points = k.history(ctx, model_id)
            if any(pt.height + window <= ctx.height for pt in points):
                return f"{model_id}: history older than {window} blocks"
        return None

    return check
