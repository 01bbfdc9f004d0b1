"""Models and their prices: the pricing module's current and recent prices, else the base price.

A model's price (upoly per 1000 tokens) is the pricing module's
(`/polylink.pricing.v1.Query/Price|Prices|History`). On a chain whose app
does not serve those queries (no pricing module) every query here falls back
to the model's registered `base_price`, which is then the price the chain
charges; each call asks again, so a gateway notices the module as soon as the
chain serves it. `Quote.source` says which one was used.
"""

from __future__ import annotations

from dataclasses import dataclass

from polylink.base.v1 import query_pb2 as base_q
from polylink.pricing.v1 import query_pb2 as pricing_q
from polylink.pricing.v1 import types_pb2 as pricing_t
from polylink.registry.v1 import query_pb2 as reg_q
from polylink.registry.v1 import types_pb2 as reg_t

from chain.client.errors import ChainQueryError
from chain.core.errors import ErrUnknownRequest
from gateway.chain import ChainClient

PATH_PRICE = "/polylink.pricing.v1.Query/Price"
PATH_PRICES = "/polylink.pricing.v1.Query/Prices"
PATH_HISTORY = "/polylink.pricing.v1.Query/History"
PATH_MODEL = "/polylink.registry.v1.Query/Model"
PATH_MODELS = "/polylink.registry.v1.Query/Models"
SOURCE_PRICING = "pricing"
SOURCE_BASE = "base_price"
PAGE = 100
# registry ErrUnknownModel, and the generic not-found
NOT_FOUND = {("registry", 9), ("tx", 20)}
# what a chain without the pricing module answers its query paths with (tx/9, unknown request)
NO_PRICING = (ErrUnknownRequest.codespace, ErrUnknownRequest.code)


def _no_pricing(e: ChainQueryError) -> bool:
    """The chain does not serve pricing queries: fall back to base prices. Any other query error
    is a real failure and propagates (a base price then would under-quote a moved price)."""
    return (e.codespace, e.code) == NO_PRICING


@dataclass(frozen=True)
class Quote:
    """A model's price now (upoly per 1000 tokens) and what set it."""

    model_id: str
    price: int
    base_price: int
    # the height whose end set the price (0: never moved, or no pricing module).
    height: int = 0
    demand: int = 0
    target: int = 0
    source: str = SOURCE_BASE

    def to_json(self) -> dict[str, object]:
        return {
            "model_id": self.model_id,
            "price": str(self.price),
            "base_price": str(self.base_price),
            "height": self.height,
            "demand": self.demand,
            "target": self.target,
            "source": self.source,
        }


@dataclass(frozen=True)
class Point:
    """One block of a model's price history."""

    height: int
    price: int
    demand: int
    target: int


def _int(text: str) -> int:
    return int(text) if text else 0


def base_quote(model: reg_t.Model) -> Quote:
    base = _int(model.base_price)
    return Quote(model.model_id, base, base)


def _quote(p: pricing_t.ModelPrice, fallback: reg_t.Model | None = None) -> Quote:
    base = _int(p.base_price) or (_int(fallback.base_price) if fallback is not None else 0)
    return Quote(p.model_id, _int(p.price) or base, base, p.height, p.demand, p.target, SOURCE_PRICING)


async def all_models(client: ChainClient) -> list[reg_t.Model]:
    """Every registered model, by model id, following pagination."""
    out: list[reg_t.Model] = []
    key = b""
    while True:
        r = await client.query(
            PATH_MODELS,
            reg_q.QueryModelsRequest(pagination=base_q.PageRequest(key=key, limit=PAGE)),
            reg_q.QueryModelsResponse,
        )
        out.extend(r.models)
        key = r.pagination.next_key
        if not key:
            return out


async def model(client: ChainClient, model_id: str) -> reg_t.Model | None:
    """The registered model, or None when the registry has no such id."""
    try:
        r = await client.query(PATH_MODEL, reg_q.QueryModelRequest(model_id=model_id), reg_q.QueryModelResponse)
    except ChainQueryError as e:
        if (e.codespace, e.code) in NOT_FOUND:
            return None
        raise
    return r.model if r.model.model_id else None


async def quote(client: ChainClient, m: reg_t.Model) -> Quote:
    """The model's current price: the pricing module's, else its base price."""
    try:
        r = await client.query(
            PATH_PRICE, pricing_q.QueryPriceRequest(model_id=m.model_id), pricing_q.QueryPriceResponse
        )
    except ChainQueryError as e:
        if not _no_pricing(e):
            raise
        return base_quote(m)
    return _quote(r.price, m) if r.price.model_id else base_quote(m)


async def quotes(client: ChainClient, models: list[reg_t.Model]) -> dict[str, Quote]:
    """Current prices of `models` by model id: one paginated Prices query, else base prices."""
    out = {m.model_id: base_quote(m) for m in models}
    by_id = {m.model_id: m for m in models}
    key = b""
    try:
        while True:
            r = await client.query(
                PATH_PRICES,
                pricing_q.QueryPricesRequest(pagination=base_q.PageRequest(key=key, limit=PAGE)),
                pricing_q.QueryPricesResponse,
            )
            for p in r.prices:
                if p.model_id in out:
                    out[p.model_id] = _quote(p, by_id[p.model_id])
            key = r.pagination.next_key
            if not key:
                return out
    except ChainQueryError as e:
        if not _no_pricing(e):
            raise
        return {m.model_id: base_quote(m) for m in models}


async def history(client: ChainClient, model_id: str, limit: int) -> list[Point]:
    """The model's last `limit` price points, oldest first ([] without a pricing module)."""
    try:
        r = await client.query(
            PATH_HISTORY,
            pricing_q.QueryHistoryRequest(model_id=model_id, pagination=base_q.PageRequest(limit=limit)),
            pricing_q.QueryHistoryResponse,
        )
    except ChainQueryError as e:
        if not _no_pricing(e):
            raise
        return []
    points = [Point(p.height, _int(p.price), p.demand, p.target) for p in r.points]
    return sorted(points, key=lambda p: p.height)


def max_price_for(q: Quote, cap: str, headroom_ppm: int) -> str:
    """The max_price a request is sent with: `cap` when set, else the price plus headroom (rounded up)."""
    if cap:
        return cap
    return str(-(-q.price * (1_000_000 + headroom_ppm) // 1_000_000))
