"""`polylink validator`: run a validator's TIQE scorer, write its config, show its standing, score offline.

- `run --config FILE`: score the answers of this validator's committee seats, commit, then
  reveal, until SIGINT/SIGTERM;
- `init-config --out FILE [...]`: write a commented example config;
- `status --config FILE`: validator record, rating, open tasks, local state;
- `score --input rows.jsonl --output scores.jsonl [--config FILE]`: the scoring pipeline
  alone, over a file (`validator.scoring.offline.score_file`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import tomllib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import IO, Any, cast

from polylink.tiqe.v1 import query_pb2 as tiqe_q

from chain.cli.client_args import add_init_config_flags, add_output, add_service_run_flags, emit, fail, run, show_help
from chain.client.client import Client
from chain.client.errors import KeyNotFoundError
from chain.client.keyring import Keyring, check_name
from chain.client.signer import Signer
from validator.config import ConfigError, ValidatorConfig, load_config, parse_config, parse_scoring
from validator.metrics import ValidatorMetrics
from validator.scorer import Scorer, open_scorer
from validator.service import (
    LOGGER_NAME,
    PATH_RATING,
    PATH_VALIDATOR_TASKS,
    ChainClient,
    Validator,
    ValidatorSetupError,
    bond_status_name,
    event_log,
    query_validator,
)
from validator.state import Action, StateError, ValidatorState
from worker.cli import keyring_home
from worker.logs import EventLog, setup_logging
from worker.metrics import MetricsServer, WorkerMetrics

Handler = Callable[[argparse.Namespace], int]
ScorerFactory = Callable[[ValidatorConfig], AbstractAsyncContextManager[Scorer]]


def register(parser: argparse.ArgumentParser) -> None:
    show_help(parser)
    sub = parser.add_subparsers(dest="validator_cmd", metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="score this validator's committee seats (commit, then reveal) until SIGINT/SIGTERM",
        description="Check that the [chain] key operates a validator, then, for every TIQE round "
        "whose committee holds it: fetch the answer and its prompt, score it with the [scoring] "
        "pipeline (two numbers: quality and fidelity), commit to both (MsgCommitScore) and reveal them "
        "once the commit window closed (MsgRevealScore). Scores, salts and txs are recorded in [validator] "
        "state_dir before they are "
        "broadcast, so a restarted validator reveals what it committed to and never commits twice. "
        "SIGINT/SIGTERM stop it gracefully (a second signal stops it at once).",
    )
    add_service_run_flags(p, "validator", "validator")
    p.set_defaults(func=_guard(cmd_run))

    p = sub.add_parser(
        "init-config",
        help="write a commented example config",
        description="Write a validator scorer config (TOML) with every key explained. Edit it, then "
        "start the scorer with `polylink validator run --config FILE`.",
    )
    add_init_config_flags(p, "validator", "keyring key of the validator's operator (signs commits and reveals)")
    p.add_argument("--concurrency", type=int, default=2, help="answers scored at once (default: 2)")
    p.add_argument("--state-dir", default="state", help="[validator] state_dir (default: state, next to the config)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=_guard(cmd_init_config))

    p = sub.add_parser(
        "status",
        help="show the validator's record, TIQE rating and open tasks",
        description="Query the chain for the validator of the config's key (bond status, jail, "
        "TIQE rating and misses, open commit/reveal tasks) and summarize its local state file.",
    )
    _add_config(p)
    add_output(p)
    p.set_defaults(func=_guard(cmd_status))

    p = sub.add_parser(
        "score",
        help="score prompt/response rows from a JSONL file with the scoring pipeline (offline)",
        description="Run the TIQE scoring pipeline over a JSON-lines file of prompt/response rows "
        "and write one JSON line of scores per row. No chain, no key: the pipeline alone, "
        "configured by the [scoring] table of --config (or its defaults).",
    )
    p.add_argument("--input", "-i", required=True, metavar="ROWS.jsonl", help="rows to score (JSON lines)")
    p.add_argument("--output", "-o", required=True, metavar="SCORES.jsonl", help="where to write the scores")
    p.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="a validator config whose [scoring] table configures the pipeline (default: the pipeline's defaults)",
    )
    p.set_defaults(func=_guard(cmd_score))


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, metavar="FILE", help="the validator's TOML config")


def _guard(handler: Handler) -> Handler:
    """The client errors `run` maps, plus the validator's own: one line on stderr, exit code 1."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (ConfigError, StateError, ValidatorSetupError) as e:
            return fail(str(e))

    wrapped.__name__ = handler.__name__
    return run(wrapped)


def setup_validator_logging(fmt: str, level: str, stream: IO[str] | None = None) -> logging.Handler:
    """The worker's log set-up (JSON lines or text on stderr), with the validator's logger at `level`."""
    handler = setup_logging(fmt, level, stream)
    logging.getLogger(LOGGER_NAME).setLevel(level.upper())
    return handler


def load_signer(cfg: ValidatorConfig) -> Signer:
    """The config's key from the keyring; ConfigError saying how to fix it when absent."""
    home = keyring_home(cfg.chain.home)
    try:
        return Keyring(home).get_signer(cfg.chain.key)
    except KeyNotFoundError:
        raise ConfigError(
            f"{cfg.path}: [chain] key {cfg.chain.key!r} is not in {home / 'keyring'} "
            f"(the validator's operator key: import it with `polylink keys add {cfg.chain.key} --home {home}`, "
            "or fix [chain] home)"
        ) from None


# -- run -----------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    setup_validator_logging(args.log_format or cfg.validator.log_format, args.log_level or cfg.validator.log_level)
    signer = load_signer(cfg)
    log = event_log()
    log.info(
        "validator.starting",
        address=signer.address,
        config=str(cfg.path),
        rpc=cfg.chain.rpc,
        behaviour=cfg.validator.behaviour,
        state=str(cfg.validator.state_file),
    )
    asyncio.run(serve(cfg, signer, log=log))
    return 0


async def serve(
    cfg: ValidatorConfig,
    signer: Signer,
    *,
    log: EventLog | None = None,
    scorer_factory: ScorerFactory | None = None,
) -> None:
    """Own every resource of a running validator (state, metrics endpoint, node client, scorer) and run it.

    The first SIGINT/SIGTERM asks the validator to stop gracefully; a second cancels it.
    """
    log = log or event_log()
    factory = scorer_factory or open_scorer
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal(signame: str) -> None:
        if stop.is_set():
            log.warning("validator.signal", signal=signame, action="cancel")
            if main is not None:
                main.cancel()
            return
        log.info("validator.signal", signal=signame, action="stop")
        stop.set()

    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)
    metrics = ValidatorMetrics()
    try:
        async with contextlib.AsyncExitStack() as stack:
            state = stack.enter_context(ValidatorState(cfg.validator.state_file, signer.address))
            if cfg.validator.metrics_port:
                # MetricsServer only calls exposition(), which ValidatorMetrics has too.
                server = await stack.enter_async_context(
                    MetricsServer(
                        cast(WorkerMetrics, metrics), cfg.validator.metrics_host, cfg.validator.metrics_port
                    )
                )
                log.info(
                    "metrics.listening", url=f"http://{cfg.validator.metrics_host}:{server.bound_port}/metrics"
                )
            client: ChainClient = await stack.enter_async_context(Client(cfg.chain.rpc))
            scorer = await stack.enter_async_context(factory(cfg))
            validator = Validator(cfg, client, scorer, signer, state, metrics=metrics, log=log)
            await validator.run(stop)
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
        log.warning("validator.stopped", reason="cancelled by a second signal")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


# -- init-config ---------------------------------------------------------------

_CONFIG_TEMPLATE = """\
# PolyLink validator scorer (TIQE) config: `polylink validator run --config {out}`
# Relative paths are relative to this file's folder.

[chain]
# CometBFT RPC of a node (its websocket is used for committee events).
rpc = {rpc}
# directory holding keyring/ (`polylink keys add {key} --home {home_plain}`).
home = {home}
# the validator's OPERATOR key (the one that created the validator): it signs
# the score commitments and reveals.
key = {key_q}

[validator]
# scores, salts and tx records (SQLite, mode 0600): keep it across restarts, or
# committed scores cannot be revealed (a no-reveal is slashed).
state_dir = {state_dir}
# answers scored at once; tx confirmations do not take a slot.
concurrency = {concurrency}
# ValidatorTasks is also polled this often, besides websocket events.
poll_interval_s = 2.0
# Prometheus metrics at http://metrics_host:metrics_port/metrics (0 = off).
metrics_port = 0
metrics_host = "127.0.0.1"
# "json" (one object per line) or "text".
log_format = "json"
log_level = "info"
# "honest". The Byzantine modes ("zero", "max", "random", "no_reveal", "copy")
# exist only for the adversarial tests and need allow_byzantine = true.
behaviour = "honest"
allow_byzantine = false
# on SIGINT/SIGTERM: how long in-flight tasks may finish.
shutdown_timeout_s = 30.0
# how long to wait for a broadcast tx to land in a block.
tx_timeout_s = 60.0
# blocks to wait for a broadcast tx before sending the same content again.
resend_grace_blocks = 3

[scoring]
# The scoring pipeline (relevance, quality signals, injection guards,
# reference, judge); every key is optional and its default is used when
# absent. See docs/design/tiqe.md and `validator.scoring.ScoringConfig`.
"""


def _q(s: str) -> str:
    """A TOML basic string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(*, out: str, key: str, home: str, rpc: str, concurrency: int, state_dir: str) -> str:
    return _CONFIG_TEMPLATE.format(
        out=out,
        rpc=_q(rpc),
        key=key,
        key_q=_q(key),
        home=_q(home),
        home_plain=home,
        concurrency=concurrency,
        state_dir=_q(state_dir),
    )


def cmd_init_config(args: argparse.Namespace) -> int:
    check_name(args.key)
    out = Path(args.out).expanduser()
    if out.exists() and not args.force:
        return fail(f"{out} exists; pass --force to overwrite it")
    text = render_config(
        out=str(out),
        key=args.key,
        home=args.home,
        rpc=args.rpc,
        concurrency=args.concurrency,
        state_dir=args.state_dir,
    )
    # what we write must load (the [scoring] table is the pipeline's defaults: not imported here)
    parse_config(tomllib.loads(text), base_dir=out.resolve().parent, check_scoring=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    home = keyring_home(Path(args.home).expanduser())
    if not any(k.name == args.key for k in Keyring(home).list()):
        print(
            f"note: no key {args.key!r} in {home / 'keyring'} yet: import the validator's operator key "
            f"with `polylink keys add {args.key} --home {home}`",
            file=sys.stderr,
        )
    return 0


# -- status --------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, check_scoring=False)
    signer = load_signer(cfg)
    info = asyncio.run(gather_status(cfg, signer.address))
    emit(args, info, _status_text(info))
    return 0


async def gather_status(cfg: ValidatorConfig, address: str) -> dict[str, Any]:
    """What `status` shows, as one JSON-able object."""
    out: dict[str, Any] = {
        "address": address,
        "config": str(cfg.path),
        "rpc": cfg.chain.rpc,
        "behaviour": cfg.validator.behaviour,
    }
    async with Client(cfg.chain.rpc) as client:
        v = await query_validator(client, address)
        out["validator"] = (
            None
            if v is None
            else {
                "moniker": v.moniker,
                "status": bond_status_name(v.status),
                "jailed": v.jailed,
                "tokens": v.tokens,
            }
        )
        rating = (
            await client.query(PATH_RATING, tiqe_q.QueryRatingRequest(validator=address), tiqe_q.QueryRatingResponse)
        ).rating
        out["rating"] = {
            "rating_ppm": rating.rating_ppm,
            "misses_in_row": rating.misses_in_row,
            "reveals": rating.reveals,
            "misses": rating.misses,
            "deviations": list(rating.deviations),
        }
        tasks = await client.query(
            PATH_VALIDATOR_TASKS,
            tiqe_q.QueryValidatorTasksRequest(validator=address),
            tiqe_q.QueryValidatorTasksResponse,
        )
        out["open_tasks"] = [
            {
                "result_id": t.result_id,
                "request_id": t.request_id,
                "action": t.action,
                "deadline_height": t.deadline_height,
                "model_id": t.model_id,
            }
            for t in tasks.tasks
        ]
        out["height"] = (await client.status()).latest_height
    state_file = cfg.validator.state_file
    if state_file.exists():
        with ValidatorState(state_file, address) as st:
            out["local_state"] = {"file": str(state_file), **st.counts()}
            out["recent_scores"] = [
                {
                    "result_id": r.result_id,
                    "request_id": r.request_id,
                    "quality_ppm": r.score.quality_ppm if r.score is not None else None,
                    "fidelity_ppm": r.score.fidelity_ppm if r.score is not None else None,
                    "commit": str(r.tx(Action.COMMIT).state),
                    "reveal": str(r.tx(Action.REVEAL).state),
                }
                for r in st.recent(10)
            ]
    else:
        out["local_state"] = {"file": str(state_file), "missing": True}
        out["recent_scores"] = []
    return out


def _status_text(info: dict[str, Any]) -> str:
    lines = [f"validator {info['address']} (height {info['height']}, {info['rpc']})"]
    v = info["validator"]
    if v is None:
        lines.append("validator record: none (this key operates no validator)")
    else:
        jail = ", jailed" if v["jailed"] else ""
        lines.append(f"validator: {v['moniker'] or '-'} {v['status']}{jail}, {v['tokens']}upoly bonded")
    if info["behaviour"] != "honest":
        lines.append(f"behaviour: {info['behaviour']} (Byzantine test mode)")
    r = info["rating"]
    lines.append(
        f"rating: {r['rating_ppm'] / 10_000:.2f}% ({r['reveals']} reveals, {r['misses']} misses, "
        f"{r['misses_in_row']} in a row)"
    )
    tasks = info["open_tasks"]
    lines.append(f"open tasks: {len(tasks)}")
    lines += [
        f"  result {t['result_id']} {t['action']} (request {t['request_id']}, deadline {t['deadline_height']})"
        for t in tasks
    ]
    st = info["local_state"]
    if st.get("missing"):
        lines.append(f"local state: none yet ({st['file']})")
    else:
        counts = ", ".join(f"{k}={val}" for k, val in st.items() if k != "file")
        lines.append(f"local state: {st['file']}: {counts}")
        for s in info["recent_scores"]:
            lines.append(
                f"  result {s['result_id']}: quality {s['quality_ppm']} ppm, fidelity {s['fidelity_ppm']} ppm,"
                f" commit {s['commit']}, reveal {s['reveal']}"
            )
    return "\n".join(lines)


# -- score (offline) -------------------------------------------------------------


def cmd_score(args: argparse.Namespace) -> int:
    from validator.scoring.cascade import ScoringError
    from validator.scoring.offline import OfflineInputError, score_file

    inp = Path(args.input).expanduser()
    if not inp.is_file():
        return fail(f"input file {inp} does not exist")
    out = Path(args.output).expanduser()
    # without --config: the pipeline's defaults
    scoring_cfg = parse_scoring(load_config(args.config, check_scoring=False)) if args.config else None
    try:
        rows = asyncio.run(score_file(inp, out, scoring_cfg))
    except (OfflineInputError, ScoringError) as e:
        return fail(str(e))
    print(f"wrote {rows} scored rows to {out}")
    return 0
