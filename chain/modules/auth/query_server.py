"""auth queries, served over the last committed state (gRPC and ABCI Query)."""

from __future__ import annotations

from polylink.auth.v1 import query_pb2, types_pb2

from chain.core.codec import decode
from chain.core.context import Context
from chain.core.errors import ErrNotFound
from chain.core.query import paginate
from chain.core.store import PrefixStore
from chain.modules.auth import keys
from chain.modules.auth.keeper import AccountKeeper


class QueryServer:
    def __init__(self, k: AccountKeeper) -> None:
        self.k = k

    def account(self, ctx: Context, req: query_pb2.QueryAccountRequest) -> query_pb2.QueryAccountResponse:
        acc = self.k.get_account(ctx, req.address)
        if acc is None:
            raise ErrNotFound.wrap(f"account {req.address}")
        return query_pb2.QueryAccountResponse(account=acc)

    def accounts(self, ctx: Context, req: query_pb2.QueryAccountsRequest) -> query_pb2.QueryAccountsResponse:
        store = PrefixStore(ctx.kv(keys.NAMESPACE), keys.ACCOUNT)
        items, page = paginate(store, req.pagination, lambda _k, v: decode(types_pb2.Account, v))
        return query_pb2.QueryAccountsResponse(accounts=items, pagination=page)

    def module_account(
        self, ctx: Context, req: query_pb2.QueryModuleAccountRequest
    ) -> query_pb2.QueryModuleAccountResponse:
        acc = self.k.get_account(ctx, self.k.module_address(req.name))
        if acc is None:
            raise ErrNotFound.wrap(f"module account {req.name}")
        return query_pb2.QueryModuleAccountResponse(account=acc)

    def params(self, ctx: Context, req: query_pb2.QueryParamsRequest) -> query_pb2.QueryParamsResponse:
        return query_pb2.QueryParamsResponse(params=self.k.get_params(ctx))
