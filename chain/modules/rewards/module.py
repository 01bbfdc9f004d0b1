"""The rewards module as the app sees it."""

from __future__ import annotations

from polylink.rewards.v1 import query_pb2, types_pb2

from chain.app.module import Invariant, ModuleBase, QueryRoute, query_routes_for
from chain.core.context import Context
from chain.modules.rewards import genesis, invariants
from chain.modules.rewards.keeper import RewardsKeeper
from chain.modules.rewards.params import validate_params
from chain.modules.rewards.query_server import QueryServer

__all__ = ["RewardsModule"]


class RewardsModule(ModuleBase):
    name = "rewards"
    genesis = genesis
    params = (types_pb2.Params, validate_params)
    keeper: RewardsKeeper

    def query_routes(self) -> list[QueryRoute]:
        q = QueryServer(self.keeper)
        return query_routes_for(
            "polylink.rewards.v1.Query",
            {
                "Params": (query_pb2.QueryParamsRequest, q.params),
                "Totals": (query_pb2.QueryTotalsRequest, q.totals),
                "Emission": (query_pb2.QueryEmissionRequest, q.emission),
            },
        )

    def begin_block(self, ctx: Context) -> None:
        """Mint the block reward and pay it to the bonded validators by power."""
        self.keeper.begin_block(ctx)

    def invariants(self) -> list[tuple[str, Invariant]]:
        return [
            ("rewards/supply", invariants.supply_accounted(self.keeper)),
            ("rewards/emission", invariants.totals_consistent(self.keeper)),
        ]
