"""The bank module as the app sees it."""

from __future__ import annotations

from polylink.bank.v1 import query_pb2, tx_pb2, types_pb2

from chain.app.module import Invariant, ModuleBase, MsgRoute, QueryRoute, query_routes_for
from chain.modules.bank import genesis, invariants
from chain.modules.bank.keeper import BankKeeper
from chain.modules.bank.msg_server import MsgServer, validate_multi_send, validate_send
from chain.modules.bank.params import validate_params
from chain.modules.bank.query_server import QueryServer


class BankModule(ModuleBase):
    name = "bank"
    genesis = genesis
    params = (types_pb2.Params, validate_params)
    keeper: BankKeeper

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

    def invariants(self) -> list[tuple[str, Invariant]]:
        return [("bank/total-supply", invariants.total_supply(self.keeper))]
