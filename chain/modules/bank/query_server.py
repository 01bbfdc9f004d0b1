"""bank queries, served over the last committed state (gRPC and ABCI Query)."""

from __future__ import annotations

from polylink.bank.v1 import query_pb2
from polylink.base.v1 import coin_pb2

from chain.core.address import from_bech32
from chain.core.coins import check_denom
from chain.core.context import Context
from chain.core.query import paginate
from chain.core.store import PrefixStore
from chain.modules.bank import keys
from chain.modules.bank.keeper import BankKeeper


def _coin(k: bytes, v: bytes) -> coin_pb2.Coin:
    return coin_pb2.Coin(denom=k.decode(), amount=v.decode())


class QueryServer:
    def __init__(self, k: BankKeeper) -> None:
        self.k = k

    def balance(self, ctx: Context, req: query_pb2.QueryBalanceRequest) -> query_pb2.QueryBalanceResponse:
        amt = self.k.get_balance(ctx, req.address, check_denom(req.denom))
        return query_pb2.QueryBalanceResponse(balance=coin_pb2.Coin(denom=req.denom, amount=str(amt)))

    def all_balances(
        self, ctx: Context, req: query_pb2.QueryAllBalancesRequest
    ) -> query_pb2.QueryAllBalancesResponse:
        store = PrefixStore(ctx.kv(keys.NAMESPACE), keys.BALANCE + from_bech32(req.address))
        items, page = paginate(store, req.pagination, _coin)
        return query_pb2.QueryAllBalancesResponse(balances=items, pagination=page)

    def total_supply(
        self, ctx: Context, req: query_pb2.QueryTotalSupplyRequest
    ) -> query_pb2.QueryTotalSupplyResponse:
        store = PrefixStore(ctx.kv(keys.NAMESPACE), keys.SUPPLY)
        items, page = paginate(store, req.pagination, _coin)
        return query_pb2.QueryTotalSupplyResponse(supply=items, pagination=page)

    def supply_of(self, ctx: Context, req: query_pb2.QuerySupplyOfRequest) -> query_pb2.QuerySupplyOfResponse:
        amt = self.k.get_supply(ctx, check_denom(req.denom))
        return query_pb2.QuerySupplyOfResponse(amount=coin_pb2.Coin(denom=req.denom, amount=str(amt)))

    def params(self, ctx: Context, req: query_pb2.QueryParamsRequest) -> query_pb2.QueryParamsResponse:
        return query_pb2.QueryParamsResponse(params=self.k.get_params(ctx))
