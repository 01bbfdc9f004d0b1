"""PricingKeeper: the only code that reads or writes pricing state (SPEC 3.7).

A model's price starts at its registered `base_price` (the floor). Inference
asks `price_of` when a request arrives and, once the request is escrowed,
reports its tokens (max_tokens x redundancy) with `record_demand`. The
module's EndBlock, after inference's, steps the price of every model that had
demand in the block or is priced above its base (`formula.next_price`): the
target is the model's active workers' capacity x `target_util_ppm`. A model
at its base price without demand would stay there (the step cannot go below
the floor), so it is skipped: per-block work is bounded by the models in use,
not by every model ever registered. Each step writes one history point;
points older than `history_blocks` are pruned in the same EndBlock.

Requests in block h pay the price set at the end of block h - 1.
"""

from __future__ import annotations

from polylink.base.v1.query_pb2 import PageRequest, PageResponse
from polylink.pricing.v1 import types_pb2

from chain.core.codec import decode, encode
from chain.core.coins import parse_amount
from chain.core.context import Context
from chain.core.events import Event
from chain.core.query import paginate
from chain.core.store import KVStore, PrefixStore
from chain.modules.pricing import keys
from chain.modules.pricing.expected import Model, RegistryKeeper
from chain.modules.pricing.formula import next_price, target_of
from chain.modules.pricing.params import default_params

ModelPrice = types_pb2.ModelPrice
PricePoint = types_pb2.PricePoint


class PricingKeeper:
    def __init__(self, registry: RegistryKeeper) -> None:
        self.registry = registry

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    # --- params ------------------------------------------------------------
    def get_params(self, ctx: Context) -> types_pb2.Params:
        raw = self._kv(ctx).get(keys.PARAMS)
        return default_params() if raw is None else decode(types_pb2.Params, raw)

    def set_params(self, ctx: Context, p: types_pb2.Params) -> None:
        self._kv(ctx).set(keys.PARAMS, encode(p))

    # --- prices ------------------------------------------------------------
    def get_price(self, ctx: Context, model: Model) -> ModelPrice:
        """The model's price record: the stored one, or its base price when it never moved."""
        raw = self._kv(ctx).get(keys.price_key(model.model_id))
        if raw is not None:
            return decode(ModelPrice, raw)
        return ModelPrice(model_id=model.model_id, price=model.base_price, base_price=model.base_price)

    def set_price(self, ctx: Context, mp: ModelPrice) -> None:
        """Store the record and keep the ABOVE_BASE index in step with it."""
        kv = self._kv(ctx)
        kv.set(keys.price_key(mp.model_id), encode(mp))
        if parse_amount(mp.price) > parse_amount(mp.base_price):
            kv.set(keys.above_base_key(mp.model_id), keys.PRESENT)
        else:
            kv.delete(keys.above_base_key(mp.model_id))

    def stored_prices(self, ctx: Context) -> list[ModelPrice]:
        """Every stored record, by model id (genesis export, invariants)."""
        return [decode(ModelPrice, v) for _, v in PrefixStore(self._kv(ctx), keys.PRICE).iterate()]

    def above_base(self, ctx: Context) -> list[str]:
        """Model ids in the ABOVE_BASE index, ascending."""
        return [k.decode() for k, _ in PrefixStore(self._kv(ctx), keys.ABOVE_BASE).iterate()]

    def price_of(self, ctx: Context, model_id: str) -> int | None:
        """upoly per 1000 tokens a request for `model_id` pays now; None for an unknown model."""
        model = self.registry.get_model(ctx, model_id)
        return None if model is None else parse_amount(self.get_price(ctx, model).price)

    def prices_page(self, ctx: Context, page: PageRequest | None) -> tuple[list[ModelPrice], PageResponse]:
        """Every registered model's price record, one page by model id."""
        models, resp = self.registry.models_page(ctx, page)
        return [self.get_price(ctx, m) for m in models], resp

    # --- demand ------------------------------------------------------------
    def record_demand(self, ctx: Context, model_id: str, tokens: int) -> None:
        """Add a request's tokens to the model's demand in this block."""
        if tokens <= 0:
            return
        kv = self._kv(ctx)
        raw = kv.get(keys.demand_key(model_id))
        kv.set(keys.demand_key(model_id), keys.u64((0 if raw is None else int.from_bytes(raw, "big")) + tokens))

    def pending_demand(self, ctx: Context) -> dict[str, int]:
        """Tokens requested so far in this block, per model id (empty between blocks)."""
        return {
            k.decode(): int.from_bytes(v, "big") for k, v in PrefixStore(self._kv(ctx), keys.DEMAND).iterate()
        }

    # --- history -----------------------------------------------------------
    def history_page(
        self, ctx: Context, model_id: str, page: PageRequest | None
    ) -> tuple[list[PricePoint], PageResponse]:
        """One page of the model's kept price points, newest first."""
        store = PrefixStore(self._kv(ctx), keys.history_prefix(model_id))
        return paginate(store, page, lambda _k, raw: decode(PricePoint, raw))

    def history(self, ctx: Context, model_id: str) -> list[PricePoint]:
        """Every kept point of the model, newest first."""
        store = PrefixStore(self._kv(ctx), keys.history_prefix(model_id))
        return [decode(PricePoint, v) for _, v in store.iterate()]

    def history_models(self, ctx: Context) -> list[str]:
        """Model ids with kept history points, ascending (from the pruning index)."""
        return sorted({k[8:].decode() for k, _ in PrefixStore(self._kv(ctx), keys.BY_HEIGHT).iterate()})

    def add_point(self, ctx: Context, model_id: str, point: PricePoint) -> None:
        kv = self._kv(ctx)
        kv.set(keys.history_key(model_id, point.height), encode(point))
        kv.set(keys.by_height_key(point.height, model_id), keys.PRESENT)

    def _prune(self, ctx: Context, keep_from: int) -> None:
        """Delete every history point below height `keep_from`."""
        kv = self._kv(ctx)
        index = PrefixStore(kv, keys.BY_HEIGHT)
        old = [k for k, _ in index.iterate(b"", keys.u64(keep_from))]
        for k in old:
            height, model_id = int.from_bytes(k[:8], "big"), k[8:].decode()
            kv.delete(keys.BY_HEIGHT + k)
            kv.delete(keys.history_key(model_id, height))

    # --- per block ---------------------------------------------------------
    def end_block(self, ctx: Context) -> None:
        """Step the price of every model with demand in this block or priced above its base,
        by model id; record each step in the history; prune points out of the window; clear
        the block's demand."""
        p = self.get_params(ctx)
        cap = parse_amount(p.max_price)
        demand = self.pending_demand(ctx)
        kv = self._kv(ctx)
        for model_id in sorted(set(demand) | set(self.above_base(ctx))):
            kv.delete(keys.demand_key(model_id))
            model = self.registry.get_model(ctx, model_id)
            if model is None:  # models are never deleted; a record without one is a bug
                raise RuntimeError(f"pricing: no registered model {model_id!r}")
            old = self.get_price(ctx, model)
            tokens = demand.get(model_id, 0)
            target = target_of(self.registry.active_capacity(ctx, model_id), p.target_util_ppm)
            base = parse_amount(model.base_price)
            price = next_price(parse_amount(old.price), tokens, target, base, cap, p.adjust_denominator)
            mp = ModelPrice(
                model_id=model_id,
                price=str(price),
                base_price=model.base_price,
                height=ctx.height,
                demand=tokens,
                target=target,
            )
            self.set_price(ctx, mp)
            self.add_point(ctx, model_id, PricePoint(height=ctx.height, price=str(price), demand=tokens, target=target))
            if price != parse_amount(old.price):
                ctx.emit(
                    Event.of(
                        "pricing.price",
                        model_id=model_id,
                        price=price,
                        previous=old.price,
                        demand=tokens,
                        target=target,
                    )
                )
        self._prune(ctx, max(0, ctx.height + 1 - p.history_blocks))  # keep (h - history_blocks, h]
