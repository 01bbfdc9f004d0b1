"""The staking module as the app sees it."""

from __future__ import annotations

from polylink.staking.v1 import query_pb2, tx_pb2, types_pb2

from chain.app.module import Invariant, ModuleBase, MsgRoute, QueryRoute, query_routes_for
from chain.core.consensus import ValidatorUpdate
from chain.core.context import Context
from chain.modules.staking import genesis, invariants
from chain.modules.staking.keeper import StakingKeeper
from chain.modules.staking.msg_server import (
    MsgServer,
    validate_create_validator,
    validate_delegate,
    validate_edit_validator,
    validate_redelegate,
    validate_undelegate,
)
from chain.modules.staking.params import validate_params
from chain.modules.staking.query_server import QueryServer


class StakingModule(ModuleBase):
    name = "staking"
    genesis = genesis
    params = (types_pb2.Params, validate_params)
    keeper: StakingKeeper

    def msg_routes(self) -> list[MsgRoute]:
        s = MsgServer(self.keeper)
        return [
            MsgRoute(
                tx_pb2.MsgCreateValidator, s.create_validator, lambda m: m.operator_address, validate_create_validator
            ),
            MsgRoute(tx_pb2.MsgEditValidator, s.edit_validator, lambda m: m.operator_address, validate_edit_validator),
            MsgRoute(tx_pb2.MsgDelegate, s.delegate, lambda m: m.delegator_address, validate_delegate),
            MsgRoute(tx_pb2.MsgUndelegate, s.undelegate, lambda m: m.delegator_address, validate_undelegate),
            MsgRoute(tx_pb2.MsgRedelegate, s.redelegate, lambda m: m.delegator_address, validate_redelegate),
        ]

    def query_routes(self) -> list[QueryRoute]:
        q = QueryServer(self.keeper)
        return query_routes_for(
            "polylink.staking.v1.Query",
            {
                "Validator": (query_pb2.QueryValidatorRequest, q.validator),
                "Validators": (query_pb2.QueryValidatorsRequest, q.validators),
                "ValidatorDelegations": (query_pb2.QueryValidatorDelegationsRequest, q.validator_delegations),
                "Delegation": (query_pb2.QueryDelegationRequest, q.delegation),
                "DelegatorDelegations": (query_pb2.QueryDelegatorDelegationsRequest, q.delegator_delegations),
                "UnbondingDelegations": (query_pb2.QueryUnbondingDelegationsRequest, q.unbonding_delegations),
                "Redelegations": (query_pb2.QueryRedelegationsRequest, q.redelegations),
                "Params": (query_pb2.QueryParamsRequest, q.params),
                "Pool": (query_pb2.QueryPoolRequest, q.pool),
            },
        )

    def end_block(self, ctx: Context) -> list[ValidatorUpdate]:
        return self.keeper.end_block(ctx)

    def invariants(self) -> list[tuple[str, Invariant]]:
        return [
            ("staking/pools", invariants.pools(self.keeper)),
            ("staking/shares", invariants.shares(self.keeper)),
            ("staking/powers", invariants.powers(self.keeper)),
        ]
