"""The pricing module as the app sees it."""

from __future__ import annotations

from polylink.pricing.v1 import query_pb2, types_pb2

from chain.app.module import Invariant, ModuleBase, QueryRoute, query_routes_for
from chain.core.consensus import ValidatorUpdate
from chain.core.context import Context, ExecMode
from chain.modules.pricing import genesis, invariants
from chain.modules.pricing.keeper import PricingKeeper
from chain.modules.pricing.params import validate_params
from chain.modules.pricing.query_server import QueryServer

__all__ = ["PricingModule"]


class PricingModule(ModuleBase):
    name = "pricing"
    genesis = genesis
    params = (types_pb2.Params, validate_params)
    keeper: PricingKeeper

    def query_routes(self) -> list[QueryRoute]:
        q = QueryServer(self.keeper)
        return query_routes_for(
            "polylink.pricing.v1.Query",
            {
                "Params": (query_pb2.QueryParamsRequest, q.params),
                "Price": (query_pb2.QueryPriceRequest, q.price),
                "Prices": (query_pb2.QueryPricesRequest, q.prices),
                "History": (query_pb2.QueryHistoryRequest, q.history),
            },
        )

    def end_block(self, ctx: Context) -> list[ValidatorUpdate]:
        """Step the prices of the models in use with this block's demand (not at InitChain, which
        also runs end_block: genesis prices must import unchanged)."""
        if ctx.mode != ExecMode.GENESIS:
            self.keeper.end_block(ctx)
        return []

    def invariants(self) -> list[tuple[str, Invariant]]:
        return [
            ("pricing/bounds", invariants.prices_in_bounds(self.keeper)),
            ("pricing/demand", invariants.demand_cleared(self.keeper)),
        ]
