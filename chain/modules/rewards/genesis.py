"""rewards genesis: params, the initial supply and the running totals; export -> import is exact.

An empty `initial_supply` (a new chain) is set at InitChain to the bond
denom's supply after the bank's genesis: the supply invariant counts from it.
"""

from __future__ import annotations

from polylink.rewards.v1 import genesis_pb2

from chain.core.coins import BOND_DENOM, parse_amount
from chain.core.context import Context
from chain.core.errors import ChainError, ErrInvalidRequest
from chain.modules.rewards.keeper import TOTAL_FIELDS, RewardsKeeper
from chain.modules.rewards.params import default_params, validate_params


def default_genesis() -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(params=default_params())


def validate_genesis(gs: genesis_pb2.GenesisState) -> None:
    validate_params(gs.params)
    amounts = [("initial_supply", gs.initial_supply)] + [(n, getattr(gs.totals, n)) for n in TOTAL_FIELDS]
    for name, value in amounts:
        if value:
            try:
                parse_amount(value)
            except ChainError:
                raise ErrInvalidRequest.wrap(
                    f"rewards genesis: {name} must be a whole number, got {value!r}"
                ) from None


def init_genesis(k: RewardsKeeper, ctx: Context, gs: genesis_pb2.GenesisState) -> None:
    k.set_params(ctx, gs.params)
    initial = int(gs.initial_supply) if gs.initial_supply else k.bk.get_supply(ctx, BOND_DENOM)
    k.set_initial_supply(ctx, initial)
    totals = k.get_totals(ctx)
    for name in TOTAL_FIELDS:
        setattr(totals, name, getattr(gs.totals, name) or "0")
    k.set_totals(ctx, totals)


def export_genesis(k: RewardsKeeper, ctx: Context) -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(
        params=k.get_params(ctx), initial_supply=str(k.get_initial_supply(ctx)), totals=k.get_totals(ctx)
    )
