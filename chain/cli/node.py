"""`polylink node ...`: run the chain application (ABCI server + gRPC) and export its state."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from chain.abci.server import ABCIServer
from chain.app.app import PolyLinkApp
from chain.storage.sql import SQLStore


def default_db(home: Path) -> str:
    (home / "data").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(home / 'data' / 'app.db').resolve()}"


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    s = sub.add_parser("start", help="serve ABCI to a CometBFT node and gRPC to users")
    s.add_argument("--home", type=Path, default=Path.home() / ".polylink", help="node home (default ~/.polylink)")
    s.add_argument(
        "--abci", default=None,
        help="ABCI listen address: unix://PATH (default unix://HOME/abci.sock, mode 0600; set CometBFT's proxy_app "
        "to it) or tcp://HOST:PORT (loopback when HOST is left out). State-changing calls are served only on "
        "CometBFT's consensus connection",
    )
    s.add_argument("--grpc", default="127.0.0.1:9090", help="gRPC listen address, or 'off'")
    s.add_argument("--rpc", default="http://127.0.0.1:26657", help="this node's CometBFT RPC (for the gRPC Tx service)")
    s.add_argument("--db", default=None, help="SQLAlchemy URL of the state database (default: SQLite under HOME/data)")
    s.add_argument("--invariant-period", type=int, default=0, help="check every invariant each N blocks (0 = never)")
    s.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    s.set_defaults(func=cmd_start)
    e = sub.add_parser("export", help="print the committed state as genesis app_state JSON")
    e.add_argument("--home", type=Path, default=Path.home() / ".polylink")
    e.add_argument("--db", default=None, help="SQLAlchemy URL of the state database")
    e.set_defaults(func=cmd_export)


def cmd_export(a: argparse.Namespace) -> int:
    store = SQLStore(a.db or default_db(a.home))
    app = PolyLinkApp(store)
    print(json.dumps({"height": app.height, "chain_id": app.chain_id, "app_state": app.export_genesis()}, indent=1))
    store.close()
    return 0


def cmd_start(a: argparse.Namespace) -> int:
    logging.basicConfig(
        level=a.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    return asyncio.run(_run(a))


async def _run(a: argparse.Namespace) -> int:
    store = SQLStore(a.db or default_db(a.home))
    app = PolyLinkApp(store, invariant_period=a.invariant_period)
    log = logging.getLogger("polylink.node")
    log.info("state at height %d app_hash %s", app.height, app.app_hash.hex())
    abci_server = ABCIServer(app, a.abci or f"unix://{(a.home / 'abci.sock').resolve()}")
    await abci_server.start()
    grpc_server = None
    if a.grpc != "off":
        from chain.grpc.server import start_grpc

        grpc_server = await start_grpc(app, a.grpc, a.rpc)
        log.info("gRPC listening on %s", a.grpc)
    stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, request_stop)
    assert abci_server.fatal is not None
    watched: list[asyncio.Future[Any]] = [stop, abci_server.fatal]
    done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if abci_server.fatal in done:
        log.error("stopping after a fatal error: %r", abci_server.fatal.result())
        code = 1
    if grpc_server is not None:
        await grpc_server.stop(1)
    await abci_server.close()
    store.close()
    return code
