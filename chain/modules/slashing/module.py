"""The slashing module as the app sees it."""

from __future__ import annotations

from polylink.slashing.v1 import query_pb2, tx_pb2, types_pb2

from chain.app.module import Invariant, ModuleBase, MsgRoute, QueryRoute, query_routes_for
from chain.core.context import Context
from chain.modules.slashing import genesis, invariants
from chain.modules.slashing.keeper import SlashingKeeper
from chain.modules.slashing.msg_server import MsgServer, validate_unjail
from chain.modules.slashing.params import validate_params
from chain.modules.slashing.query_server import QueryServer


class SlashingModule(ModuleBase):
    name = "slashing"
    genesis = genesis
    params = (types_pb2.Params, validate_params)
    keeper: SlashingKeeper

    def msg_routes(self) -> list[MsgRoute]:
        s = MsgServer(self.keeper)
        return [MsgRoute(tx_pb2.MsgUnjail, s.unjail, lambda m: m.validator_address, validate_unjail)]

    def query_routes(self) -> list[QueryRoute]:
        q = QueryServer(self.keeper)
        return query_routes_for(
            "polylink.slashing.v1.Query",
            {
                "SigningInfo": (query_pb2.QuerySigningInfoRequest, q.signing_info),
                "SigningInfos": (query_pb2.QuerySigningInfosRequest, q.signing_infos),
                "Params": (query_pb2.QueryParamsRequest, q.params),
            },
        )

    def begin_block(self, ctx: Context) -> None:
        self.keeper.begin_block(ctx)

    def invariants(self) -> list[tuple[str, Invariant]]:
        return [("slashing/missed-blocks", invariants.missed_blocks(self.keeper))]
