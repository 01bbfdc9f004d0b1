"""registry queries, served over the last committed state (gRPC and ABCI Query)."""

from __future__ import annotations

from polylink.registry.v1 import query_pb2, types_pb2

from chain.core.address import from_bech32
from chain.core.codec import decode
from chain.core.context import Context
from chain.core.errors import ErrInvalidRequest, ErrNotFound
from chain.core.query import paginate
from chain.core.store import KVStore, PrefixStore
from chain.modules.registry import keys
from chain.modules.registry.keeper import RegistryKeeper


class QueryServer:
    def __init__(self, k: RegistryKeeper) -> None:
        self.k = k

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    def model(self, ctx: Context, req: query_pb2.QueryModelRequest) -> query_pb2.QueryModelResponse:
        if not req.model_id:
            raise ErrInvalidRequest.wrap("model_id is empty")
        m = self.k.get_model(ctx, req.model_id)
        if m is None:
            raise ErrNotFound.wrap(f"model {req.model_id!r}")
        return query_pb2.QueryModelResponse(model=m)

    def models(self, ctx: Context, req: query_pb2.QueryModelsRequest) -> query_pb2.QueryModelsResponse:
        items, page = self.k.models_page(ctx, req.pagination)
        return query_pb2.QueryModelsResponse(models=items, pagination=page)

    def worker(self, ctx: Context, req: query_pb2.QueryWorkerRequest) -> query_pb2.QueryWorkerResponse:
        from_bech32(req.address)
        w = self.k.get_worker(ctx, req.address)
        if w is None:
            raise ErrNotFound.wrap(f"worker {req.address}")
        stats = [self.k.get_stats(ctx, w.address, m) for m in w.models]
        return query_pb2.QueryWorkerResponse(worker=w, stats=stats)

    def workers(self, ctx: Context, req: query_pb2.QueryWorkersRequest) -> query_pb2.QueryWorkersResponse:
        """Every worker, or (with model_id) those serving the model, in address-byte order.
        The page key is an address (raw bytes) in both cases."""
        kv = self._kv(ctx)
        if not req.model_id:
            store = PrefixStore(kv, keys.WORKER)
            items, page = paginate(store, req.pagination, lambda _k, raw: decode(types_pb2.Worker, raw))
            return query_pb2.QueryWorkersResponse(workers=items, pagination=page)

        def item(addr: bytes, _v: bytes) -> types_pb2.Worker:
            raw = kv.get(keys.worker_key(addr))
            assert raw is not None
            return decode(types_pb2.Worker, raw)

        items, page = paginate(PrefixStore(kv, keys.by_model_prefix(req.model_id)), req.pagination, item)
        return query_pb2.QueryWorkersResponse(workers=items, pagination=page)

    def params(self, ctx: Context, req: query_pb2.QueryParamsRequest) -> query_pb2.QueryParamsResponse:
        return query_pb2.QueryParamsResponse(params=self.k.get_params(ctx))
