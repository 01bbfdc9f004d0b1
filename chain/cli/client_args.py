"""What the client-side command groups (keys, tx, query) share: flags, output, errors.

`run(handler)` wraps a command so every expected failure becomes one line on
stderr and exit code 1 (argparse's usage errors keep exit code 2).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping

from chain.client.errors import (
    ChainQueryError,
    KeyNotFoundError,
    KeyringError,
    NodeUnreachableError,
    RpcError,
    TxRejectedError,
    TxTimeoutError,
)
from chain.client.keyring import BACKENDS, Keyring
from chain.client.rpc import DEFAULT_NODE
from chain.core.address import from_bech32
from chain.core.errors import ChainError

DEFAULT_HOME = "~/.polylink"
EXIT_ERROR = 1
LOG_LEVELS = ("debug", "info", "warning", "error")

Handler = Callable[[argparse.Namespace], int]


def add_home(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--home",
        default=os.environ.get("POLYLINK_HOME", DEFAULT_HOME),
        help=f"directory holding keyring/ (default: $POLYLINK_HOME or {DEFAULT_HOME})",
    )
    p.add_argument(
        "--keyring-backend",
        choices=sorted(BACKENDS),
        default=os.environ.get("POLYLINK_KEYRING_BACKEND", "test"),
        help="test: HOME/keyring/, unencrypted; file: HOME/keyring-file/, encrypted with a passphrase "
        "($POLYLINK_KEYRING_PASSPHRASE, or a prompt) (default: $POLYLINK_KEYRING_BACKEND or test)",
    )


def passphrase() -> str:
    """The file keyring's passphrase: $POLYLINK_KEYRING_PASSPHRASE (for CI and scripts), else a prompt."""
    env = os.environ.get("POLYLINK_KEYRING_PASSPHRASE")
    if env is not None:
        return env
    if not sys.stdin.isatty():
        raise KeyringError("the file keyring needs a passphrase: set $POLYLINK_KEYRING_PASSPHRASE or use a terminal")
    return getpass.getpass("keyring passphrase: ")


def keyring_of(args: argparse.Namespace) -> Keyring:
    """The keyring the command's --home and --keyring-backend name."""
    return Keyring(args.home, getattr(args, "keyring_backend", "test"), passphrase=passphrase)


def add_node(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--node",
        default=os.environ.get("POLYLINK_NODE", DEFAULT_NODE),
        help=f"CometBFT RPC address (default: $POLYLINK_NODE or {DEFAULT_NODE})",
    )


def add_service_run_flags(p: argparse.ArgumentParser, section: str, what: str) -> None:
    """`--config` and the log overrides of a service's `run` (worker, validator, gateway)."""
    p.add_argument("--config", "-c", required=True, metavar="FILE", help=f"the {what}'s TOML config")
    p.add_argument("--log-level", choices=LOG_LEVELS, help=f"override [{section}] log_level")
    p.add_argument("--log-format", choices=("json", "text"), help=f"override [{section}] log_format")


def add_init_config_flags(p: argparse.ArgumentParser, key_default: str, key_help: str) -> None:
    """`--out`, `--key`, `--home` and `--rpc` of a service's `init-config` (the [chain] table)."""
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the config")
    p.add_argument("--key", default=key_default, help=f"{key_help} (default: {key_default})")
    add_home(p)
    p.add_argument(
        "--rpc",
        default=os.environ.get("POLYLINK_NODE", DEFAULT_NODE),
        help=f"CometBFT RPC address (default: $POLYLINK_NODE or {DEFAULT_NODE})",
    )


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--output",
        "-o",
        choices=("text", "json"),
        default="text",
        help="output format; json prints one JSON object on stdout",
    )


def _int_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    """An argparse type: an integer > 0."""
    n = _int_arg(text)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return n


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    n = _int_arg(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return n


def hex_bytes(text: str) -> bytes:
    """An argparse type: bytes given as hex."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hex") from None


def emit(args: argparse.Namespace, obj: Mapping[str, object], text: str) -> None:
    """Print `obj` as one JSON object (--output json) or `text`."""
    if args.output == "json":
        print(json.dumps(obj, sort_keys=True))
    else:
        print(text)


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def resolve_address(text: str, home: str) -> str:
    """A bech32 address as is, or the address of the keyring key of that name."""
    if text.startswith("poly1"):
        from_bech32(text)
        return text
    try:
        return Keyring(home).show(text).address
    except KeyNotFoundError:
        try:  # the public part of a file-backend key needs no passphrase
            return Keyring(home, "file").show(text).address
        except KeyNotFoundError:
            pass
        from_bech32(text)  # raises "invalid address" with the reason
        raise
    except KeyringError:
        from_bech32(text)
        raise


def run(handler: Handler) -> Handler:
    """Map the client library's errors to a message on stderr and a non-zero exit code."""

    def wrapped(args: argparse.Namespace) -> int:
        node = getattr(args, "node", DEFAULT_NODE)
        try:
            return handler(args)
        except NodeUnreachableError as e:
            return fail(f"{e} (is the node running? set --node)")
        except TxRejectedError as e:
            if getattr(args, "output", "text") == "json":
                print(
                    json.dumps(
                        {
                            "txhash": e.txhash,
                            "stage": e.stage,
                            "codespace": e.codespace,
                            "code": e.code,
                            "log": e.log,
                        },
                        sort_keys=True,
                    )
                )
            where = "refused by CheckTx" if e.stage == "check" else "failed in its block"
            return fail(f"tx {e.txhash} {where}: codespace={e.codespace} code={e.code} log={e.log}")
        except ChainQueryError as e:
            return fail(f"query {e.path} failed: codespace={e.codespace} code={e.code} log={e.log}")
        except TxTimeoutError as e:
            return fail(f"{e}; it may still be included, check with `polylink query tx {e.txhash}`")
        except KeyNotFoundError as e:
            return fail(
                f"{e} (see `polylink keys list --home {getattr(args, 'home', DEFAULT_HOME)}`)"
            )
        except KeyringError as e:  # KeyExistsError, bad name, corrupt file
            return fail(str(e))
        except RpcError as e:
            return fail(f"node {node} answered with an error: {e}")
        except ChainError as e:
            return fail(e.log)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def show_help(parser: argparse.ArgumentParser) -> None:
    """Make a command group print its help (exit 2) when no subcommand is given."""

    def handler(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=handler)
