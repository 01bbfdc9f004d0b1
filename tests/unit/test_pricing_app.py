"""The pricing module on the real keepers (the app's wiring): requests pay the current price and
are refused above their max_price, busy blocks raise the price and idle ones bring it back to the
base, supply follows the active workers, history is kept for a bounded window and paged newest
first, queries, genesis export -> import, params and invariants."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message
from polylink.base.v1.query_pb2 import PageRequest
from polylink.inference.v1 import tx_pb2 as inf_tx
from polylink.pricing.v1 import query_pb2

from chain.app.app import PolyLinkApp
from chain.core.context import Context, ExecMode
from chain.core.errors import ChainError
from chain.core.store import MemStore
from chain.grpc.query_service import query_services
from chain.modules.inference.errors import ErrPriceTooHigh
from chain.modules.inference.fees import slot_escrow
from chain.modules.pricing import keys
from chain.modules.pricing.params import default_params, validate_params
from tests.unit.tiqe_env import MODEL, PRICE, USER, Env

OPEN = 10**12  # a max_price that accepts any price


def busy(e: Env, requests: int, max_tokens: int = 100) -> None:
    """`requests` requests in this block, then its end."""
    for _ in range(requests):
        e.ask(max_tokens=max_tokens, max_price=OPEN)
    e.end_block()


def price(e: Env) -> int:
    p = e.m.pricing.price_of(e.q(), MODEL)
    assert p is not None
    return p


def query(e: Env, method: str, req: Message) -> Message:
    """Through the app's query router, as ABCI Query and gRPC reach it."""
    return e.m.queries.get(f"/polylink.pricing.v1.Query/{method}").handler(e.q(), req)


def test_a_busy_block_raises_the_price_and_the_next_request_pays_it() -> None:
    e = Env()  # one worker of capacity 1000: target 500 tokens a block
    assert price(e) == PRICE
    busy(e, 6)  # 600 tokens: (600 - 500) / 500 / 8 = +2.5%
    assert price(e) == 1025
    assert e.events_of("pricing.price")[-1] == {
        "model_id": MODEL, "price": "1025", "previous": "1000", "demand": "600", "target": "500",
    }  # fmt: skip
    before = e.balance(USER)
    rid = e.ask(max_tokens=100, max_price=OPEN)
    r = e.request(rid)
    assert r.price == "1025" and int(r.escrow) == slot_escrow(1025, 100)
    assert e.balance(USER) == before - slot_escrow(1025, 100)
    assert e.invariants() == []


def test_a_request_whose_max_price_is_below_the_current_price_is_refused_and_costs_nothing() -> None:
    e = Env()
    busy(e, 12)
    assert price(e) == 1125  # more than twice the target: the full 1/8
    before = e.balance(USER)
    err = e.try_deliver(
        inf_tx.MsgRequestInference(requester=USER, model_id=MODEL, prompt="hi", max_tokens=100, max_price="1124")
    )
    assert isinstance(err, ChainError)
    assert (err.codespace, err.code) == (ErrPriceTooHigh.codespace, ErrPriceTooHigh.code)
    assert e.balance(USER) == before
    assert e.m.pricing.pending_demand(e.q()) == {}  # a refused request adds no demand
    e.ask(max_tokens=100, max_price=1125)  # exactly the price is accepted


def test_idle_blocks_bring_the_price_back_to_the_base_then_it_stops_stepping() -> None:
    e = Env()
    for _ in range(3):
        busy(e, 12)
    assert price(e) == 1423  # 1000 -> 1125 -> 1265 -> 1423 (each step price // 8, rounded down)
    path = []
    for _ in range(5):
        e.end_block()
        path.append(price(e))
    assert path == [1246, 1091, 1000, 1000, 1000]  # -1/8 each block, floored at the base
    assert e.m.pricing.above_base(e.q()) == []
    points = e.m.pricing.history(e.q(), MODEL)
    # the base price reached, idle blocks add no point: 3 busy + 3 falling blocks
    assert [int(p.price) for p in points] == [1000, 1091, 1246, 1423, 1265, 1125]
    assert e.invariants() == []


def test_the_target_follows_the_active_workers_capacity() -> None:
    e = Env(workers=("w0", "w1"))  # capacity 2 x 1000: target 1000
    busy(e, 12)  # 1200 tokens: +2.5%
    assert price(e) == 1025
    mp = e.m.pricing.get_price(e.q(), e.m.registry.get_model(e.q(), MODEL))  # type: ignore[arg-type]
    assert (mp.demand, mp.target, mp.height) == (1200, 1000, e.height - 1)
    # a jailed worker is no supply
    e.run(lambda ctx: e.m.registry.jail_worker(ctx, e.workers[1], e.height + 100, "test"))
    busy(e, 6)
    mp = e.m.pricing.get_price(e.q(), e.m.registry.get_model(e.q(), MODEL))  # type: ignore[arg-type]
    assert (mp.demand, mp.target) == (600, 500)
    assert price(e) == 1025 + 1025 * 100 // 4000


def test_history_is_kept_for_history_blocks_and_paged_newest_first() -> None:
    e = Env()
    e.run(lambda ctx: e.m.pricing.set_params(ctx, validated(history_blocks=3)))
    for _ in range(5):
        busy(e, 12)
    heights = [p.height for p in e.m.pricing.history(e.q(), MODEL)]
    last = e.height - 1
    assert heights == [last, last - 1, last - 2]
    resp = query(e, "History", query_pb2.QueryHistoryRequest(model_id=MODEL, pagination=PageRequest(limit=2)))
    assert [p.height for p in resp.points] == [last, last - 1]  # type: ignore[attr-defined]
    nxt = query(
        e, "History",
        query_pb2.QueryHistoryRequest(model_id=MODEL, pagination=PageRequest(key=resp.pagination.next_key, limit=2)),  # type: ignore[attr-defined]
    )  # fmt: skip
    assert [p.height for p in nxt.points] == [last - 2] and not nxt.pagination.next_key  # type: ignore[attr-defined]
    assert e.invariants() == []


def test_price_queries_answer_for_every_model_and_refuse_unknown_ones() -> None:
    e = Env()
    busy(e, 12)
    one = query(e, "Price", query_pb2.QueryPriceRequest(model_id=MODEL))
    assert one.price.price == "1125" and one.price.base_price == "1000"  # type: ignore[attr-defined]
    allp = query(e, "Prices", query_pb2.QueryPricesRequest())
    assert [(p.model_id, p.price) for p in allp.prices] == [(MODEL, "1125")]  # type: ignore[attr-defined]
    params = query(e, "Params", query_pb2.QueryParamsRequest())
    assert params.params == default_params()  # type: ignore[attr-defined]
    for bad in ("", "nope"):
        with pytest.raises(ChainError):
            query(e, "Price", query_pb2.QueryPriceRequest(model_id=bad))
        with pytest.raises(ChainError):
            query(e, "History", query_pb2.QueryHistoryRequest(model_id=bad))


def test_genesis_export_import_is_exact_and_the_path_goes_on_alike() -> None:
    e = Env()
    for n in (12, 12, 0):
        busy(e, n)
    state = {mod.name: mod.export_genesis(e.q()) for mod in e.m.all}
    f = Env(store=MemStore(), height=e.height)
    ctx = Context(f.store, f.ctx().header, ExecMode.GENESIS)
    for mod in f.m.all:
        mod.validate_genesis(state[mod.name])
        mod.init_genesis(ctx, state[mod.name])
    for mod in f.m.all:
        mod.end_block(ctx)  # InitChain's end_block must not step imported prices
    assert f.m.pricing.stored_prices(f.q()) == e.m.pricing.stored_prices(e.q())
    assert f.m.pricing.history(f.q(), MODEL) == e.m.pricing.history(e.q(), MODEL)
    assert f.mods["pricing"].export_genesis(f.q()) == state["pricing"]
    e.end_block()
    f.end_block()
    assert price(f) == price(e) and f.invariants() == []


@pytest.mark.parametrize(
    "change",
    [{"target_util_ppm": 0}, {"target_util_ppm": 1_000_001}, {"adjust_denominator": 0},
     {"max_price": "0"}, {"max_price": "ten"}, {"history_blocks": 0}, {"history_blocks": 10_001}],
)  # fmt: skip
def test_bad_params_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(ChainError):
        validated(**change)


def test_the_invariants_see_a_price_below_the_base_and_a_stale_index() -> None:
    """Corruptions EndBlock would not repair (a model out of the ABOVE_BASE index is not stepped)."""
    e = Env()
    busy(e, 12)
    assert e.invariants() == []
    mp = e.m.pricing.get_price(e.q(), e.m.registry.get_model(e.q(), MODEL))  # type: ignore[arg-type]

    def corrupt(price: str) -> list[str]:
        mp.price = price

        def write(ctx: Context) -> None:
            kv = e.m.pricing._kv(ctx)
            kv.set(keys.price_key(MODEL), mp.SerializeToString())
            kv.delete(keys.above_base_key(MODEL))

        e.run(write)
        return e.invariants()

    broken = corrupt("999")
    assert any(x.startswith("pricing/bounds") and "outside [1000" in x for x in broken), broken
    broken = corrupt("1125")  # above its base, yet not stepped every block
    assert any(x.startswith("pricing/bounds") and "above-base index" in x for x in broken), broken


def test_the_app_wires_pricing_after_inference_and_binds_it_as_the_pricer() -> None:
    app = PolyLinkApp(None)
    names = [m.name for m in app.m.all]
    assert names.index("pricing") > names.index("inference")  # a block's demand is all in at its EndBlock
    assert app.m.inference.pricer is app.m.pricing
    assert "pricing" in app.m.params  # governance changes its params
    assert sorted(query_services(app)["polylink.pricing.v1.Query"]) == ["History", "Params", "Price", "Prices"]


def validated(**change: object) -> object:
    p = default_params()
    for k, v in change.items():
        setattr(p, k, v)
    validate_params(p)
    return p
