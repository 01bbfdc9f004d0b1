"""AccountKeeper: the only code that reads or writes auth state."""

from __future__ import annotations

from polylink.auth.v1 import types_pb2

from chain.core.address import from_bech32, module_address, to_bech32
from chain.core.codec import decode, encode
from chain.core.context import Context
from chain.core.errors import ErrNotFound
from chain.core.store import KVStore, PrefixStore
from chain.modules.auth import keys
from chain.modules.auth.params import default_params


class AccountKeeper:
    def __init__(self, module_accounts: list[str]) -> None:
        self.module_accounts = sorted(module_accounts)
        self._module_addrs = {module_address(n): n for n in self.module_accounts}

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    # --- params ----------------------------------------------------------
    def get_params(self, ctx: Context) -> types_pb2.Params:
        raw = self._kv(ctx).get(keys.PARAMS)
        return default_params() if raw is None else decode(types_pb2.Params, raw)

    def set_params(self, ctx: Context, p: types_pb2.Params) -> None:
        self._kv(ctx).set(keys.PARAMS, encode(p))

    # --- accounts --------------------------------------------------------
    def get_account(self, ctx: Context, address: str) -> types_pb2.Account | None:
        raw = self._kv(ctx).get(keys.account_key(from_bech32(address)))
        return None if raw is None else decode(types_pb2.Account, raw)

    def set_account(self, ctx: Context, acc: types_pb2.Account) -> None:
        self._kv(ctx).set(keys.account_key(from_bech32(acc.address)), encode(acc))

    def _next_number(self, ctx: Context) -> int:
        kv = self._kv(ctx)
        raw = kv.get(keys.NEXT_ACCOUNT_NUMBER)
        n = 0 if raw is None else int.from_bytes(raw, "big")
        kv.set(keys.NEXT_ACCOUNT_NUMBER, (n + 1).to_bytes(8, "big"))
        return n

    def ensure_account(self, ctx: Context, address: str) -> types_pb2.Account:
        """The account at address, created (with the next number) if new."""
        acc = self.get_account(ctx, address)
        if acc is None:
            acc = types_pb2.Account(address=address, account_number=self._next_number(ctx))
            name = self._module_addrs.get(address)
            if name:
                acc.module_name = name
            self.set_account(ctx, acc)
        return acc

    def module_address(self, name: str) -> str:
        if name not in self.module_accounts:
            raise ErrNotFound.wrap(f"module account {name!r}")
        return module_address(name)

    def is_module_address(self, address: str) -> bool:
        return address in self._module_addrs

    def iterate_accounts(self, ctx: Context) -> list[types_pb2.Account]:
        kv = self._kv(ctx)
        return [decode(types_pb2.Account, v) for _, v in PrefixStore(kv, keys.ACCOUNT).iterate()]

    def account_count(self, ctx: Context) -> int:
        raw = self._kv(ctx).get(keys.NEXT_ACCOUNT_NUMBER)
        return 0 if raw is None else int.from_bytes(raw, "big")

    @staticmethod
    def address_from_key(key: bytes) -> str:
        return to_bech32(key)
