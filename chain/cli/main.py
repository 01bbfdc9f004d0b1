"""`polylink`: the command line (keys, tx, query, node, localnet, genesis, ...).

Each command group lives in its own file and exposes `register(subparsers)`;
commands set `func(args) -> int` as their handler.
"""

from __future__ import annotations

import argparse
import importlib
import sys

GROUPS = [
    ("keys", "chain.cli.keys", "manage the local keyring"),
    ("tx", "chain.cli.tx", "sign and broadcast transactions"),
    ("query", "chain.cli.query", "query chain state"),
    ("node", "chain.cli.node", "run the chain application (ABCI + gRPC)"),
    ("genesis", "chain.cli.genesis", "build and check a chain's genesis"),
    ("localnet", "chain.cli.localnet", "run a local multi-validator network"),
    ("worker", "worker.cli", "run an inference worker (serves assigned requests with its engine)"),
    ("validator", "validator.cli", "run a validator's TIQE scorer (scores answers, commits then reveals)"),
    ("gateway", "gateway.cli", "run the OpenAI-compatible gateway and the live dashboard"),
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="polylink", description="PolyLink: decentralized LLM inference chain")
    sub = p.add_subparsers(dest="group", metavar="COMMAND")
    for name, module, help_ in GROUPS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:  # group not built yet
                continue
            raise
        gp = sub.add_parser(name, help=help_, description=help_)
        mod.register(gp)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # print the help of the deepest group given
        target = parser
        for action in parser._subparsers._group_actions if parser._subparsers else []:
            if isinstance(action, argparse._SubParsersAction) and args.group and args.group in action.choices:
                target = action.choices[args.group]
        target.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
