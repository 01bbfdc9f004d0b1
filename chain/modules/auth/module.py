"""The auth module as the app sees it."""

from __future__ import annotations

from polylink.auth.v1 import query_pb2, types_pb2

from chain.app.module import ModuleBase, QueryRoute, query_routes_for
from chain.modules.auth import genesis
from chain.modules.auth.keeper import AccountKeeper
from chain.modules.auth.params import validate_params
from chain.modules.auth.query_server import QueryServer


class AuthModule(ModuleBase):
    name = "auth"
    genesis = genesis
    params = (types_pb2.Params, validate_params)
    keeper: AccountKeeper

    def query_routes(self) -> list[QueryRoute]:
        q = QueryServer(self.keeper)
        return query_routes_for(
            "polylink.auth.v1.Query",
            {
                "Account": (query_pb2.QueryAccountRequest, q.account),
                "Accounts": (query_pb2.QueryAccountsRequest, q.accounts),
                "ModuleAccount": (query_pb2.QueryModuleAccountRequest, q.module_account),
                "Params": (query_pb2.QueryParamsRequest, q.params),
            },
        )
