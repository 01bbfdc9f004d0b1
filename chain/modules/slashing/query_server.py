"""slashing queries, served over the last committed state (gRPC and ABCI Query)."""

from __future__ import annotations

from polylink.slashing.v1 import query_pb2, types_pb2

from chain.core.codec import decode
from chain.core.context import Context
from chain.core.errors import ErrInvalidRequest
from chain.core.query import paginate
from chain.core.store import PrefixStore
from chain.modules.slashing import keys
from chain.modules.slashing.errors import ErrNoSigningInfo, ErrNoValidator
from chain.modules.slashing.keeper import SlashingKeeper, cons_addr_of


class QueryServer:
    def __init__(self, k: SlashingKeeper) -> None:
        self.k = k

    def signing_info(
        self, ctx: Context, req: query_pb2.QuerySigningInfoRequest
    ) -> query_pb2.QuerySigningInfoResponse:
        if bool(req.cons_address) == bool(req.validator_address):
            raise ErrInvalidRequest.wrap("give exactly one of cons_address and validator_address")
        if req.cons_address:
            addr = keys.parse_cons_addr(req.cons_address)
        else:
            v = self.k.staking.get_validator(ctx, req.validator_address)
            if v is None:
                raise ErrNoValidator.wrap(req.validator_address)
            addr = cons_addr_of(v)
        info = self.k.get_signing_info(ctx, addr)
        if info is None:
            raise ErrNoSigningInfo.wrap(keys.cons_addr_hex(addr))
        return query_pb2.QuerySigningInfoResponse(val_signing_info=info)

    def signing_infos(
        self, ctx: Context, req: query_pb2.QuerySigningInfosRequest
    ) -> query_pb2.QuerySigningInfosResponse:
        store = PrefixStore(ctx.kv(keys.NAMESPACE), keys.SIGNING_INFO)
        items, page = paginate(store, req.pagination, lambda _k, v: decode(types_pb2.ValidatorSigningInfo, v))
        return query_pb2.QuerySigningInfosResponse(info=items, pagination=page)

    def params(self, ctx: Context, req: query_pb2.QueryParamsRequest) -> query_pb2.QueryParamsResponse:
        return query_pb2.QueryParamsResponse(params=self.k.get_params(ctx))
