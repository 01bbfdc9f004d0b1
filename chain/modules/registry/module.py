"""The registry module as the app sees it."""

from __future__ import annotations

from polylink.registry.v1 import query_pb2, tx_pb2, types_pb2

from chain.app.module import Invariant, ModuleBase, MsgRoute, QueryRoute, query_routes_for
from chain.core.consensus import ValidatorUpdate
from chain.core.context import Context
from chain.modules.registry import genesis, invariants
from chain.modules.registry.keeper import RegistryKeeper
from chain.modules.registry.msg_server import (
    MsgServer,
    validate_register_model,
    validate_register_worker,
    validate_unregister_worker,
    validate_update_worker,
)
from chain.modules.registry.params import validate_params
from chain.modules.registry.query_server import QueryServer


class RegistryModule(ModuleBase):
    name = "registry"
    genesis = genesis
    params = (types_pb2.Params, validate_params)
    keeper: RegistryKeeper

    def msg_routes(self) -> list[MsgRoute]:
        s = MsgServer(self.keeper)
        return [
            MsgRoute(tx_pb2.MsgRegisterModel, s.register_model, lambda m: m.provider, validate_register_model),
            MsgRoute(tx_pb2.MsgRegisterWorker, s.register_worker, lambda m: m.worker, validate_register_worker),
            MsgRoute(tx_pb2.MsgUpdateWorker, s.update_worker, lambda m: m.worker, validate_update_worker),
            MsgRoute(
                tx_pb2.MsgUnregisterWorker, s.unregister_worker, lambda m: m.worker, validate_unregister_worker
            ),
        ]

    def query_routes(self) -> list[QueryRoute]:
        q = QueryServer(self.keeper)
        return query_routes_for(
            "polylink.registry.v1.Query",
            {
                "Model": (query_pb2.QueryModelRequest, q.model),
                "Models": (query_pb2.QueryModelsRequest, q.models),
                "Worker": (query_pb2.QueryWorkerRequest, q.worker),
                "Workers": (query_pb2.QueryWorkersRequest, q.workers),
                "Params": (query_pb2.QueryParamsRequest, q.params),
            },
        )

    def end_block(self, ctx: Context) -> list[ValidatorUpdate]:
        self.keeper.end_block(ctx)
        return []

    def invariants(self) -> list[tuple[str, Invariant]]:
        return [
            ("registry/bond-pool", invariants.bond_pool(self.keeper)),
            ("registry/indexes", invariants.indexes(self.keeper)),
            ("registry/stats", invariants.stats_in_bounds(self.keeper)),
        ]
