"""`polylink keys`: add, list and show keys of the local keyring (backend test, unencrypted, or file, encrypted)."""

from __future__ import annotations

import argparse
import sys

from chain.cli.client_args import add_home, add_output, emit, keyring_of, run, show_help
from chain.client.keyring import KeyInfo


def register(parser: argparse.ArgumentParser) -> None:
    show_help(parser)
    sub = parser.add_subparsers(dest="keys_cmd", metavar="COMMAND")

    p = sub.add_parser(
        "add",
        help="create a new key, or recover one from its hex seed",
        description="Create a new ed25519 key (or recover one with --recover) and store it in "
        "<home>/keyring/NAME.json, UNENCRYPTED (--keyring-backend test, the default), or in "
        "<home>/keyring-file/NAME.json encrypted with a passphrase (--keyring-backend file); mode 0600. "
        "An existing name is never overwritten.",
    )
    p.add_argument("name", metavar="NAME", help="key name (letters, digits, '_', '.', '-')")
    p.add_argument(
        "--recover",
        metavar="HEX",
        help="the 32-byte private seed as 64 hex characters; '-' reads it from stdin",
    )
    add_home(p)
    add_output(p)
    p.set_defaults(func=run(cmd_add))

    p = sub.add_parser(
        "list", help="list every key", description="List the keys in <home>/keyring/."
    )
    add_home(p)
    add_output(p)
    p.set_defaults(func=run(cmd_list))

    p = sub.add_parser(
        "show",
        help="show a key's address and public key",
        description="Show the address and public key of key NAME.",
    )
    p.add_argument("name", metavar="NAME", help="key name")
    p.add_argument("--address", "-a", action="store_true", help="print only the address")
    add_home(p)
    add_output(p)
    p.set_defaults(func=run(cmd_show))


def _text(k: KeyInfo) -> str:
    return f"name: {k.name}\naddress: {k.address}\npub_key: {k.pub_key.hex()}"


def cmd_add(args: argparse.Namespace) -> int:
    seed = args.recover
    if seed == "-":
        seed = sys.stdin.readline().strip()
    kr = keyring_of(args)
    k = kr.add(args.name, seed)
    where = kr.dir / f"{k.name}.json"
    how = "encrypted with the passphrase" if kr.backend == "file" else "unencrypted"
    emit(args, {**k.to_json(), "file": str(where)}, f"{_text(k)}\nstored {how} in {where}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    keys = keyring_of(args).list()
    text = "\n".join(f"{k.name}\t{k.address}" for k in keys) if keys else "(no keys)"
    emit(args, {"keys": [k.to_json() for k in keys]}, text)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    k = keyring_of(args).show(args.name)
    if args.address and args.output != "json":
        print(k.address)
        return 0
    emit(args, k.to_json(), _text(k))
    return 0
