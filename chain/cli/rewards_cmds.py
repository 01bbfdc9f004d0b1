"""`polylink query rewards ...`: where fees and the block emission went (the module has no txs).

    polylink query rewards params | totals | emission
"""

from __future__ import annotations

import argparse

from polylink.rewards.v1 import query_pb2 as q

from chain.cli.client_args import emit, run, show_help
from chain.cli.query import _flags, _query
from chain.core.codec import to_json

PATH = "/polylink.rewards.v1.Query/"


def register_tx(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """rewards has no transactions: fees split at settlement, emission every block."""


def register_query(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "rewards",
        help="fee splits and block emission: params, totals, emission",
        description="Query the rewards module.",
    )
    show_help(g)
    s = g.add_subparsers(dest="query_cmd", metavar="COMMAND")
    p = s.add_parser(
        "params",
        help="the fee shares and the block reward",
        description="worker_share_ppm, validator_share_ppm (the rest of a fee goes to the community pool) "
        "and block_reward (upoly minted per block for the bonded validators).",
    )
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_params))
    p = s.add_parser(
        "totals",
        help="what was paid to whom since genesis",
        description="upoly paid from fees to workers, model providers, validators (operators and delegators) "
        "and the community pool, refunded worker shares of rejected results, and the emission's totals.",
    )
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_totals))
    p = s.add_parser(
        "emission",
        help="block reward, minted so far, supply and community pool",
        description="The block reward, the supply before any emission, what was minted since, the total "
        "supply (initial + minted - burned) and the community pool's balance.",
    )
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_emission))


def _show(args: argparse.Namespace, key: str, obj: dict[str, object]) -> int:
    emit(args, {key: obj} if key else obj, "\n".join(f"{k}: {v}" for k, v in obj.items()))
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    r = _query(args, lambda c: c.query(PATH + "Params", q.QueryParamsRequest(), q.QueryParamsResponse))
    return _show(args, "params", to_json(r.params))


def cmd_totals(args: argparse.Namespace) -> int:
    r = _query(args, lambda c: c.query(PATH + "Totals", q.QueryTotalsRequest(), q.QueryTotalsResponse))
    return _show(args, "totals", to_json(r.totals))


def cmd_emission(args: argparse.Namespace) -> int:
    r = _query(args, lambda c: c.query(PATH + "Emission", q.QueryEmissionRequest(), q.QueryEmissionResponse))
    return _show(args, "", to_json(r))
