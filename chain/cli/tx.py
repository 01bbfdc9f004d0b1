"""`polylink tx`: sign with a keyring key and broadcast (optionally waiting for the block)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import Callable

from google.protobuf.message import Message

from chain.cli.client_args import add_home, add_node, add_output, emit, fail, run, show_help
from chain.client.client import Client
from chain.client.keyring import Keyring
from chain.client.msgs import msg_multi_send, msg_send
from chain.client.results import TxResult
from chain.client.tx_builder import DEFAULT_GAS
from chain.core.coins import BOND_DENOM, Coins, ErrInvalidCoins

# Later modules add their command groups in chain/cli/<module>_cmds.py, each
# with register_tx(subparsers) and register_query(subparsers).
MODULE_GROUPS = ("staking", "slashing", "gov", "registry", "inference", "tiqe", "rewards", "pricing")


def register_module_groups(sub: argparse._SubParsersAction[argparse.ArgumentParser], hook: str) -> None:
    for name in MODULE_GROUPS:
        try:
            mod = importlib.import_module(f"chain.cli.{name}_cmds")
        except ModuleNotFoundError as e:
            if e.name == f"chain.cli.{name}_cmds":
                continue
            raise
        getattr(mod, hook)(sub)


def register(parser: argparse.ArgumentParser) -> None:
    show_help(parser)
    sub = parser.add_subparsers(dest="tx_module", metavar="MODULE")
    register_module_groups(sub, "register_tx")
    bank = sub.add_parser(
        "bank",
        help="bank transactions (send, multi-send)",
        description="Move coins between accounts.",
    )
    show_help(bank)
    bsub = bank.add_subparsers(dest="tx_cmd", metavar="COMMAND")

    p = bsub.add_parser(
        "send",
        help="send coins from a key to an address",
        description="Sign a MsgSend with key FROM_KEY and broadcast it; prints the tx hash.",
    )
    p.add_argument("from_key", metavar="FROM_KEY", help="name of the sending key in the keyring")
    p.add_argument("to", metavar="TO_ADDR", help="recipient's bech32 address (poly1...)")
    p.add_argument("amount", metavar="AMOUNT", help="coins to send, e.g. 100upoly or 5upoly,7uabc")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_send))

    p = bsub.add_parser(
        "multi-send",
        help="send coins from a key to many addresses in one tx",
        description="Sign a MsgMultiSend with key FROM_KEY (paying the sum) and broadcast it.",
    )
    p.add_argument("from_key", metavar="FROM_KEY", help="name of the sending key in the keyring")
    p.add_argument(
        "outputs",
        metavar="TO:AMOUNT",
        nargs="+",
        help="one recipient and its coins per argument, e.g. poly1...:100upoly",
    )
    _tx_flags(p)
    p.set_defaults(func=run(cmd_multi_send))


def _tx_flags(p: argparse.ArgumentParser) -> None:
    add_node(p)
    add_home(p)
    add_output(p)
    p.add_argument(
        "--gas", type=int, default=DEFAULT_GAS, help=f"gas limit (default {DEFAULT_GAS})"
    )
    p.add_argument(
        "--fees",
        metavar="AMOUNT",
        help="fee, e.g. 2000upoly (default: gas x the chain's min gas price, rounded up)",
    )
    p.add_argument("--memo", default="", help="tx memo")
    p.add_argument(
        "--timeout-height",
        type=int,
        default=0,
        help="the tx fails if included after this height (0: never)",
    )
    p.add_argument(
        "--wait", action="store_true", help="wait until the tx is in a block and print its result"
    )
    p.add_argument(
        "--wait-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long --wait waits (default 30)",
    )


def parse_fee(text: str | None) -> int | None:
    """'2000upoly' or '2000' -> 2000; only the bond denom pays fees."""
    if text is None:
        return None
    coins = Coins.parse(text + BOND_DENOM if text.isdigit() else text)
    if [d for d, _ in coins.items()] not in ([], [BOND_DENOM]):
        raise ErrInvalidCoins.wrap(f"fees must be paid in {BOND_DENOM}, got {text!r}")
    return coins.amount_of(BOND_DENOM)


def parse_output(text: str) -> tuple[str, str]:
    addr, sep, amount = text.partition(":")
    if not sep or not addr or not amount:
        raise ErrInvalidCoins.wrap(f"output {text!r} must look like poly1...:100upoly")
    return addr, amount


def cmd_send(args: argparse.Namespace) -> int:
    return _sign_and_send(args, lambda sender: [msg_send(sender, args.to, args.amount)])


def cmd_multi_send(args: argparse.Namespace) -> int:
    outputs = [parse_output(o) for o in args.outputs]
    return _sign_and_send(args, lambda sender: [msg_multi_send(sender, outputs)])


def _sign_and_send(args: argparse.Namespace, build: Callable[[str], list[Message]]) -> int:
    if args.gas <= 0:
        return fail("--gas must be positive")
    fee = parse_fee(args.fees)
    signer = Keyring(args.home).get_signer(args.from_key)
    msgs = build(signer.address)  # checks addresses and amounts before any network call

    async def go() -> TxResult | None:
        async with Client(args.node) as c:
            res = await c.send(
                msgs,
                signer,
                gas=args.gas,
                fee=fee,
                memo=args.memo,
                timeout_height=args.timeout_height,
            )
            if not args.wait:
                emit(
                    args,
                    {
                        "txhash": res.hash,
                        "code": res.code,
                        "codespace": res.codespace,
                        "log": res.log,
                    },
                    f"txhash: {res.hash}\ncode: {res.code}",
                )
                return None
            return await c.wait(res.hash, args.wait_timeout)

    result = asyncio.run(go())
    if result is None:
        return 0
    emit(
        args,
        result.to_json(),
        f"txhash: {result.hash}\nheight: {result.height}\ncode: {result.code}\n"
        f"gas_used: {result.gas_used}/{result.gas_wanted}"
        + (f"\nlog: {result.log}" if result.log else ""),
    )
    if not result.ok:
        return fail(
            f"tx {result.hash} failed in its block: codespace={result.codespace} "
            f"code={result.code} log={result.log}"
        )
    return 0
