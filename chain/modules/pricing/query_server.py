"""pricing queries, served over the last committed state (gRPC and ABCI Query)."""

from __future__ import annotations

from polylink.pricing.v1 import query_pb2

from chain.core.context import Context
from chain.core.errors import ErrInvalidRequest, ErrNotFound
from chain.modules.pricing.expected import Model
from chain.modules.pricing.keeper import PricingKeeper


class QueryServer:
    def __init__(self, k: PricingKeeper) -> None:
        self.k = k

    def _model(self, ctx: Context, model_id: str) -> Model:
        if not model_id:
            raise ErrInvalidRequest.wrap("model_id is required")
        m = self.k.registry.get_model(ctx, model_id)
        if m is None:
            raise ErrNotFound.wrap(f"model {model_id}")
        return m

    def params(self, ctx: Context, req: query_pb2.QueryParamsRequest) -> query_pb2.QueryParamsResponse:
        return query_pb2.QueryParamsResponse(params=self.k.get_params(ctx))

    def price(self, ctx: Context, req: query_pb2.QueryPriceRequest) -> query_pb2.QueryPriceResponse:
        return query_pb2.QueryPriceResponse(price=self.k.get_price(ctx, self._model(ctx, req.model_id)))

    def prices(self, ctx: Context, req: query_pb2.QueryPricesRequest) -> query_pb2.QueryPricesResponse:
        items, page = self.k.prices_page(ctx, req.pagination)
        return query_pb2.QueryPricesResponse(prices=items, pagination=page)

    def history(self, ctx: Context, req: query_pb2.QueryHistoryRequest) -> query_pb2.QueryHistoryResponse:
        self._model(ctx, req.model_id)
        points, page = self.k.history_page(ctx, req.model_id, req.pagination)
        return query_pb2.QueryHistoryResponse(points=points, pagination=page)
