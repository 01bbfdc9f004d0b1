"""`polylink gateway`: the OpenAI-compatible gateway and dashboard, and its config.

- `run --config FILE`: serve `/v1/*` and `/dashboard` until SIGINT/SIGTERM;
- `init-config --out FILE [...]`: write a commented example config.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chain.cli.client_args import add_init_config_flags, add_service_run_flags, fail, run, show_help
from chain.client.client import Client
from chain.client.errors import ClientError, KeyNotFoundError
from chain.client.keyring import Keyring, check_name
from chain.client.signer import Signer
from gateway.chain import BlockWatcher
from gateway.config import DEFAULT_PORT, ConfigError, GatewayConfig, load_config, parse_config
from gateway.dashboard.data import DashboardData
from gateway.inference import InferenceService
from worker.cli import keyring_home
from worker.logs import EventLog, setup_logging

LOGGER_NAME = "polylink.gateway"
Handler = Callable[[argparse.Namespace], int]


def register(parser: argparse.ArgumentParser) -> None:
    show_help(parser)
    sub = parser.add_subparsers(dest="gateway_cmd", metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="serve the OpenAI-compatible API and the dashboard until SIGINT/SIGTERM",
        description="Listen on [gateway] host:port. Each POST /v1/chat/completions or /v1/completions "
        "becomes a MsgRequestInference signed with [chain] key (which pays for it); the reply is the "
        "verified answer in OpenAI's format with a `polylink` field (request id, txs, quality, "
        "committee scores, price and fee). GET /dashboard shows the chain live.",
    )
    add_service_run_flags(p, "gateway", "gateway")
    p.set_defaults(func=_guard(cmd_run))

    p = sub.add_parser(
        "init-config",
        help="write a commented example config",
        description="Write a gateway config (TOML) with every key explained; start the gateway with "
        "`polylink gateway run --config FILE`.",
    )
    add_init_config_flags(p, "gateway", "funded keyring key that signs and pays")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default: {DEFAULT_PORT})")
    p.add_argument(
        "--api-key", action="append", metavar="KEY", help="a Bearer key clients must send (repeatable; default: none)"
    )
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=_guard(cmd_init_config))


def _guard(handler: Handler) -> Handler:
    """The client errors `run` maps, plus config errors: one line on stderr, exit code 1."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ConfigError as e:
            return fail(str(e))

    wrapped.__name__ = handler.__name__
    return run(wrapped)


def load_signer(cfg: GatewayConfig) -> Signer:
    home = keyring_home(cfg.chain.home)
    try:
        return Keyring(home).get_signer(cfg.chain.key)
    except KeyNotFoundError:
        raise ConfigError(
            f"{cfg.path}: [chain] key {cfg.chain.key!r} is not in {home / 'keyring'} "
            f"(create it with `polylink keys add {cfg.chain.key} --home {home}` and fund it)"
        ) from None


def event_log() -> EventLog:
    return EventLog(logging.getLogger(LOGGER_NAME))


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    setup_logging(args.log_format or cfg.gateway.log_format, args.log_level or cfg.gateway.log_level)
    logging.getLogger(LOGGER_NAME).setLevel((args.log_level or cfg.gateway.log_level).upper())
    signer = load_signer(cfg)
    asyncio.run(serve(cfg, signer, log=event_log()))
    return 0


async def serve(cfg: GatewayConfig, signer: Signer, *, log: EventLog) -> None:
    """Own the node client, the block watcher and the HTTP server; serve until a signal stops uvicorn."""
    import uvicorn  # the HTTP stack is imported only by `run`, so `polylink` starts without it

    from gateway.ratelimit import RateLimiter
    from gateway.server import create_app

    g = cfg.gateway
    async with Client(cfg.chain.rpc) as client, BlockWatcher(client.rpc, g.poll_interval_s, log=log) as blocks:
        try:
            balance = await client.balance(signer.address)
            log.info("gateway.starting", address=signer.address, balance_upoly=balance, rpc=cfg.chain.rpc)
            if balance == 0:
                log.warning("gateway.unfunded", address=signer.address, hint="fund it: every request escrows its fee")
        except ClientError as e:
            log.warning("gateway.node_unreachable", rpc=cfg.chain.rpc, error=str(e))
        service = InferenceService(client, signer, g, waker=blocks, log=log)
        board = DashboardData(client, page_size=g.dashboard_page_size) if g.dashboard else None
        limiter = RateLimiter(g.rate_limit_per_minute, g.rate_limit_burst)
        app = create_app(service, board, api_keys=g.api_keys, log=log, limiter=limiter)
        server = uvicorn.Server(
            uvicorn.Config(app, host=g.host, port=g.port, log_level="warning", access_log=False, lifespan="off")
        )
        announce = asyncio.create_task(_announce(server, log, dashboard=g.dashboard))
        try:
            await server.serve()
        finally:
            announce.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await announce
    log.info("gateway.stopped")


async def _announce(server: Any, log: EventLog, *, dashboard: bool) -> None:
    """Log the bound address once uvicorn listens (port 0 picks a free one)."""
    while not server.started:
        await asyncio.sleep(0.05)
    host, port = "127.0.0.1", 0
    for s in server.servers:
        for sock in s.sockets or ():
            host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    log.info("gateway.listening", url=url, api=url + "/v1", dashboard=url + "/dashboard" if dashboard else "")


# -- init-config ---------------------------------------------------------------

_TEMPLATE = """\
# PolyLink gateway config: `polylink gateway run --config {out}`
# Relative paths are relative to this file's folder.

[chain]
# CometBFT RPC of a node (its websocket wakes waiting calls at every block).
rpc = {rpc}
# directory holding keyring/ (`polylink keys add {key} --home {home_plain}`).
home = {home}
# the funded key that signs every request and pays its escrow and tx fee.
key = {key_q}

[gateway]
# where the OpenAI-compatible API (/v1) and the dashboard (/dashboard) listen.
host = "127.0.0.1"
port = {port}
# Bearer keys clients must send (`OpenAI(api_key=...)`); [] = no key needed.
api_keys = {api_keys}
# model ids served; [] = every registered model.
models = []
# max_tokens of a call that gives none.
max_tokens = 256
# refuse (HTTP 422) answers whose TIQE quality is below this, 0..1; 0 = only TIQE's
# own pass mark counts. A call may set its own: extra_body={{"polylink": {{"min_quality": 0.6}}}}.
min_quality = 0.0
# workers per request; > 1 is a swarm (commit-reveal, the best-scored answer wins).
redundancy = 1
# seconds from the call to the verified answer; past it the call gets HTTP 504.
timeout_s = 120.0
# the most a request may cost per 1000 tokens (upoly); "" = the current price + price_headroom.
max_price = ""
price_headroom = 0.25
# how often a waiting call re-reads its request when no new-block event arrives.
poll_interval_s = 1.0
# completion calls per API key (per client address without keys): up to rate_limit_burst at once, refilled
# at rate_limit_per_minute; past it HTTP 429 with Retry-After, nothing signed. 0 = no limit.
rate_limit_per_minute = 120
rate_limit_burst = 30
# serve the live dashboard at /dashboard (read-only chain data, no key needed).
dashboard = true
dashboard_page_size = 20
# "json" (one object per line) or "text".
log_format = "json"
log_level = "info"
"""


def _q(s: str) -> str:
    """A TOML basic string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(*, out: str, key: str, home: str, rpc: str, port: int, api_keys: list[str]) -> str:
    return _TEMPLATE.format(
        out=out,
        rpc=_q(rpc),
        key=key,
        key_q=_q(key),
        home=_q(home),
        home_plain=home,
        port=port,
        api_keys="[" + ", ".join(_q(k) for k in api_keys) + "]",
    )


def cmd_init_config(args: argparse.Namespace) -> int:
    check_name(args.key)
    out = Path(args.out).expanduser()
    if out.exists() and not args.force:
        return fail(f"{out} exists; pass --force to overwrite it")
    text = render_config(
        out=str(out), key=args.key, home=args.home, rpc=args.rpc, port=args.port, api_keys=args.api_key or []
    )
    parse_config(tomllib.loads(text), base_dir=out.resolve().parent)  # what we write must load
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    if args.api_key:
        out.chmod(0o600)  # it holds secrets
    print(f"wrote {out}")
    home = keyring_home(Path(args.home).expanduser())
    if not any(k.name == args.key for k in Keyring(home).list()):
        print(
            f"note: no key {args.key!r} in {home / 'keyring'} yet: "
            f"create it with `polylink keys add {args.key} --home {home}` and fund it",
            file=sys.stderr,
        )
    return 0
