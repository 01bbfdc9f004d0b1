"""`polylink query`: read chain state through the node's ABCI query (last committed height)."""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from chain.cli.client_args import (
    add_home,
    add_node,
    add_output,
    emit,
    fail,
    resolve_address,
    run,
    show_help,
)
from chain.client.client import Client
from chain.core.codec import to_json
from chain.core.coins import Coins

T = TypeVar("T")


from chain.cli.tx import register_module_groups  # noqa: E402  (shared with tx)


def register(parser: argparse.ArgumentParser) -> None:
    show_help(parser)
    sub = parser.add_subparsers(dest="query_module", metavar="MODULE")
    register_module_groups(sub, "register_query")

    bank = sub.add_parser(
        "bank", help="bank balances and supply", description="Query the bank module."
    )
    show_help(bank)
    bsub = bank.add_subparsers(dest="query_cmd", metavar="COMMAND")
    p = bsub.add_parser(
        "balances",
        help="an account's balances",
        description="Balances of ADDR (a bech32 address or a keyring key name).",
    )
    p.add_argument("address", metavar="ADDR", help="bech32 address (poly1...) or key name")
    p.add_argument("--denom", help="only this denom")
    _flags(p)
    p.set_defaults(func=run(cmd_balances))
    p = bsub.add_parser(
        "total-supply",
        help="the total supply of every denom",
        description="The total supply of every denom.",
    )
    _flags(p)
    p.set_defaults(func=run(cmd_total_supply))

    auth = sub.add_parser(
        "auth", help="accounts and auth params", description="Query the auth module."
    )
    show_help(auth)
    asub = auth.add_subparsers(dest="query_cmd", metavar="COMMAND")
    _account_parser(asub, "account")
    p = asub.add_parser(
        "params",
        help="auth params (fee floor, gas schedule)",
        description="The auth module's params.",
    )
    _flags(p)
    p.set_defaults(func=run(cmd_auth_params))

    _account_parser(sub, "account", alias=True)

    p = sub.add_parser(
        "tx",
        help="a committed tx's result by hash",
        description="The result of tx HASH once it is in a block.",
    )
    p.add_argument("hash", metavar="HASH", help="tx hash (hex)")
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_tx))


def _account_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, alias: bool = False
) -> None:
    p = sub.add_parser(
        name,
        help="an account's number, sequence and public key"
        + (" (= auth account)" if alias else ""),
        description="The account ADDR (a bech32 address or a keyring key name).",
    )
    p.add_argument("address", metavar="ADDR", help="bech32 address (poly1...) or key name")
    _flags(p)
    p.set_defaults(func=run(cmd_account))


def _flags(p: argparse.ArgumentParser, home: bool = True) -> None:
    add_node(p)
    if home:
        add_home(p)
    add_output(p)


def _query(args: argparse.Namespace, q: Callable[[Client], Awaitable[T]]) -> T:
    async def go() -> T:
        async with Client(args.node) as c:
            return await q(c)

    return asyncio.run(go())


def _coins_json(coins: Coins) -> list[dict[str, str]]:
    return [{"denom": d, "amount": str(a)} for d, a in coins.items()]


def cmd_balances(args: argparse.Namespace) -> int:
    addr = resolve_address(args.address, args.home)
    if args.denom:
        amount = _query(args, lambda c: c.balance(addr, args.denom))
        emit(
            args,
            {"address": addr, "balance": {"denom": args.denom, "amount": str(amount)}},
            f"{amount}{args.denom}",
        )
        return 0
    coins = _query(args, lambda c: c.all_balances(addr))
    text = "\n".join(f"{a}{d}" for d, a in coins.items()) or "(no balances)"
    emit(args, {"address": addr, "balances": _coins_json(coins)}, text)
    return 0


def cmd_total_supply(args: argparse.Namespace) -> int:
    coins = _query(args, lambda c: c.total_supply())
    emit(
        args,
        {"supply": _coins_json(coins)},
        "\n".join(f"{a}{d}" for d, a in coins.items()) or "(none)",
    )
    return 0


def cmd_account(args: argparse.Namespace) -> int:
    addr = resolve_address(args.address, args.home)
    acc = _query(args, lambda c: c.account(addr))
    if acc is None:
        return fail(f"account {addr} not found (it has never received funds or sent a tx)")
    obj = to_json(acc)
    obj["pub_key"] = acc.pub_key.hex()
    text = "\n".join(f"{k}: {v}" for k, v in obj.items() if v not in ("", None))
    emit(args, {"account": obj}, text)
    return 0


def cmd_auth_params(args: argparse.Namespace) -> int:
    params = _query(args, lambda c: c.auth_params())
    obj = to_json(params)
    emit(args, {"params": obj}, "\n".join(f"{k}: {v}" for k, v in obj.items()))
    return 0


def cmd_tx(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"(0x)?[0-9A-Fa-f]{64}", args.hash):
        return fail(f"tx hash {args.hash!r} is not 64 hex characters")
    res = _query(args, lambda c: c.rpc.tx(args.hash))
    if res is None:
        return fail(f"tx {args.hash} not found (not yet in a block, or never broadcast)")
    emit(
        args,
        res.to_json(),
        f"txhash: {res.hash}\nheight: {res.height}\ncode: {res.code}\ncodespace: {res.codespace}\n"
        f"log: {res.log}\ngas_used: {res.gas_used}/{res.gas_wanted}",
    )
    return 0
