"""The bank module as the app sees it."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from polylink.bank.v1 import query_pb2, tx_pb2, types_pb2

from chain.app.module import Invariant, MsgRoute, ParamsSpec, QueryRoute, query_routes_for
from chain.core.codec import merge_json
from chain.core.consensus import ValidatorUpdate
from chain.core.context import Context
from chain.modules.bank import genesis, invariants
from chain.modules.bank.keeper import BankKeeper
from chain.modules.bank.msg_server import MsgServer, validate_multi_send, validate_send
from chain.modules.bank.params import validate_params
from chain.modules.bank.query_server import QueryServer


class BankModule:
    name = "bank"

    def __init__(self, keeper: BankKeeper) -> None:
        self.keeper = keeper

    def default_genesis(self) -> Message:
        return genesis.default_genesis()

    def genesis_from_json(self, data: dict[str, object]) -> Message:
        return merge_json(genesis.default_genesis(), data)

    def validate_genesis(self, gs: Any) -> None:
        genesis.validate_genesis(gs)

    def init_genesis(self, ctx: Context, gs: Any) -> None:
        genesis.init_genesis(self.keeper, ctx, gs)

    def export_genesis(self, ctx: Context) -> Message:
        return genesis.export_genesis(self.keeper, ctx)

    def msg_routes(self) -> list[MsgRoute]:
        s = MsgServer(self.keeper)
        return [
            MsgRoute(tx_pb2.MsgSend, s.send, lambda m: m.from_address, validate_send),
            MsgRoute(tx_pb2.MsgMultiSend, s.multi_send, lambda m: m.inputs[0].address, validate_multi_send),
        ]

    def query_routes(self) -> list[QueryRoute]:
        q = QueryServer(self.keeper)
        return query_routes_for(
            "polylink.bank.v1.Query",
            {
                "Balance": (query_pb2.QueryBalanceRequest, q.balance),
                "AllBalances": (query_pb2.QueryAllBalancesRequest, q.all_balances),
                "TotalSupply": (query_pb2.QueryTotalSupplyRequest, q.total_supply),
                "SupplyOf": (query_pb2.QuerySupplyOfRequest, q.supply_of),
                "Params": (query_pb2.QueryParamsRequest, q.params),
            },
        )

    def params_spec(self) -> ParamsSpec:
        def set_params(ctx: Context, p: types_pb2.Params) -> None:
            validate_params(p)
            self.keeper.set_params(ctx, p)

        return ParamsSpec(types_pb2.Params, self.keeper.get_params, set_params)

    def begin_block(self, ctx: Context) -> None:
        pass

    def end_block(self, ctx: Context) -> list[ValidatorUpdate]:
        return []

    def invariants(self) -> list[tuple[str, Invariant]]:
        return [("bank/total-supply", invariants.total_supply(self.keeper))]
