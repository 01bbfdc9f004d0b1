"""What the gov module needs from other modules and from the app (narrow interfaces).

Validators and delegations are staking's protobuf messages
(polylink.staking.v1); gov reads them only through the fields named here, so
tests can hand it plain fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from google.protobuf import any_pb2
from google.protobuf.message import Message

from chain.app.module import MsgRoute
from chain.core.coins import Coins
from chain.core.context import Context


class AccountKeeper(Protocol):
    def module_address(self, name: str) -> str: ...
    def is_module_address(self, address: str) -> bool: ...


class BankKeeper(Protocol):
    def get_balance(self, ctx: Context, address: str, denom: str) -> int: ...
    def get_all_balances(self, ctx: Context, address: str) -> Coins: ...
    def send(self, ctx: Context, sender: str, recipient: str, coins: Coins) -> None: ...
    def send_to_module(self, ctx: Context, sender: str, module: str, coins: Coins) -> None: ...
    def send_from_module(self, ctx: Context, module: str, recipient: str, coins: Coins) -> None: ...
    def burn(self, ctx: Context, module: str, coins: Coins) -> None: ...


class Validator(Protocol):
    """A staking validator: amounts are decimal strings."""

    @property
    def operator_address(self) -> str: ...
    @property
    def tokens(self) -> str: ...
    @property
    def delegator_shares(self) -> str: ...


class Delegation(Protocol):
    """One delegation (the contract's `Delegation{delegator, validator, shares}`)."""

    @property
    def delegator(self) -> str: ...
    @property
    def validator(self) -> str: ...
    @property
    def shares(self) -> str: ...


class StakingKeeper(Protocol):
    def bonded_validators(self, ctx: Context) -> Sequence[Validator]:
        """Validators in the bonded set (their tokens are the voting power)."""
        ...

    def total_bonded_tokens(self, ctx: Context) -> int: ...
    def delegations_of(self, ctx: Context, delegator: str) -> Sequence[Delegation]: ...

    # `v` is whatever bonded_validators returned (staking's own Validator
    # type); typed Any so staking's narrower parameter type still matches.
    def tokens_from_shares(self, v: Any, shares: int) -> int:
        """Tokens that `shares` of validator `v` are worth, rounded down."""
        ...

    def get_validator(self, ctx: Context, operator: str) -> Validator | None: ...


class MsgUnpacker(Protocol):
    """The app's message router (chain.app.router.MsgRouter)."""

    def unpack(self, a: any_pb2.Any) -> tuple[MsgRoute, Message]: ...
