"""An in-memory chain of auth + bank + staking keepers for staking tests (no app, no network).

`Env` keeps one MemStore; every operation runs like a tx (in a branch that is
written only when it succeeds) at the current height, and `end_block()`
closes the block: it runs staking's end_block and moves to the next height.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message
from polylink.staking.v1 import genesis_pb2, types_pb2

from chain.app.app import MODULE_ACCOUNTS
from chain.core.address import module_address, to_bech32
from chain.core.coins import BOND_DENOM, Coins
from chain.core.consensus import ValidatorUpdate
from chain.core.context import BlockHeader, Context, ExecMode
from chain.core.errors import ChainError
from chain.core.store import MemStore
from chain.modules.auth import genesis as auth_genesis
from chain.modules.auth.keeper import AccountKeeper
from chain.modules.bank import genesis as bank_genesis
from chain.modules.bank.keeper import BankKeeper
from chain.modules.staking import genesis as staking_genesis
from chain.modules.staking.keeper import StakingKeeper
from chain.modules.staking.module import StakingModule
from chain.modules.staking.params import BONDED_POOL, NOT_BONDED_POOL

T = TypeVar("T")
CHAIN = "staking-test"
BONDED_ADDR = module_address(BONDED_POOL)
NOT_BONDED_ADDR = module_address(NOT_BONDED_POOL)


def addr(name: str) -> str:
    return to_bech32(hashlib.sha256(b"acct:" + name.encode()).digest()[:20])


def pubkey(name: str) -> bytes:
    return hashlib.sha256(b"cons:" + name.encode()).digest()


def make_params(**kw: int) -> types_pb2.Params:
    p = types_pb2.Params(
        unbonding_blocks=5, max_validators=100, power_reduction=1_000_000, max_entries=7,
        max_commission_change_ppm=100_000,
    )
    for k, v in kw.items():
        setattr(p, k, v)
    return p



class Env:
    def __init__(
        self,
        balances: dict[str, int] | None = None,
        params: types_pb2.Params | None = None,
        store: MemStore | None = None,
        height: int = 1,
    ) -> None:
        self.store = store or MemStore()
        self.ak = AccountKeeper(MODULE_ACCOUNTS)
        self.bank = BankKeeper(self.ak)
        self.k = StakingKeeper(self.ak, self.bank)
        self.module = StakingModule(self.k)
        self.height = height
        self.events: list[object] = []
        if store is None:
            ctx = self.ctx(ExecMode.GENESIS)
            auth_genesis.init_genesis(self.ak, ctx, auth_genesis.default_genesis())
            bg = bank_genesis.default_genesis()
            for a, n in sorted((balances or {}).items()):
                bg.balances.add(address=a, coins=[{"denom": BOND_DENOM, "amount": str(n)}])
            bank_genesis.init_genesis(self.bank, ctx, bg)
            gs = genesis_pb2.GenesisState(params=params or make_params())
            staking_genesis.validate_genesis(gs)
            staking_genesis.init_genesis(self.k, ctx, gs)

    @staticmethod
    def from_genesis(
        auth_gs: Message, bank_gs: Message, staking_gs: genesis_pb2.GenesisState, last_height: int
    ) -> tuple[Env, list[ValidatorUpdate]]:
        """A chain restarted from state exported after block `last_height`, as InitChain with
        initial_height last_height + 1 does it (at header height last_height: auth, bank,
        staking, then staking's end_block); returns it and the genesis validator set."""
        e = Env(store=MemStore(), height=last_height)
        ctx = e.ctx(ExecMode.GENESIS)
        auth_genesis.validate_genesis(auth_gs)  # type: ignore[arg-type]
        auth_genesis.init_genesis(e.ak, ctx, auth_gs)  # type: ignore[arg-type]
        bank_genesis.validate_genesis(bank_gs)  # type: ignore[arg-type]
        bank_genesis.init_genesis(e.bank, ctx, bank_gs)  # type: ignore[arg-type]
        staking_genesis.validate_genesis(staking_gs)
        staking_genesis.init_genesis(e.k, ctx, staking_gs)
        updates = e.k.end_block(ctx)
        e.height = last_height + 1
        return e, updates

    def export(self) -> tuple[Message, Message, genesis_pb2.GenesisState]:
        ctx = self.ctx(ExecMode.QUERY)
        return (
            auth_genesis.export_genesis(self.ak, ctx),
            bank_genesis.export_genesis(self.bank, ctx),
            staking_genesis.export_genesis(self.k, ctx),
        )

    def ctx(self, mode: ExecMode = ExecMode.FINALIZE) -> Context:
        return Context(self.store, BlockHeader(CHAIN, self.height), mode)

    def run(self, fn: Callable[[Context], T]) -> T:
        """Run fn like a tx: its writes stay only if it returns (a ChainError discards them)."""
        ctx, cache = self.ctx().branch()
        out = fn(ctx)
        cache.write()
        self.events.extend(ctx.events.events)
        return out

    def try_run(self, fn: Callable[[Context], T]) -> T | ChainError:
        try:
            return self.run(fn)
        except ChainError as e:
            return e

    def end_block(self) -> list[ValidatorUpdate]:
        ctx = self.ctx()
        updates = self.k.end_block(ctx)
        self.events.extend(ctx.events.events)
        self.height += 1
        return updates

    def genesis_end_block(self) -> list[ValidatorUpdate]:
        return self.k.end_block(self.ctx(ExecMode.GENESIS))

    # --- shortcuts ---------------------------------------------------------
    def balance(self, address: str) -> int:
        return self.bank.get_balance(self.ctx(ExecMode.QUERY), address, BOND_DENOM)

    def supply(self) -> int:
        return self.bank.get_supply(self.ctx(ExecMode.QUERY), BOND_DENOM)

    def bonded_pool(self) -> int:
        return self.balance(BONDED_ADDR)

    def not_bonded_pool(self) -> int:
        return self.balance(NOT_BONDED_ADDR)

    def validator(self, operator: str) -> types_pb2.Validator:
        return self.k.must_validator(self.ctx(ExecMode.QUERY), operator)

    def create(
        self, name: str, self_bond: int, commission_ppm: int = 100_000, min_self: int = 1
    ) -> types_pb2.Validator:
        op, pk = addr(name), pubkey(name)
        return self.run(lambda ctx: self.k.create_validator(ctx, op, pk, self_bond, commission_ppm, name, min_self))

    def invariants(self, mid_block: bool = False) -> list[str]:
        """Broken invariants (staking's and bank's supply). Mid-block (after a power change,
        before end_block) the stored last powers are legitimately stale: skip that one."""
        ctx = self.ctx(ExecMode.QUERY)
        broken = [
            f"{n}: {m}"
            for n, inv in self.module.invariants()
            if not (mid_block and n == "staking/powers") and (m := inv(ctx))
        ]
        total = Coins()
        for _a, c in self.bank.iterate_balances(ctx):
            total = total + c
        if total != self.bank.total_supply(ctx):
            broken.append(f"bank: balances {total} != supply {self.bank.total_supply(ctx)}")
        return broken

    def send(self, sender: str, recipient: str, amount: int) -> None:
        self.run(lambda ctx: self.bank.send(ctx, sender, recipient, Coins({BOND_DENOM: amount})))
