"""registry genesis: validate, init and export (init and export mirror each other).

Lists are strictly ascending: models by model id, workers by address bytes
(the store's order), stats by (worker address bytes, model id), so an export
imports back to the same state and exports again byte for byte. Limits that
governance can lower (max_field_bytes, max_models_per_worker, min_worker_bond)
are not re-checked here: state that was valid when written stays importable.
The bonds live in bank: init checks that worker_bond_pool (bank's genesis runs
first) holds exactly their sum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, TypeVar

from polylink.registry.v1 import genesis_pb2, types_pb2

from chain.core.address import from_bech32
from chain.core.coins import parse_amount
from chain.core.context import Context
from chain.core.errors import ChainError
from chain.modules.registry import fields
from chain.modules.registry.errors import ErrInvalidGenesis
from chain.modules.registry.keeper import ACTIVE, UNBONDING, RegistryKeeper
from chain.modules.registry.params import PPM, default_params, validate_params

T = TypeVar("T")


def default_genesis() -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(params=default_params())


def _check(what: str, fn: Callable[[], object]) -> None:
    """Run a field check; its failure becomes ErrInvalidGenesis naming `what`."""
    try:
        fn()
    except ChainError as e:
        if e.kind is ErrInvalidGenesis:
            raise
        raise ErrInvalidGenesis.wrap(f"{what}: {e.log}") from None


def _ascending(items: Sequence[T], key: Callable[[T], Any], what: str) -> None:
    for a, b in pairwise(items):
        if not key(a) < key(b):
            raise ErrInvalidGenesis.wrap(f"{what} must be strictly ascending (sorted, no duplicates)")


def _check_model(m: types_pb2.Model) -> None:
    what = f"model {m.model_id!r}"
    _check(what, lambda: fields.check_model_id(m.model_id))
    _check(what, lambda: from_bech32(m.provider))
    _check(what, lambda: fields.check_sha256(m.sha256))
    _check(what, lambda: fields.check_royalty(m.royalty_ppm))
    _check(what, lambda: fields.parse_price(m.base_price))
    _check(what, lambda: fields.check_context_length(m.context_length))


def _check_worker(w: types_pb2.Worker, models: set[str]) -> None:
    what = f"worker {w.address}"
    _check(what, lambda: from_bech32(w.address))
    _check(what, lambda: fields.check_models(w.models))
    if list(w.models) != sorted(w.models):
        raise ErrInvalidGenesis.wrap(f"{what}: models must be sorted")
    for m in w.models:
        if m not in models:
            raise ErrInvalidGenesis.wrap(f"{what}: serves unregistered model {m!r}")
    if w.capacity == 0:
        raise ErrInvalidGenesis.wrap(f"{what}: capacity is 0")
    _check(what, lambda: parse_amount(w.bond))
    if w.status not in (ACTIVE, UNBONDING):
        raise ErrInvalidGenesis.wrap(f"{what}: status must be ACTIVE or UNBONDING")
    if (w.status == UNBONDING) != (w.unbonding_completion_height > 0):
        raise ErrInvalidGenesis.wrap(f"{what}: unbonding_completion_height is set iff UNBONDING")


def validate_genesis(gs: genesis_pb2.GenesisState) -> None:
    _check("params", lambda: validate_params(gs.params))
    for m in gs.models:
        _check_model(m)
    _ascending(gs.models, lambda m: m.model_id, "models")
    models = {m.model_id for m in gs.models}
    for w in gs.workers:
        _check_worker(w, models)
    _ascending(gs.workers, lambda w: from_bech32(w.address), "workers")
    workers = {w.address for w in gs.workers}
    for s in gs.stats:
        what = f"stats of {s.worker} for {s.model_id!r}"
        if s.worker not in workers:
            raise ErrInvalidGenesis.wrap(f"{what}: not a worker")
        if s.model_id not in models:
            raise ErrInvalidGenesis.wrap(f"{what}: not a registered model")
        if s.quality_ema_ppm > PPM:
            raise ErrInvalidGenesis.wrap(f"{what}: quality_ema_ppm > {PPM}")
        if s.fidelity_ema_ppm > PPM:
            raise ErrInvalidGenesis.wrap(f"{what}: fidelity_ema_ppm > {PPM}")
    _ascending(gs.stats, lambda s: (from_bech32(s.worker), s.model_id.encode()), "stats")


def init_genesis(k: RegistryKeeper, ctx: Context, gs: genesis_pb2.GenesisState) -> None:
    k.set_params(ctx, gs.params)
    for m in gs.models:
        k.set_model(ctx, m)
    for w in gs.workers:
        k.add_worker(ctx, w)
        if w.status == UNBONDING:
            k.enqueue_unbonding(ctx, w)
    for s in gs.stats:
        k.set_stats(ctx, s)
    have, want = k.pool_balance(ctx), sum(int(w.bond) for w in gs.workers)
    if have != want:
        raise ErrInvalidGenesis.wrap(f"worker_bond_pool holds {have}upoly, the workers' bonds sum to {want}upoly")


def export_genesis(k: RegistryKeeper, ctx: Context) -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(
        params=k.get_params(ctx), models=k.models(ctx), workers=k.workers(ctx), stats=k.all_stats(ctx)
    )
