"""BankKeeper: the only code that reads or writes balances and supply."""

from __future__ import annotations

from polylink.bank.v1 import types_pb2

from chain.core.address import from_bech32, to_bech32
from chain.core.codec import decode, encode
from chain.core.coins import Coins
from chain.core.context import Context
from chain.core.events import Event, index_keys
from chain.core.store import KVStore, PrefixStore
from chain.modules.bank import keys
from chain.modules.bank.errors import ErrInsufficientFunds
from chain.modules.bank.expected import AccountKeeper
from chain.modules.bank.params import default_params

index_keys("transfer", "sender", "recipient")
index_keys("message", "module", "action", "sender")


class BankKeeper:
    def __init__(self, ak: AccountKeeper) -> None:
        self.ak = ak

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    # --- params ----------------------------------------------------------
    def get_params(self, ctx: Context) -> types_pb2.Params:
        raw = self._kv(ctx).get(keys.PARAMS)
        return default_params() if raw is None else decode(types_pb2.Params, raw)

    def set_params(self, ctx: Context, p: types_pb2.Params) -> None:
        self._kv(ctx).set(keys.PARAMS, encode(p))

    # --- balances --------------------------------------------------------
    def get_balance(self, ctx: Context, address: str, denom: str) -> int:
        raw = self._kv(ctx).get(keys.balance_key(from_bech32(address), denom))
        return 0 if raw is None else int(raw)

    def get_all_balances(self, ctx: Context, address: str) -> Coins:
        store = PrefixStore(self._kv(ctx), keys.BALANCE + from_bech32(address))
        return Coins({k.decode(): int(v) for k, v in store.iterate()})

    def _set_balance(self, ctx: Context, address: str, denom: str, amount: int) -> None:
        key = keys.balance_key(from_bech32(address), denom)
        if amount:
            self._kv(ctx).set(key, str(amount).encode())
        else:
            self._kv(ctx).delete(key)

    def sub_coins(self, ctx: Context, address: str, coins: Coins) -> None:
        """Debit `address` (raises ErrInsufficientFunds, writing nothing); the caller credits
        the coins elsewhere or accounts for them (the mempool's view of a fee, for one)."""
        for denom, amt in coins.items():
            have = self.get_balance(ctx, address, denom)
            if have < amt:
                raise ErrInsufficientFunds.wrap(f"{address} has {have}{denom}, needs {amt}{denom}")
            self._set_balance(ctx, address, denom, have - amt)

    def _add(self, ctx: Context, address: str, coins: Coins) -> None:
        self.ak.ensure_account(ctx, address)
        for denom, amt in coins.items():
            self._set_balance(ctx, address, denom, self.get_balance(ctx, address, denom) + amt)

    def send(self, ctx: Context, sender: str, recipient: str, coins: Coins) -> None:
        """Move coins; raises ErrInsufficientFunds (and writes nothing the caller keeps)."""
        self.sub_coins(ctx, sender, coins)
        self._add(ctx, recipient, coins)
        ctx.emit(Event.of("transfer", sender=sender, recipient=recipient, amount=coins))

    def send_from_module(self, ctx: Context, module: str, recipient: str, coins: Coins) -> None:
        self.send(ctx, self.ak.module_address(module), recipient, coins)

    def send_to_module(self, ctx: Context, sender: str, module: str, coins: Coins) -> None:
        self.send(ctx, sender, self.ak.module_address(module), coins)

    # --- supply ----------------------------------------------------------
    def get_supply(self, ctx: Context, denom: str) -> int:
        raw = self._kv(ctx).get(keys.supply_key(denom))
        return 0 if raw is None else int(raw)

    def get_burned(self, ctx: Context, denom: str) -> int:
        """How much of `denom` was burned since the chain began."""
        raw = self._kv(ctx).get(keys.BURNED + denom.encode())
        return 0 if raw is None else int(raw)

    def set_burned(self, ctx: Context, denom: str, amount: int) -> None:
        if amount:
            self._kv(ctx).set(keys.BURNED + denom.encode(), str(amount).encode())
        else:
            self._kv(ctx).delete(keys.BURNED + denom.encode())

    def total_burned(self, ctx: Context) -> Coins:
        """Every denom's burned total (genesis export)."""
        return Coins({k.decode(): int(v) for k, v in PrefixStore(self._kv(ctx), keys.BURNED).iterate()})

    def _set_supply(self, ctx: Context, denom: str, amount: int) -> None:
        if amount:
            self._kv(ctx).set(keys.supply_key(denom), str(amount).encode())
        else:
            self._kv(ctx).delete(keys.supply_key(denom))

    def total_supply(self, ctx: Context) -> Coins:
        store = PrefixStore(self._kv(ctx), keys.SUPPLY)
        return Coins({k.decode(): int(v) for k, v in store.iterate()})

    def mint(self, ctx: Context, module: str, coins: Coins) -> None:
        """Create coins in a module account (supply grows by the same amount)."""
        self._add(ctx, self.ak.module_address(module), coins)
        for d, a in coins.items():
            self._set_supply(ctx, d, self.get_supply(ctx, d) + a)
        ctx.emit(Event.of("mint", module=module, amount=coins))

    def burn(self, ctx: Context, module: str, coins: Coins) -> None:
        """Destroy coins held by a module account (supply shrinks by the same amount, and the
        burned total grows by it)."""
        self.sub_coins(ctx, self.ak.module_address(module), coins)
        for d, a in coins.items():
            self._set_supply(ctx, d, self.get_supply(ctx, d) - a)
            self.set_burned(ctx, d, self.get_burned(ctx, d) + a)
        ctx.emit(Event.of("burn", module=module, amount=coins))

    # --- iteration (genesis export, invariants) -----------------------
    def iterate_balances(self, ctx: Context) -> list[tuple[str, Coins]]:
        """Every account's balances, by address bytes then denom."""
        out: dict[bytes, dict[str, int]] = {}
        for k, v in PrefixStore(self._kv(ctx), keys.BALANCE).iterate():
            out.setdefault(k[:20], {})[k[20:].decode()] = int(v)
        return [(to_bech32(a), Coins(m)) for a, m in out.items()]
