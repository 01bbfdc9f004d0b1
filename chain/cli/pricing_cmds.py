"""`polylink query pricing ...`: the dynamic price of each model (the module has no txs).

    polylink query pricing params | price MODEL_ID | prices | history MODEL_ID [--limit N]
"""

from __future__ import annotations

import argparse

from polylink.base.v1 import query_pb2 as base_q
from polylink.pricing.v1 import query_pb2 as q
from polylink.pricing.v1 import types_pb2

from chain.cli.client_args import emit, positive_int, run, show_help
from chain.cli.query import _flags, _query
from chain.core.codec import to_json

PATH = "/polylink.pricing.v1.Query/"
MAX_PAGE = 1000  # the servers' page cap


def register_tx(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """pricing has no transactions: prices move with demand at the end of every block."""


def register_query(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "pricing",
        help="dynamic prices: params, price, prices, history",
        description="Query the pricing module: each model's price per 1000 tokens, set at the end of every "
        "block from its demand against its active workers' capacity (SPEC 3.7).",
    )
    show_help(g)
    s = g.add_subparsers(dest="query_cmd", metavar="COMMAND")
    p = s.add_parser(
        "params",
        help="target utilisation, step denominator, cap, history window",
        description="target_util_ppm, adjust_denominator, max_price (upoly per 1000 tokens) and history_blocks.",
    )
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_params))
    p = s.add_parser(
        "price",
        help="one model's current price",
        description="The price a request for MODEL_ID pays now, its base price (the floor), and the block step "
        "that set it (height, demand, target).",
    )
    p.add_argument("model_id", metavar="MODEL_ID", help="a registered model id")
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_price))
    p = s.add_parser("prices", help="every model's current price", description="The current price of every model.")
    p.add_argument("--limit", type=positive_int, default=100, metavar="N", help="at most N models (default 100)")
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_prices))
    p = s.add_parser(
        "history",
        help="a model's recent prices, newest first",
        description="The price set at the end of each recent block in which MODEL_ID had demand or a price "
        "above its base (kept for history_blocks blocks), newest first.",
    )
    p.add_argument("model_id", metavar="MODEL_ID", help="a registered model id")
    p.add_argument(
        "--limit", type=positive_int, default=50, metavar="N", help=f"at most N points (default 50, max {MAX_PAGE})"
    )
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_history))


def _line(mp: types_pb2.ModelPrice) -> str:
    step = f"\tset at {mp.height} (demand {mp.demand}, target {mp.target})" if mp.height else "\t(never moved)"
    return f"{mp.model_id}\t{mp.price} upoly/1k tokens\tbase {mp.base_price}{step}"


def cmd_params(args: argparse.Namespace) -> int:
    r = _query(args, lambda c: c.query(PATH + "Params", q.QueryParamsRequest(), q.QueryParamsResponse))
    obj = to_json(r.params)
    emit(args, {"params": obj}, "\n".join(f"{k}: {v}" for k, v in obj.items()))
    return 0


def cmd_price(args: argparse.Namespace) -> int:
    req = q.QueryPriceRequest(model_id=args.model_id)
    r = _query(args, lambda c: c.query(PATH + "Price", req, q.QueryPriceResponse))
    emit(args, {"price": to_json(r.price)}, _line(r.price))
    return 0


def cmd_prices(args: argparse.Namespace) -> int:
    req = q.QueryPricesRequest(pagination=base_q.PageRequest(limit=min(args.limit, MAX_PAGE)))
    r = _query(args, lambda c: c.query(PATH + "Prices", req, q.QueryPricesResponse))
    emit(args, {"prices": [to_json(mp) for mp in r.prices]}, "\n".join(_line(mp) for mp in r.prices) or "(no models)")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    req = q.QueryHistoryRequest(
        model_id=args.model_id, pagination=base_q.PageRequest(limit=min(args.limit, MAX_PAGE))
    )
    r = _query(args, lambda c: c.query(PATH + "History", req, q.QueryHistoryResponse))
    text = "\n".join(f"{pt.height}\t{pt.price}\tdemand {pt.demand}\ttarget {pt.target}" for pt in r.points)
    emit(args, {"points": [to_json(pt) for pt in r.points]}, text or "(no history)")
    return 0
