"""auth genesis: validate, init and export (init and export mirror each other)."""

from __future__ import annotations

from polylink.auth.v1 import genesis_pb2

from chain.core.address import address_of_pubkey, from_bech32
from chain.core.context import Context
from chain.core.errors import ErrInvalidRequest
from chain.modules.auth import keys
from chain.modules.auth.keeper import AccountKeeper
from chain.modules.auth.params import default_params, validate_params


def default_genesis() -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(params=default_params())


def validate_genesis(gs: genesis_pb2.GenesisState) -> None:
    validate_params(gs.params)
    seen_addr: set[str] = set()
    seen_num: set[int] = set()
    for a in gs.accounts:
        from_bech32(a.address)
        if a.address in seen_addr:
            raise ErrInvalidRequest.wrap(f"auth genesis: duplicate account {a.address}")
        if a.account_number in seen_num:
            raise ErrInvalidRequest.wrap(f"auth genesis: duplicate account number {a.account_number}")
        if a.pub_key and address_of_pubkey(a.pub_key) != a.address:
            raise ErrInvalidRequest.wrap(f"auth genesis: pub_key does not match {a.address}")
        seen_addr.add(a.address)
        seen_num.add(a.account_number)


def init_genesis(k: AccountKeeper, ctx: Context, gs: genesis_pb2.GenesisState) -> None:
    k.set_params(ctx, gs.params)
    next_number = 0
    for a in sorted(gs.accounts, key=lambda a: a.account_number):
        k.set_account(ctx, a)
        next_number = max(next_number, a.account_number + 1)
    ctx.kv(keys.NAMESPACE).set(keys.NEXT_ACCOUNT_NUMBER, next_number.to_bytes(8, "big"))
    for name in k.module_accounts:
        k.ensure_account(ctx, k.module_address(name))


def export_genesis(k: AccountKeeper, ctx: Context) -> genesis_pb2.GenesisState:
    accounts = sorted(k.iterate_accounts(ctx), key=lambda a: a.account_number)
    return genesis_pb2.GenesisState(params=k.get_params(ctx), accounts=accounts)
