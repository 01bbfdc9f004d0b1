"""rewards queries, served over the last committed state (gRPC and ABCI Query)."""

from __future__ import annotations

from polylink.rewards.v1 import query_pb2

from chain.core.coins import BOND_DENOM
from chain.core.context import Context
from chain.modules.rewards.keeper import RewardsKeeper


class QueryServer:
    def __init__(self, k: RewardsKeeper) -> None:
        self.k = k

    def params(self, ctx: Context, req: query_pb2.QueryParamsRequest) -> query_pb2.QueryParamsResponse:
        return query_pb2.QueryParamsResponse(params=self.k.get_params(ctx))

    def totals(self, ctx: Context, req: query_pb2.QueryTotalsRequest) -> query_pb2.QueryTotalsResponse:
        return query_pb2.QueryTotalsResponse(totals=self.k.get_totals(ctx))

    def emission(self, ctx: Context, req: query_pb2.QueryEmissionRequest) -> query_pb2.QueryEmissionResponse:
        return query_pb2.QueryEmissionResponse(
            block_reward=self.k.get_params(ctx).block_reward or "0",
            initial_supply=str(self.k.get_initial_supply(ctx)),
            minted=self.k.get_totals(ctx).minted,
            total_supply=str(self.k.bk.get_supply(ctx, BOND_DENOM)),
            community_pool=str(self.k.bk.get_balance(ctx, self.k.community_address(), BOND_DENOM)),
            burned=str(self.k.bk.get_burned(ctx, BOND_DENOM)),
        )
