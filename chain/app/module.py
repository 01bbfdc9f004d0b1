"""The module interface: what every state-machine room gives the app.

A module owns one store namespace, its messages (one handler each), its
queries, its genesis (init and export mirror each other), per-block work and
its invariants. The app wires modules together; modules reach each other only
through the narrow Protocols in their `expected.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.message import Message

from chain.core.codec import merge_json
from chain.core.consensus import ValidatorUpdate
from chain.core.context import Context

MsgHandler = Callable[[Context, Any], Message]
SignerOf = Callable[[Any], str]
QueryHandler = Callable[[Context, Any], Message]
Invariant = Callable[[Context], str | None]


@dataclass(frozen=True)
class MsgRoute:
    cls: type[Message]
    handler: MsgHandler
    signer: SignerOf
    validate_basic: Callable[[Any], None]


@dataclass(frozen=True)
class ParamsSpec:
    """A module's params, for governance: `set` validates and raises on bad params."""

    cls: type[Message]
    get: Callable[[Context], Message]
    set: Callable[[Context, Any], None]


@dataclass(frozen=True)
class QueryRoute:
    """`path` is the gRPC method path, e.g. /polylink.bank.v1.Query/Balance."""

    path: str
    request_cls: type[Message]
    handler: QueryHandler


class AppModule(Protocol):
    name: str

    def default_genesis(self) -> Message: ...
    def genesis_from_json(self, data: dict[str, object]) -> Message: ...
    def validate_genesis(self, gs: Any) -> None: ...
    def init_genesis(self, ctx: Context, gs: Any) -> None: ...
    def export_genesis(self, ctx: Context) -> Message: ...
    def msg_routes(self) -> list[MsgRoute]: ...
    def query_routes(self) -> list[QueryRoute]: ...
    def params_spec(self) -> ParamsSpec | None: ...
    def begin_block(self, ctx: Context) -> None: ...
    def end_block(self, ctx: Context) -> list[ValidatorUpdate]:
        """Per-block work after the txs; validator-set changes for CometBFT (staking only).

        Also called once at the end of InitChain: its updates are the genesis validator set."""
        ...

    def invariants(self) -> list[tuple[str, Invariant]]: ...


def query_routes_for(
    service_full_name: str, handlers: dict[str, tuple[type[Message], QueryHandler]]
) -> list[QueryRoute]:
    """QueryRoutes for one gRPC service from {method: (request class, handler)}."""
    return [QueryRoute(f"/{service_full_name}/{m}", cls, h) for m, (cls, h) in sorted(handlers.items())]


class ModuleBase:
    """Defaults every module shares; a module overrides only what it does differently.

    Genesis goes through the module's `genesis` functions (`default_genesis`,
    `validate_genesis`, `init_genesis(keeper, ctx, gs)`, `export_genesis(keeper,
    ctx)`), with JSON merged over the defaults; params go through the keeper's
    `get_params`/`set_params`, validated by `params = (ParamsClass, validate)`;
    no messages, queries, per-block work or invariants unless overridden.
    """

    name: str
    genesis: Any  # the module's genesis.py
    params: tuple[type[Message], Callable[[Any], None]]

    def __init__(self, keeper: Any) -> None:
        self.keeper = keeper

    def default_genesis(self) -> Message:
        gs: Message = self.genesis.default_genesis()
        return gs

    def genesis_from_json(self, data: dict[str, object]) -> Message:
        return merge_json(self.default_genesis(), data)

    def validate_genesis(self, gs: Any) -> None:
        self.genesis.validate_genesis(gs)

    def init_genesis(self, ctx: Context, gs: Any) -> None:
        self.genesis.init_genesis(self.keeper, ctx, gs)

    def export_genesis(self, ctx: Context) -> Message:
        gs: Message = self.genesis.export_genesis(self.keeper, ctx)
        return gs

    def params_spec(self) -> ParamsSpec:
        cls, validate = self.params

        def set_params(ctx: Context, p: Any) -> None:
            validate(p)
            self.keeper.set_params(ctx, p)

        return ParamsSpec(cls, self.keeper.get_params, set_params)

    def msg_routes(self) -> list[MsgRoute]:
        return []

    def query_routes(self) -> list[QueryRoute]:
        return []

    def begin_block(self, ctx: Context) -> None:
        pass

    def end_block(self, ctx: Context) -> list[ValidatorUpdate]:
        return []

    def invariants(self) -> list[tuple[str, Invariant]]:
        return []
