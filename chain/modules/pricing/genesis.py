"""pricing genesis: params, the prices that moved and the kept history; export -> import is exact.

The ABOVE_BASE and BY_HEIGHT indexes follow from the records and are rebuilt
by `set_price` and `add_point`; demand is per block and never in genesis.
"""

from __future__ import annotations

from polylink.pricing.v1 import genesis_pb2

from chain.core.coins import parse_amount
from chain.core.context import Context
from chain.core.errors import ChainError, ErrInvalidRequest
from chain.modules.pricing.keeper import PricingKeeper
from chain.modules.pricing.params import default_params, validate_params


def default_genesis() -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(params=default_params())


def _amount(where: str, value: str) -> int:
    try:
        return parse_amount(value)
    except ChainError:
        raise ErrInvalidRequest.wrap(f"pricing genesis: {where} must be a whole number, got {value!r}") from None


def validate_genesis(gs: genesis_pb2.GenesisState) -> None:
    validate_params(gs.params)
    ids = [mp.model_id for mp in gs.prices]
    if ids != sorted(set(ids)):
        raise ErrInvalidRequest.wrap("pricing genesis: prices must be unique and sorted by model id")
    for mp in gs.prices:
        price, base = _amount(f"{mp.model_id}.price", mp.price), _amount(f"{mp.model_id}.base_price", mp.base_price)
        if price < base:
            raise ErrInvalidRequest.wrap(f"pricing genesis: {mp.model_id} priced {price} below its base {base}")
    hist = [h.model_id for h in gs.history]
    if hist != sorted(set(hist)):
        raise ErrInvalidRequest.wrap("pricing genesis: history must be unique and sorted by model id")
    for h in gs.history:
        heights = [pt.height for pt in h.points]
        if heights != sorted(set(heights), reverse=True):
            raise ErrInvalidRequest.wrap(f"pricing genesis: {h.model_id} history must be newest first, unique")
        for pt in h.points:
            _amount(f"{h.model_id}@{pt.height}.price", pt.price)


def init_genesis(k: PricingKeeper, ctx: Context, gs: genesis_pb2.GenesisState) -> None:
    """Models must already be registered (registry's genesis runs first); the base price
    stored with each record is the registered one."""
    k.set_params(ctx, gs.params)
    for mp in gs.prices:
        model = k.registry.get_model(ctx, mp.model_id)
        if model is None:
            raise ErrInvalidRequest.wrap(f"pricing genesis: price of unregistered model {mp.model_id!r}")
        if mp.base_price != model.base_price:
            raise ErrInvalidRequest.wrap(f"pricing genesis: {mp.model_id} base price differs from the registry's")
        k.set_price(ctx, mp)
    for h in gs.history:
        for pt in h.points:
            k.add_point(ctx, h.model_id, pt)


def export_genesis(k: PricingKeeper, ctx: Context) -> genesis_pb2.GenesisState:
    gs = genesis_pb2.GenesisState(params=k.get_params(ctx), prices=k.stored_prices(ctx))
    for model_id in k.history_models(ctx):
        gs.history.add(model_id=model_id, points=k.history(ctx, model_id))
    return gs
