"""`polylink worker`: run an inference worker, write its config, show its standing on chain.

- `run --config FILE`: register (if needed) and serve assignments until SIGINT/SIGTERM;
- `init-config --out FILE [...]`: write a commented example config;
- `status --config FILE`: registration, bond, per-model stats, open tasks, local state.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polylink.inference.v1 import query_pb2 as inf_q

from chain.cli.client_args import add_init_config_flags, add_output, add_service_run_flags, emit, fail, run, show_help
from chain.client.client import Client
from chain.client.errors import KeyNotFoundError
from chain.client.keyring import Keyring, check_name
from chain.client.signer import Signer
from worker.config import ConfigError, WorkerConfig, load_config, parse_config
from worker.engines import ENGINE_KINDS, EngineError, make_engine
from worker.logs import EventLog, setup_logging
from worker.metrics import MetricsServer, WorkerMetrics
from worker.models import EMBEDDED_MODEL_ID
from worker.service import PATH_WORKER_TASKS, ChainClient, Worker, WorkerSetupError, query_worker
from worker.state import StateError, WorkerState

Handler = Callable[[argparse.Namespace], int]


def register(parser: argparse.ArgumentParser) -> None:
    show_help(parser)
    sub = parser.add_subparsers(dest="worker_cmd", metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="serve assignments with the configured engine until SIGINT/SIGTERM",
        description="Start the engine, register the worker on chain when it is not registered "
        "(bonding [worker] bond), then answer every assignment of its key: SUBMIT, COMMIT and "
        "REVEAL. Answers and txs are recorded in [worker] state_dir before they are broadcast, "
        "so a restarted worker resumes without answering twice. SIGINT/SIGTERM stop it "
        "gracefully (a second signal stops it at once).",
    )
    add_service_run_flags(p, "worker", "worker")
    p.set_defaults(func=_guard(cmd_run))

    p = sub.add_parser(
        "init-config",
        help="write a commented example config",
        description="Write a worker config (TOML) with every key explained. "
        "Edit it, then start the worker with `polylink worker run --config FILE`.",
    )
    add_init_config_flags(p, "worker", "keyring key that signs and earns")
    p.add_argument(
        "--engine",
        choices=ENGINE_KINDS,
        default="llamacpp",
        help="inference engine (default: llamacpp, serving the embedded GGUF model)",
    )
    p.add_argument(
        "--model",
        action="append",
        metavar="MODEL_ID",
        help=f"registered model id to serve (repeatable; default: {EMBEDDED_MODEL_ID})",
    )
    p.add_argument("--capacity", type=int, default=1000, help="tokens per block to commit to (default: 1000)")
    p.add_argument("--concurrency", type=int, default=1, help="generations at once (default: 1)")
    p.add_argument(
        "--base-url",
        default="http://127.0.0.1:8080/v1",
        help="openai engine: the server's base URL (default: http://127.0.0.1:8080/v1)",
    )
    p.add_argument("--model-name", help="openai/vllm engine: the model name the server or vLLM knows")
    p.add_argument("--state-dir", default="state", help="[worker] state_dir (default: state, next to the config)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=_guard(cmd_init_config))

    p = sub.add_parser(
        "status",
        help="show the worker's registration, bond, stats and open tasks",
        description="Query the chain for the worker of the config's key (registration, bond, "
        "per-model quality and results, open tasks) and summarize its local state file.",
    )
    _add_config(p)
    add_output(p)
    p.set_defaults(func=_guard(cmd_status))


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, metavar="FILE", help="the worker's TOML config")


def _guard(handler: Handler) -> Handler:
    """The client errors `run` maps, plus the worker's own: one line on stderr, exit code 1."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (ConfigError, StateError, WorkerSetupError, EngineError) as e:
            return fail(str(e))

    wrapped.__name__ = handler.__name__
    return run(wrapped)


# -- keyring -------------------------------------------------------------------


def keyring_home(home: Path) -> Path:
    """`home` holds keyring/; a path that *is* a keyring folder is accepted too (its parent is the home)."""
    if not (home / "keyring").is_dir() and home.name == "keyring" and home.is_dir():
        return home.parent
    return home


def load_signer(cfg: WorkerConfig) -> Signer:
    """The config's key from the keyring; ConfigError saying how to create it when absent."""
    home = keyring_home(cfg.chain.home)
    try:
        return Keyring(home).get_signer(cfg.chain.key)
    except KeyNotFoundError:
        raise ConfigError(
            f"{cfg.path}: [chain] key {cfg.chain.key!r} is not in {home / 'keyring'} "
            f"(create it with `polylink keys add {cfg.chain.key} --home {home}`, or fix [chain] home)"
        ) from None


# -- run -----------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    setup_logging(args.log_format or cfg.worker.log_format, args.log_level or cfg.worker.log_level)
    signer = load_signer(cfg)
    log = EventLog()
    log.info(
        "worker.starting",
        address=signer.address,
        config=str(cfg.path),
        rpc=cfg.chain.rpc,
        engine=cfg.engine.kind,
        state=str(cfg.worker.state_file),
    )
    asyncio.run(serve(cfg, signer, log=log))
    return 0


async def serve(cfg: WorkerConfig, signer: Signer, *, log: EventLog | None = None) -> None:
    """Own every resource of a running worker (state, metrics endpoint, node client, engine) and run it.

    The first SIGINT/SIGTERM asks the worker to stop gracefully; a second cancels it.
    """
    log = log or EventLog()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal(signame: str) -> None:
        if stop.is_set():
            log.warning("worker.signal", signal=signame, action="cancel")
            if main is not None:
                main.cancel()
            return
        log.info("worker.signal", signal=signame, action="stop")
        stop.set()

    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)
    metrics = WorkerMetrics()
    try:
        async with contextlib.AsyncExitStack() as stack:
            state = stack.enter_context(WorkerState(cfg.worker.state_file, signer.address))
            if cfg.worker.metrics_port:
                server = await stack.enter_async_context(
                    MetricsServer(metrics, cfg.worker.metrics_host, cfg.worker.metrics_port)
                )
                log.info("metrics.listening", url=f"http://{cfg.worker.metrics_host}:{server.bound_port}/metrics")
            client: ChainClient = await stack.enter_async_context(Client(cfg.chain.rpc))
            engine = await stack.enter_async_context(make_engine(cfg.engine))
            worker = Worker(cfg, client, engine, signer, state, metrics=metrics, log=log)
            await worker.run(stop)
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
        log.warning("worker.stopped", reason="cancelled by a second signal")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


# -- init-config ---------------------------------------------------------------

_ENGINE_TABLES = {
    "llamacpp": """\
[engine]
# llama.cpp, in process. Without model_path it serves the embedded GGUF
# ({model}); its sha256 is checked against the model's registered digest.
kind = "llamacpp"
# model_path = "/path/to/model.gguf"
# expected_sha256 = "<64 lower-case hex>"
# n_ctx = 2048          # context window (tokens)
# n_threads = 8         # CPU threads (default: all cores shared among instances)
# instances = 1         # model copies serving requests in parallel (match concurrency)
""",
    "openai": """\
[engine]
# Any OpenAI-compatible chat-completions server (llama.cpp server, vLLM serve, ...).
kind = "openai"
base_url = {base_url}
model_name = {model_name}
# api_key = ""
# stream = false
# timeout_s = 120.0
# connect_retries = 2
""",
    "vllm": """\
[engine]
# vLLM in process (CUDA GPU hosts; install with `pip install -e .[vllm]`).
kind = "vllm"
model_name = {model_name}
# model_path = "/path/to/hf-model-folder"
# n_ctx = 4096
""",
}

_CONFIG_TEMPLATE = """\
# PolyLink worker config: `polylink worker run --config {out}`
# Relative paths are relative to this file's folder.

[chain]
# CometBFT RPC of a node (its websocket is used for assignment events).
rpc = {rpc}
# directory holding keyring/ (`polylink keys add {key} --home {home_plain}`).
home = {home}
# the key that signs results, holds the bond and earns the fees.
key = {key_q}

[worker]
# registered model ids this worker serves (each must be registered on chain).
models = {models}
# tokens per block this worker commits to serve (bounds its open assignments).
capacity = {capacity}
# generations run at once; tx confirmations do not take a slot.
concurrency = {concurrency}
# bonded when the worker registers (at least the chain's min_worker_bond).
bond = "100000000upoly"
# at start and every bond_check_interval_s while serving, top a slashed bond back up
# to `bond` (below the chain's min_worker_bond a worker gets no work).
top_up_bond = true
bond_check_interval_s = 30.0
# informational URL published in the registry.
endpoint = ""
# answers, salts and tx records (SQLite, mode 0600): keep it across restarts.
state_dir = {state_dir}
# Prometheus metrics at http://metrics_host:metrics_port/metrics (0 = off).
metrics_port = 0
metrics_host = "127.0.0.1"
# WorkerTasks is also polled this often, besides websocket events.
poll_interval_s = 2.0
# "json" (one object per line) or "text".
log_format = "json"
log_level = "info"
# on SIGINT/SIGTERM: how long in-flight tasks may finish.
shutdown_timeout_s = 30.0
# how long to wait for a broadcast tx to land in a block.
tx_timeout_s = 60.0
# blocks to wait for a broadcast tx before sending the same content again.
resend_grace_blocks = 3

{engine}"""


def _q(s: str) -> str:
    """A TOML basic string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(
    *,
    out: str,
    key: str,
    home: str,
    rpc: str,
    engine: str,
    models: list[str],
    capacity: int,
    concurrency: int,
    state_dir: str,
    base_url: str,
    model_name: str,
) -> str:
    engine_table = _ENGINE_TABLES[engine].format(
        model=", ".join(models), base_url=_q(base_url), model_name=_q(model_name)
    )
    return _CONFIG_TEMPLATE.format(
        out=out,
        rpc=_q(rpc),
        key=key,
        key_q=_q(key),
        home=_q(home),
        home_plain=home,
        models="[" + ", ".join(_q(m) for m in models) + "]",
        capacity=capacity,
        concurrency=concurrency,
        state_dir=_q(state_dir),
        engine=engine_table,
    )


def cmd_init_config(args: argparse.Namespace) -> int:
    check_name(args.key)
    out = Path(args.out).expanduser()
    if out.exists() and not args.force:
        return fail(f"{out} exists; pass --force to overwrite it")
    models = args.model or [EMBEDDED_MODEL_ID]
    model_name = args.model_name or models[0]
    text = render_config(
        out=str(out),
        key=args.key,
        home=args.home,
        rpc=args.rpc,
        engine=args.engine,
        models=models,
        capacity=args.capacity,
        concurrency=args.concurrency,
        state_dir=args.state_dir,
        base_url=args.base_url,
        model_name=model_name,
    )
    parse_config(tomllib.loads(text), base_dir=out.resolve().parent)  # what we write must load
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    home = keyring_home(Path(args.home).expanduser())
    if not any(k.name == args.key for k in Keyring(home).list()):
        print(
            f"note: no key {args.key!r} in {home / 'keyring'} yet: "
            f"create it with `polylink keys add {args.key} --home {home}` and fund it",
            file=sys.stderr,
        )
    return 0


# -- status --------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    signer = load_signer(cfg)
    info = asyncio.run(gather_status(cfg, signer.address))
    emit(args, info, _status_text(info))
    return 0


async def gather_status(cfg: WorkerConfig, address: str) -> dict[str, Any]:
    """What `status` shows, as one JSON-able object."""
    out: dict[str, Any] = {"address": address, "config": str(cfg.path), "rpc": cfg.chain.rpc}
    async with Client(cfg.chain.rpc) as client:
        reg = await query_worker(client, address)
        if reg is None:
            out["registered"] = False
        else:
            wk = reg.worker
            out["registered"] = True
            out["worker"] = {
                "status": _enum_name(wk.DESCRIPTOR.fields_by_name["status"], wk.status),
                "endpoint": wk.endpoint,
                "models": list(wk.models),
                "capacity": wk.capacity,
                "bond": wk.bond,
                "jailed_until_height": wk.jailed_until_height,
                "inflight_tokens": wk.inflight_tokens,
                "registered_height": wk.registered_height,
                "unbonding_completion_height": wk.unbonding_completion_height,
            }
            out["stats"] = [
                {
                    "model_id": s.model_id,
                    "quality_ema_ppm": s.quality_ema_ppm,
                    "results": s.results,
                    "misses": s.misses,
                }
                for s in reg.stats
            ]
        tasks = await client.query(
            PATH_WORKER_TASKS, inf_q.QueryWorkerTasksRequest(worker=address), inf_q.QueryWorkerTasksResponse
        )
        out["open_tasks"] = [
            {
                "request_id": t.request.id,
                "action": t.action,
                "attempt": t.attempt,
                "deadline_height": t.deadline_height,
                "model_id": t.request.model_id,
            }
            for t in tasks.tasks
        ]
        out["height"] = (await client.status()).latest_height
    state_file = cfg.worker.state_file
    if state_file.exists():
        with WorkerState(state_file, address) as st:
            out["local_state"] = {"file": str(state_file), **st.counts()}
    else:
        out["local_state"] = {"file": str(state_file), "missing": True}
    return out


def _enum_name(field: Any, value: int) -> str:
    v = field.enum_type.values_by_number.get(value)
    return str(v.name) if v is not None else str(value)


def _status_text(info: dict[str, Any]) -> str:
    lines = [f"worker {info['address']} (height {info['height']}, {info['rpc']})"]
    if not info["registered"]:
        lines.append("registered: no (`polylink worker run` registers it)")
    else:
        w = info["worker"]
        lines += [
            f"status: {w['status']}",
            f"models: {', '.join(w['models'])}",
            f"capacity: {w['capacity']} tokens/block (in flight: {w['inflight_tokens']})",
            f"bond: {w['bond']}upoly",
            f"endpoint: {w['endpoint'] or '-'}",
        ]
        if w["jailed_until_height"] > info["height"]:
            lines.append(f"jailed until height {w['jailed_until_height']}")
        for s in info["stats"]:
            lines.append(
                f"  {s['model_id']}: quality {s['quality_ema_ppm'] / 10_000:.2f}%, "
                f"{s['results']} results, {s['misses']} misses"
            )
    tasks = info["open_tasks"]
    lines.append(f"open tasks: {len(tasks)}")
    lines += [
        f"  request {t['request_id']} {t['action']} (attempt {t['attempt']}, deadline {t['deadline_height']})"
        for t in tasks
    ]
    st = info["local_state"]
    if st.get("missing"):
        lines.append(f"local state: none yet ({st['file']})")
    else:
        counts = ", ".join(f"{k}={v}" for k, v in st.items() if k != "file")
        lines.append(f"local state: {st['file']}: {counts}")
    return "\n".join(lines)
