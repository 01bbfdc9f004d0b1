"""bank genesis: validate, init and export (init and export mirror each other)."""

from __future__ import annotations

from polylink.bank.v1 import genesis_pb2, types_pb2
from polylink.base.v1 import coin_pb2

from chain.core.address import from_bech32
from chain.core.coins import Coins
from chain.core.context import Context
from chain.modules.bank.errors import ErrInvalidGenesis
from chain.modules.bank.keeper import BankKeeper
from chain.modules.bank.params import default_params, validate_params


def default_genesis() -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(params=default_params())


def validate_genesis(gs: genesis_pb2.GenesisState) -> None:
    validate_params(gs.params)
    seen: set[bytes] = set()
    total = Coins()
    for b in gs.balances:
        raw = from_bech32(b.address)
        if raw in seen:
            raise ErrInvalidGenesis.wrap(f"duplicate balance for {b.address}")
        seen.add(raw)
        total = total + Coins.from_proto(b.coins)
    supply = Coins.from_proto(gs.supply)
    if gs.supply and supply != total:
        raise ErrInvalidGenesis.wrap(f"supply {supply} != sum of balances {total}")


def init_genesis(k: BankKeeper, ctx: Context, gs: genesis_pb2.GenesisState) -> None:
    k.set_params(ctx, gs.params)
    total = Coins()
    for b in sorted(gs.balances, key=lambda b: from_bech32(b.address)):
        coins = Coins.from_proto(b.coins)
        k._add(ctx, b.address, coins)
        total = total + coins
    for d, a in total.items():
        k._set_supply(ctx, d, a)
    for d, a in Coins.from_proto(gs.burned).items():
        k.set_burned(ctx, d, a)


def export_genesis(k: BankKeeper, ctx: Context) -> genesis_pb2.GenesisState:
    balances = [
        types_pb2.Balance(address=a, coins=c.to_proto(coin_pb2.Coin))
        for a, c in k.iterate_balances(ctx)
    ]
    return genesis_pb2.GenesisState(
        params=k.get_params(ctx),
        balances=balances,
        supply=k.total_supply(ctx).to_proto(coin_pb2.Coin),
        burned=k.total_burned(ctx).to_proto(coin_pb2.Coin),
    )
