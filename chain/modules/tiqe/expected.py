"""What the tiqe module needs from other modules (narrow interfaces).

Other modules' records are their protobuf messages; tiqe reads them only
through the properties named here, so tests could hand it fakes. Amounts may
be decimal strings (token amounts can exceed 2^63) and are read with int().
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chain.core.coins import Coins
from chain.core.context import Context


class AccountKeeper(Protocol):
    def module_address(self, name: str) -> str: ...


class BankKeeper(Protocol):
    """Unused until the rewards of issue 6 pay committees; the keeper holds it already."""

    def get_balance(self, ctx: Context, address: str, denom: str) -> int: ...
    def send_from_module(self, ctx: Context, module: str, recipient: str, coins: Coins) -> None: ...


class Validator(Protocol):
    @property
    def operator_address(self) -> str: ...
    @property
    def consensus_pubkey(self) -> bytes: ...
    @property
    def tokens(self) -> str: ...
    @property
    def jailed(self) -> bool: ...


class StakingParams(Protocol):
    @property
    def power_reduction(self) -> int: ...


class StakingKeeper(Protocol):
    def get_params(self, ctx: Context) -> StakingParams: ...
    def get_validator(self, ctx: Context, operator: str) -> Validator | None: ...
    def bonded_validators(self, ctx: Context) -> Sequence[Validator]:
        """BONDED validators (a validator jailed in this block is still among them until
        staking's next end_block: callers check `jailed`)."""
        ...


class SlashingKeeper(Protocol):
    def slash(self, ctx: Context, cons_addr: bytes, fraction_ppm: int, reason: str) -> int:
        """Slash `fraction_ppm` of the validator's current power; returns the amount burned."""
        ...

    def jail(self, ctx: Context, cons_addr: bytes, until_height: int, reason: str) -> None: ...


class WorkerModelStats(Protocol):
    @property
    def quality_ema_ppm(self) -> int: ...
    @property
    def fidelity_ema_ppm(self) -> int: ...
    @property
    def results(self) -> int: ...


class RegistryKeeper(Protocol):
    def get_stats(self, ctx: Context, addr: str, model_id: str) -> WorkerModelStats:
        """The worker's record for the model (a fresh one when missing)."""
        ...

    def set_quality(self, ctx: Context, addr: str, model_id: str, ppm: int) -> None: ...
    def set_fidelity(self, ctx: Context, addr: str, model_id: str, ppm: int) -> None: ...
    def jail_worker(self, ctx: Context, addr: str, until_height: int, reason: str) -> None: ...
    def slash_worker(self, ctx: Context, addr: str, fraction_ppm: int, reason: str) -> int: ...


class Request(Protocol):
    @property
    def model_id(self) -> str: ...


class Result(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def request_id(self) -> int: ...
    @property
    def worker(self) -> str: ...
    @property
    def scored(self) -> bool: ...
    @property
    def passed(self) -> bool: ...


class InferenceKeeper(Protocol):
    def get_result(self, ctx: Context, res_id: int) -> Result | None: ...
    def finalize_result(
        self, ctx: Context, result_id: int, *, quality_ppm: int, fidelity_ppm: int, scored: bool
    ) -> None:
        """Record tiqe's verdict on one result (quality decides pass/fail; fidelity breaks a
        swarm's quality ties); completes its request once every result is final."""
        ...
