"""What the inference module needs from other modules (narrow interfaces).

The registry's models are its protobuf messages (polylink.registry.v1.Model);
inference reads them only through the properties named here, so tests can hand
it a fake registry. Amounts are decimal strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from polylink.inference.v1 import types_pb2

from chain.core.coins import Coins
from chain.core.context import Context


class AccountKeeper(Protocol):
    def module_address(self, name: str) -> str: ...


class BankKeeper(Protocol):
    def get_balance(self, ctx: Context, address: str, denom: str) -> int: ...
    def get_all_balances(self, ctx: Context, address: str) -> Coins: ...
    def send_to_module(self, ctx: Context, sender: str, module: str, coins: Coins) -> None: ...
    def send_from_module(self, ctx: Context, module: str, recipient: str, coins: Coins) -> None: ...


class Model(Protocol):
    @property
    def model_id(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def context_length(self) -> int: ...
    @property
    def royalty_ppm(self) -> int: ...
    @property
    def base_price(self) -> str: ...


class RegistryKeeper(Protocol):
    """The registry keeper interface of docs/design/registry-inference-worker.md (the part used here)."""

    def get_model(self, ctx: Context, model_id: str) -> Model | None: ...

    def eligible_workers(
        self, ctx: Context, model_id: str, max_tokens: int, window_blocks: int
    ) -> list[tuple[str, int]]:
        """(address, weight > 0) ascending by address: active, unjailed, bonded workers serving
        the model with room for max_tokens more in-flight tokens over window_blocks."""
        ...

    def add_inflight(self, ctx: Context, addr: str, tokens: int) -> None: ...
    def release_inflight(self, ctx: Context, addr: str, tokens: int) -> None: ...
    def slash_worker(self, ctx: Context, addr: str, fraction_ppm: int, reason: str) -> int:
        """bond x fraction // 10^6 from worker_bond_pool to community_pool; returns the amount."""
        ...

    def take_bond(self, ctx: Context, addr: str, amount: int, to_address: str) -> int:
        """Move up to `amount` of the worker's bond to `to_address`; returns what was taken."""
        ...

    def add_bond(self, ctx: Context, addr: str, amount: int) -> bool:
        """Credit `amount` (already in worker_bond_pool) to the worker's bond; False if it is gone."""
        ...

    def bond_pool_address(self) -> str: ...

    def record_result(self, ctx: Context, addr: str, model_id: str) -> None: ...
    def record_miss(self, ctx: Context, addr: str, model_id: str) -> None: ...


class Scorer(Protocol):
    """What judges a request's results (tiqe's keeper; docs/design/tiqe.md)."""

    def results_ready(self, ctx: Context, request: types_pb2.Request, results: list[types_pb2.Result]) -> None:
        """Every result of `request` (now SCORING) is in, by result id: start judging them.
        The scorer answers through `InferenceKeeper.finalize_result(ctx, result_id, *,
        quality_ppm, fidelity_ppm, scored)`, once per result, now (a result nobody can score)
        or in a later block: quality decides pass/fail, fidelity breaks a swarm's quality ties."""
        ...

    def pass_ppm(self, ctx: Context) -> int:
        """The quality a scored result needs to be paid."""
        ...

    def earners(self, ctx: Context, result_id: int) -> list[tuple[str, int]]:
        """The committee members that earned a share of the result's fee, with their weights:
        (operator address, power x rating) of each member that revealed within outlier_ppm."""
        ...


class Rewards(Protocol):
    """How a settled fee divides (the rewards keeper; SPEC 3.8)."""

    def settle(
        self,
        ctx: Context,
        pay: Callable[[str, int], None],
        *,
        fee: int,
        worker: str,
        provider: str,
        royalty_ppm: int,
        passed: bool,
        earners: Sequence[tuple[str, int]],
    ) -> Any:
        """Pay every part of `fee` with `pay` except the rejected result's refund; returns the
        split (with `worker`, `provider`, `validators`, `community`, `refund`)."""
        ...

    def ticket_for(self, ctx: Context, slot_fee: int) -> int:
        """The swarm ticket a committing worker locks from its bond for a per-worker fee."""
        ...


class Pricer(Protocol):
    """The current price of a model and the demand that moves it (the pricing keeper; SPEC 3.7)."""

    def price_of(self, ctx: Context, model_id: str) -> int | None:
        """upoly per 1000 tokens charged now; None for an unknown model."""
        ...

    def record_demand(self, ctx: Context, model_id: str, tokens: int) -> None:
        """A request for `tokens` (max_tokens x redundancy) was escrowed in this block."""
        ...
