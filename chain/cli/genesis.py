"""`polylink genesis ...`: build and check a chain's genesis.json.

A typical sequence (what `polylink localnet up` does for you):

    polylink genesis init --chain-id mychain --out genesis.json
    polylink genesis add-account --genesis genesis.json poly1... 1000000000upoly
    cometbft init --home node0
    polylink genesis add-validator --genesis genesis.json --node-home node0
    polylink genesis validate genesis.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chain.core.coins import Coins
from chain.core.errors import ChainError
from genesis import builder
from genesis.cometbft import parse_time
from genesis.errors import GenesisError


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    s = sub.add_parser(
        "init",
        help="write a new genesis.json from a template (no accounts or validators yet)",
        description="Write a new genesis.json: the template's consensus params and every module's "
        "genesis with its default params (template overrides merged over them).",
    )
    s.add_argument("--chain-id", default=None, help="chain id (default: the template's)")
    s.add_argument("--out", type=Path, required=True, help="file to write")
    s.add_argument(
        "--template",
        default=builder.DEFAULT_TEMPLATE,
        help=f"template name in genesis/templates (default {builder.DEFAULT_TEMPLATE})",
    )
    s.add_argument("--genesis-time", default=None, help="RFC 3339 genesis time (default: now)")
    s.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser(
        "add-account",
        help="fund an address in genesis (auth account + bank balance)",
        description="Give ADDRESS an auth account (next account number) and a bank balance of COINS; "
        "the bank supply is recomputed. An address already in genesis is refused.",
    )
    s.add_argument("--genesis", type=Path, required=True, help="genesis.json to edit in place")
    s.add_argument("address", metavar="ADDRESS", help="bech32 address (poly1...)")
    s.add_argument("coins", metavar="COINS", help="e.g. 1000000upoly or 10upoly,5uabc")
    s.set_defaults(func=cmd_add_account)

    s = sub.add_parser(
        "add-validator",
        help="add a node's CometBFT consensus key as a genesis validator",
        description="Read NODE_HOME/config/priv_validator_key.json (written by `cometbft init`) and add "
        "its public key to the genesis validators.",
    )
    s.add_argument("--genesis", type=Path, required=True, help="genesis.json to edit in place")
    s.add_argument("--node-home", type=Path, required=True, help="the node's CometBFT home")
    s.add_argument(
        "--power",
        type=int,
        default=builder.DEFAULT_POWER,
        help=f"voting power (default {builder.DEFAULT_POWER})",
    )
    s.add_argument("--name", default=None, help="validator name (default nodeN, N = its index)")
    s.set_defaults(func=cmd_add_validator)

    s = sub.add_parser(
        "validate",
        help="check a genesis.json and print its genesis app hash",
        description="Check CometBFT's fields, run every module's validate_genesis, then the app's "
        'InitChain in memory; print {"ok", "chain_id", "app_hash", ...} or the error.',
    )
    s.add_argument("file", metavar="FILE", type=Path, help="genesis.json")
    s.set_defaults(func=cmd_validate)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 1


def cmd_init(a: argparse.Namespace) -> int:
    if a.out.exists() and not a.force:
        return _fail(f"{a.out} exists; pass --force to overwrite it")
    try:
        t_ns = parse_time(a.genesis_time) if a.genesis_time else None
        doc = builder.new_genesis(a.chain_id, template=a.template, genesis_time_ns=t_ns)
        builder.write_genesis(a.out, doc)
    except GenesisError as e:
        return _fail(str(e))
    print(f"wrote {a.out} (chain_id {doc['chain_id']})")
    return 0


def cmd_add_account(a: argparse.Namespace) -> int:
    try:
        coins = Coins.parse(a.coins)
    except ChainError as e:
        return _fail(e.log)
    try:
        doc = builder.with_account(builder.read_genesis(a.genesis), a.address, coins)
        builder.write_genesis(a.genesis, doc)
    except GenesisError as e:
        return _fail(str(e))
    print(f"added account {a.address} with {coins}")
    return 0


def cmd_add_validator(a: argparse.Namespace) -> int:
    try:
        doc = builder.with_validator(
            builder.read_genesis(a.genesis), a.node_home, power=a.power, name=a.name
        )
        builder.write_genesis(a.genesis, doc)
    except GenesisError as e:
        return _fail(str(e))
    v = doc["validators"][-1]
    print(f"added validator {v['name']} {v['address']} with power {v['power']}")
    return 0


def cmd_validate(a: argparse.Namespace) -> int:
    try:
        doc = builder.read_genesis(a.file)
        app_hash = builder.validate_genesis(doc)
    except GenesisError as e:
        print(json.dumps({"ok": False, "error": str(e)}))
        return _fail(f"{a.file} is invalid: {e}")
    print(
        json.dumps(
            {
                "ok": True,
                "chain_id": doc["chain_id"],
                "app_hash": app_hash.hex(),
                **builder.genesis_counts(doc),
            }
        )
    )
    return 0
