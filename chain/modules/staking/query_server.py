"""staking queries, served over the last committed state (gRPC and ABCI Query)."""

from __future__ import annotations

from typing import TypeVar

from polylink.base.v1 import coin_pb2
from polylink.staking.v1 import query_pb2, types_pb2

from chain.core.address import from_bech32
from chain.core.codec import decode
from chain.core.coins import BOND_DENOM
from chain.core.context import Context
from chain.core.errors import ErrNotFound
from chain.core.query import paginate
from chain.core.store import KVStore, PrefixStore
from chain.modules.staking import keys
from chain.modules.staking.keeper import StakingKeeper
from chain.modules.staking.params import BONDED_POOL, NOT_BONDED_POOL

T = TypeVar("T")


class QueryServer:
    def __init__(self, k: StakingKeeper) -> None:
        self.k = k

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    def _delegation_response(self, ctx: Context, d: types_pb2.Delegation) -> query_pb2.DelegationResponse:
        v = self.k.must_validator(ctx, d.validator)
        worth = self.k.tokens_from_shares(v, int(d.shares))
        return query_pb2.DelegationResponse(
            delegation=d, balance=coin_pb2.Coin(denom=BOND_DENOM, amount=str(worth))
        )

    def validator(self, ctx: Context, req: query_pb2.QueryValidatorRequest) -> query_pb2.QueryValidatorResponse:
        v = self.k.get_validator(ctx, req.validator_address)
        if v is None:
            raise ErrNotFound.wrap(f"validator {req.validator_address}")
        return query_pb2.QueryValidatorResponse(validator=v)

    def validators(
        self, ctx: Context, req: query_pb2.QueryValidatorsRequest
    ) -> query_pb2.QueryValidatorsResponse:
        store = PrefixStore(self._kv(ctx), keys.VALIDATOR)
        items, page = paginate(
            store,
            req.pagination,
            lambda _k, raw: decode(types_pb2.Validator, raw),
            lambda v: req.status in (types_pb2.UNSPECIFIED, v.status),
        )
        return query_pb2.QueryValidatorsResponse(validators=items, pagination=page)

    def validator_delegations(
        self, ctx: Context, req: query_pb2.QueryValidatorDelegationsRequest
    ) -> query_pb2.QueryValidatorDelegationsResponse:
        v = self.k.get_validator(ctx, req.validator_address)
        if v is None:
            raise ErrNotFound.wrap(f"validator {req.validator_address}")
        vl = from_bech32(req.validator_address)
        kv = self._kv(ctx)

        def item(dl: bytes, _raw: bytes) -> query_pb2.DelegationResponse:
            raw = kv.get(keys.delegation_key(dl, vl))
            assert raw is not None
            return self._delegation_response(ctx, decode(types_pb2.Delegation, raw))

        items, page = paginate(PrefixStore(kv, keys.DELEGATION_BY_VAL + vl), req.pagination, item)
        return query_pb2.QueryValidatorDelegationsResponse(delegation_responses=items, pagination=page)

    def delegation(self, ctx: Context, req: query_pb2.QueryDelegationRequest) -> query_pb2.QueryDelegationResponse:
        d = self.k.get_delegation(ctx, req.delegator_address, req.validator_address)
        if d is None:
            raise ErrNotFound.wrap(f"delegation of {req.delegator_address} to {req.validator_address}")
        return query_pb2.QueryDelegationResponse(delegation_response=self._delegation_response(ctx, d))

    def delegator_delegations(
        self, ctx: Context, req: query_pb2.QueryDelegatorDelegationsRequest
    ) -> query_pb2.QueryDelegatorDelegationsResponse:
        store = PrefixStore(self._kv(ctx), keys.DELEGATION + from_bech32(req.delegator_address))
        items, page = paginate(
            store,
            req.pagination,
            lambda _k, raw: self._delegation_response(ctx, decode(types_pb2.Delegation, raw)),
        )
        return query_pb2.QueryDelegatorDelegationsResponse(delegation_responses=items, pagination=page)

    def unbonding_delegations(
        self, ctx: Context, req: query_pb2.QueryUnbondingDelegationsRequest
    ) -> query_pb2.QueryUnbondingDelegationsResponse:
        store = PrefixStore(self._kv(ctx), keys.UNBONDING + from_bech32(req.delegator_address))
        items, page = paginate(store, req.pagination, lambda _k, raw: decode(types_pb2.UnbondingDelegation, raw))
        return query_pb2.QueryUnbondingDelegationsResponse(unbonding_delegations=items, pagination=page)

    def redelegations(
        self, ctx: Context, req: query_pb2.QueryRedelegationsRequest
    ) -> query_pb2.QueryRedelegationsResponse:
        store = PrefixStore(self._kv(ctx), keys.REDELEGATION + from_bech32(req.delegator_address))
        items, page = paginate(store, req.pagination, lambda _k, raw: decode(types_pb2.Redelegation, raw))
        return query_pb2.QueryRedelegationsResponse(redelegations=items, pagination=page)

    def params(self, ctx: Context, req: query_pb2.QueryParamsRequest) -> query_pb2.QueryParamsResponse:
        return query_pb2.QueryParamsResponse(params=self.k.get_params(ctx))

    def pool(self, ctx: Context, req: query_pb2.QueryPoolRequest) -> query_pb2.QueryPoolResponse:
        return query_pb2.QueryPoolResponse(
            bonded_tokens=str(self.k.pool_balance(ctx, BONDED_POOL)),
            not_bonded_tokens=str(self.k.pool_balance(ctx, NOT_BONDED_POOL)),
        )
