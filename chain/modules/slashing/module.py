"""The slashing module as the app sees it."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from polylink.slashing.v1 import query_pb2, tx_pb2, types_pb2

from chain.app.module import Invariant, MsgRoute, ParamsSpec, QueryRoute, query_routes_for
from chain.core.codec import merge_json
from chain.core.consensus import ValidatorUpdate
from chain.core.context import Context
from chain.modules.slashing import genesis, invariants
from chain.modules.slashing.keeper import SlashingKeeper
from chain.modules.slashing.msg_server import MsgServer, validate_unjail
from chain.modules.slashing.params import validate_params
from chain.modules.slashing.query_server import QueryServer


class SlashingModule:
    name = "slashing"

    def __init__(self, keeper: SlashingKeeper) -> None:
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

    def params_spec(self) -> ParamsSpec:
        def set_params(ctx: Context, p: types_pb2.Params) -> None:
            validate_params(p)
            self.keeper.set_params(ctx, p)

        return ParamsSpec(types_pb2.Params, self.keeper.get_params, set_params)

    def begin_block(self, ctx: Context) -> None:
        self.keeper.begin_block(ctx)

    def end_block(self, ctx: Context) -> list[ValidatorUpdate]:
        return []

    def invariants(self) -> list[tuple[str, Invariant]]:
        return [("slashing/missed-blocks", invariants.missed_blocks(self.keeper))]
