"""`polylink tx`: sign with a keyring key and broadcast (optionally waiting for the block)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

from google.protobuf.message import Message

from chain.cli.client_args import add_home, add_node, add_output, emit, fail, keyring_of, run, show_help
from chain.client.client import Client
from chain.client.errors import TxRejectedError
from chain.client.msgs import msg_multi_send, msg_send
from chain.client.offline import OfflineTxError, sign_unsigned, tx_bytes_of, unsigned_tx
from chain.client.results import TxResult
from chain.client.tx_builder import DEFAULT_GAS, min_fee
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

    p = sub.add_parser(
        "sign",
        help="sign an unsigned tx document (from --generate-only), offline when --chain-id and --sequence are given",
        description="Sign FILE (a tx written by any `polylink tx ... --generate-only`) with key FROM_KEY and "
        "print the signed document. Review the messages in FILE first: they are what the signature covers. "
        "With --chain-id and --sequence nothing is read from the network (a cold machine); otherwise the "
        "node is asked for them.",
    )
    p.add_argument("file", metavar="FILE", help="the unsigned tx document ('-' reads stdin)")
    p.add_argument("--from", dest="from_key", required=True, metavar="FROM_KEY", help="the signing key's name")
    p.add_argument("--chain-id", help="the chain id (default: asked of --node)")
    p.add_argument("--sequence", type=int, help="the signer's account sequence (default: asked of --node)")
    p.add_argument("--output-document", metavar="OUT", help="write the signed document here (default stdout)")
    add_node(p)
    add_home(p)
    p.set_defaults(func=run(cmd_sign))

    p = sub.add_parser(
        "broadcast",
        help="broadcast a signed tx document (from `polylink tx sign`)",
        description="Send the tx of FILE (a document written by `polylink tx sign`) to --node as it is.",
    )
    p.add_argument("file", metavar="FILE", help="the signed tx document ('-' reads stdin)")
    p.add_argument("--wait", action="store_true", help="wait until the tx is in a block and print its result")
    p.add_argument("--wait-timeout", type=float, default=30.0, metavar="SECONDS", help="how long --wait waits")
    add_node(p)
    add_output(p)
    p.set_defaults(func=run(cmd_broadcast))


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
        "--generate-only",
        action="store_true",
        help="print the unsigned tx as JSON instead of signing and sending it (no private key is read; "
        "sign it with `polylink tx sign`, send it with `polylink tx broadcast`)",
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
    if getattr(args, "generate_only", False):
        return _generate_only(args, build, fee)
    signer = keyring_of(args).get_signer(args.from_key)
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


def _generate_only(args: argparse.Namespace, build: Callable[[str], list[Message]], fee: int | None) -> int:
    """Print the unsigned tx document: the key's public part only (an address works too)."""
    sender = args.from_key if args.from_key.startswith("poly1") else keyring_of(args).show(args.from_key).address
    msgs = build(sender)
    if fee is None:  # the chain's minimum for the gas, as a signed send would pay

        async def price() -> int:
            async with Client(args.node) as c:
                return await c.min_gas_price_ppm()

        fee = min_fee(args.gas, asyncio.run(price()))
    doc = unsigned_tx(msgs, sender, gas_limit=args.gas, fee=fee, memo=args.memo, timeout_height=args.timeout_height)
    print(json.dumps(doc, indent=1))
    return 0


def _read_doc(path: str) -> dict[str, object]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        doc = json.loads(text)
    except OSError as e:
        raise OfflineTxError(f"cannot read {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise OfflineTxError(f"{path} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise OfflineTxError(f"{path} is not a JSON object")
    return doc


def cmd_sign(args: argparse.Namespace) -> int:
    doc = _read_doc(args.file)
    signer = keyring_of(args).get_signer(args.from_key)
    chain_id, sequence = args.chain_id, args.sequence
    if chain_id is None or sequence is None:

        async def ask() -> tuple[str, int]:
            async with Client(args.node) as c:
                cid = chain_id if chain_id is not None else await c.chain_id()
                seq = sequence if sequence is not None else await c.chain_sequence(signer.address)
                return cid, seq

        chain_id, sequence = asyncio.run(ask())
    if sequence < 0:
        return fail("--sequence must be >= 0")
    signed = sign_unsigned(doc, signer, chain_id=chain_id, sequence=sequence)
    text = json.dumps(signed, indent=1)
    if args.output_document:
        Path(args.output_document).write_text(text + "\n")
    else:
        print(text)
    return 0


def cmd_broadcast(args: argparse.Namespace) -> int:
    tx = tx_bytes_of(_read_doc(args.file))

    async def go() -> TxResult | None:
        async with Client(args.node) as c:
            res = await c.broadcast(tx)
            if not res.ok:
                raise TxRejectedError(res.hash, "check", res.codespace, res.code, res.log)
            if not args.wait:
                emit(args, {"txhash": res.hash, "code": res.code}, f"txhash: {res.hash}\ncode: {res.code}")
                return None
            return await c.wait(res.hash, args.wait_timeout)

    result = asyncio.run(go())
    if result is None:
        return 0
    emit(args, result.to_json(), f"txhash: {result.hash}\nheight: {result.height}\ncode: {result.code}")
    if not result.ok:
        return fail(f"tx {result.hash} failed in its block: {result.codespace}/{result.code} {result.log}")
    return 0
