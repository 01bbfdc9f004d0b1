"""`polylink tx registry ...` and `polylink query registry ...`: models and workers."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message
from polylink.base.v1 import query_pb2 as base_q
from polylink.registry.v1 import query_pb2 as q
from polylink.registry.v1 import tx_pb2, types_pb2

from chain.cli.client_args import emit, fail, non_negative_int, positive_int, resolve_address, run, show_help
from chain.cli.query import _flags, _query
from chain.cli.staking_cmds import bond_coin
from chain.cli.tx import _sign_and_send, _tx_flags
from chain.client.client import Client
from chain.core.codec import to_json
from chain.core.coins import BOND_DENOM
from chain.core.errors import ErrInvalidRequest
from chain.modules.registry.msg_server import (
    validate_register_model,
    validate_register_worker,
    validate_unregister_worker,
    validate_update_worker,
)

M = TypeVar("M", bound=Message)
R = TypeVar("R")

PATH = "/polylink.registry.v1.Query/"
CHUNK = 1 << 20


# --- argument types and message constructors (checked before anything is signed) ---
def parse_models(text: str) -> list[str]:
    """'a,b' -> ['a', 'b'] (blank parts dropped; the ids themselves are checked by the message)."""
    return [m.strip() for m in text.split(",") if m.strip()]


def sha256_file(path: str) -> str:
    """The lower-case hex sha256 of a file (e.g. model weights), read in 1 MiB chunks."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except OSError as e:
        raise ErrInvalidRequest.wrap(f"cannot read weights file {path}: {e.strerror or e}") from None
    return h.hexdigest()


def msg_register_model(
    provider: str,
    model_id: str,
    sha256: str,
    *,
    context_length: int,
    family: str = "",
    version: str = "",
    license: str = "",
    royalty_ppm: int = 0,
    base_price: str = "0",
) -> tx_pb2.MsgRegisterModel:
    msg = tx_pb2.MsgRegisterModel(
        provider=provider, model_id=model_id, family=family, version=version, sha256=sha256, license=license,
        context_length=context_length, royalty_ppm=royalty_ppm, base_price=base_price,
    )
    validate_register_model(msg)
    return msg


def msg_register_worker(
    worker: str, models: list[str], capacity: int, bond: str, endpoint: str = "", group: str = ""
) -> tx_pb2.MsgRegisterWorker:
    msg = tx_pb2.MsgRegisterWorker(
        worker=worker, endpoint=endpoint, models=models, capacity=capacity, bond=bond_coin(bond), group=group
    )
    validate_register_worker(msg)
    return msg


def msg_update_worker(
    worker: str,
    *,
    endpoint: str = "",
    models: list[str] | None = None,
    capacity: int = 0,
    add_bond: str | None = None,
) -> tx_pb2.MsgUpdateWorker:
    msg = tx_pb2.MsgUpdateWorker(
        worker=worker, endpoint=endpoint, models=models or [], models_set=models is not None, capacity=capacity
    )
    if add_bond is not None:
        msg.add_bond.CopyFrom(bond_coin(add_bond))
    validate_update_worker(msg)
    return msg


def msg_unregister_worker(worker: str) -> tx_pb2.MsgUnregisterWorker:
    msg = tx_pb2.MsgUnregisterWorker(worker=worker)
    validate_unregister_worker(msg)
    return msg


# --- tx ------------------------------------------------------------------------
def register_tx(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "registry",
        help="registry transactions (register-model, register-worker, update-worker, unregister-worker)",
        description="Register models; register, update and unregister bonded inference workers.",
    )
    show_help(g)
    s = g.add_subparsers(dest="tx_cmd", metavar="COMMAND")

    p = s.add_parser(
        "register-model",
        help="register a model under a new model id (the signer is its provider)",
        description="Sign a MsgRegisterModel with FROM_KEY, which becomes the model's provider and earns "
        "its royalty. The weights' sha256 is given with --sha256 or computed from --weights FILE.",
    )
    p.add_argument("from_key", metavar="FROM_KEY", help="the provider's key in the keyring")
    p.add_argument("model_id", metavar="MODEL_ID", help="new unique model id, characters [A-Za-z0-9._:/-]")
    digest = p.add_mutually_exclusive_group(required=True)
    digest.add_argument("--sha256", metavar="HEX", help="sha256 of the weights file, 64 hex characters")
    digest.add_argument("--weights", metavar="FILE", help="the weights file; its sha256 is computed for you")
    p.add_argument(
        "--context-length", type=positive_int, required=True, metavar="N", help="the model's context length in tokens"
    )
    p.add_argument("--family", default="", help="model family, e.g. qwen2.5 (informational)")
    p.add_argument(
        "--version", dest="model_version", default="", metavar="VERSION", help="model version (informational)"
    )
    p.add_argument("--license", default="", help="the weights' license, e.g. apache-2.0 (informational)")
    p.add_argument(
        "--royalty-ppm", type=non_negative_int, default=0, metavar="PPM",
        help="share of each worker payment paid to the provider, in ppm (0..1000000, default 0)",
    )
    p.add_argument(
        "--base-price", type=non_negative_int, default=0, metavar="UPOLY",
        help="price floor in upoly per 1000 tokens (default 0)",
    )
    _tx_flags(p)
    p.set_defaults(func=run(cmd_register_model))

    p = s.add_parser(
        "register-worker",
        help="register the key as a worker, bonding tokens",
        description="Sign a MsgRegisterWorker with FROM_KEY: it serves --models (each registered), commits "
        "--capacity tokens per block and moves --bond (at least the min_worker_bond param) into the "
        "worker bond pool.",
    )
    p.add_argument("from_key", metavar="FROM_KEY", help="the worker's key in the keyring")
    p.add_argument("--models", type=parse_models, required=True, metavar="ID[,ID...]",
                   help="comma-separated model ids it serves")
    p.add_argument("--capacity", type=positive_int, required=True, metavar="TOKENS",
                   help="tokens per block it commits to serve")
    p.add_argument("--bond", required=True, metavar="AMOUNT", help="bond, e.g. 100000000upoly (or plain upoly)")
    p.add_argument("--endpoint", default="", metavar="URL", help="informational URL of the worker")
    p.add_argument("--group", default="", help="cross-device group name (default: none)")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_register_worker))

    p = s.add_parser(
        "update-worker",
        help="change an active worker's endpoint, models or capacity, or add to its bond",
        description="Sign a MsgUpdateWorker with FROM_KEY. Only the options given change; give at least one.",
    )
    p.add_argument("from_key", metavar="FROM_KEY", help="the worker's key in the keyring")
    p.add_argument("--endpoint", default="", metavar="URL", help="new endpoint URL (default: unchanged)")
    p.add_argument("--models", type=parse_models, default=None, metavar="ID[,ID...]",
                   help="replace the models it serves (default: unchanged)")
    p.add_argument("--capacity", type=positive_int, default=0, metavar="TOKENS",
                   help="new capacity in tokens per block (default: unchanged)")
    p.add_argument("--add-bond", default=None, metavar="AMOUNT", help="add this much to the bond, e.g. 1000000upoly")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_update_worker))

    p = s.add_parser(
        "unregister-worker",
        help="stop taking work; the bond comes back after unbonding",
        description="Sign a MsgUnregisterWorker with FROM_KEY: the worker becomes UNBONDING (no new work, "
        "still slashable) and what is left of its bond returns after the unbonding_blocks param.",
    )
    p.add_argument("from_key", metavar="FROM_KEY", help="the worker's key in the keyring")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_unregister_worker))


def cmd_register_model(args: argparse.Namespace) -> int:
    digest = args.sha256.lower() if args.sha256 else sha256_file(args.weights)
    return _sign_and_send(
        args,
        lambda provider: [
            msg_register_model(
                provider, args.model_id, digest, context_length=args.context_length, family=args.family,
                version=args.model_version, license=args.license, royalty_ppm=args.royalty_ppm,
                base_price=str(args.base_price),
            )
        ],
    )


def cmd_register_worker(args: argparse.Namespace) -> int:
    return _sign_and_send(
        args,
        lambda w: [msg_register_worker(w, args.models, args.capacity, args.bond, args.endpoint, args.group)],
    )


def cmd_update_worker(args: argparse.Namespace) -> int:
    if not (args.endpoint or args.models is not None or args.capacity or args.add_bond is not None):
        return fail("nothing to change: give --endpoint, --models, --capacity and/or --add-bond")
    return _sign_and_send(
        args,
        lambda w: [
            msg_update_worker(
                w, endpoint=args.endpoint, models=args.models, capacity=args.capacity, add_bond=args.add_bond
            )
        ],
    )


def cmd_unregister_worker(args: argparse.Namespace) -> int:
    return _sign_and_send(args, lambda w: [msg_unregister_worker(w)])


# --- query ---------------------------------------------------------------------
def register_query(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "registry", help="models, workers and registry params", description="Query the registry module."
    )
    show_help(g)
    s = g.add_subparsers(dest="query_cmd", metavar="COMMAND")

    p = s.add_parser("model", help="one registered model", description="The model registered as MODEL_ID.")
    p.add_argument("model_id", metavar="MODEL_ID", help="the model id")
    _flags(p)
    p.set_defaults(func=run(cmd_model))

    p = s.add_parser("models", help="every registered model", description="Every registered model, by model id.")
    _flags(p)
    p.set_defaults(func=run(cmd_models))

    p = s.add_parser(
        "worker", help="one worker and its per-model stats",
        description="The worker ADDR (a bech32 address or a keyring key name) and its stats for each model it serves "
        "(quality and fidelity EMAs, results, misses).",
    )
    p.add_argument("address", metavar="ADDR", help="bech32 address (poly1...) or key name")
    _flags(p)
    p.set_defaults(func=run(cmd_worker))

    p = s.add_parser(
        "workers", help="every worker (or those serving --model)",
        description="Every registered worker, ACTIVE or UNBONDING, in address order.",
    )
    p.add_argument("--model", default="", metavar="MODEL_ID", help="only workers serving this model")
    _flags(p)
    p.set_defaults(func=run(cmd_workers))

    p = s.add_parser("params", help="the registry params", description="The registry module's params.")
    _flags(p)
    p.set_defaults(func=run(cmd_params))


def _one(args: argparse.Namespace, method: str, req: Message, resp_cls: type[M]) -> M:
    return _query(args, lambda c: c.query(PATH + method, req, resp_cls))


def _all_pages(
    args: argparse.Namespace,
    method: str,
    make: Callable[[base_q.PageRequest], Message],
    resp_cls: type[M],
    page: Callable[[M], tuple[list[R], bytes]],
) -> list[R]:
    """Every item of a paginated query: `page(response)` gives (items, next_key)."""

    async def go(c: Client) -> list[R]:
        out: list[R] = []
        key = b""
        while True:
            items, key = page(await c.query(PATH + method, make(base_q.PageRequest(key=key)), resp_cls))
            out.extend(items)
            if not key:
                return out

    return _query(args, go)


def _fields_text(obj: dict[str, object]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in obj.items())


def _model_text(m: types_pb2.Model) -> str:
    return (f"{m.model_id}  provider={m.provider}  sha256={m.sha256}  context={m.context_length}  "
            f"price={m.base_price}{BOND_DENOM}/1k  royalty={m.royalty_ppm}ppm")


def _worker_text(w: types_pb2.Worker) -> str:
    status = types_pb2.WorkerStatus.Name(w.status).removeprefix("WORKER_STATUS_")
    return (f"{w.address}  {status}  bond={w.bond}{BOND_DENOM}  capacity={w.capacity}  "
            f"inflight={w.inflight_tokens}  models={','.join(w.models)}")


def cmd_model(args: argparse.Namespace) -> int:
    m = _one(args, "Model", q.QueryModelRequest(model_id=args.model_id), q.QueryModelResponse).model
    obj = to_json(m)
    emit(args, {"model": obj}, _fields_text(obj))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    ms = _all_pages(
        args, "Models", lambda p: q.QueryModelsRequest(pagination=p), q.QueryModelsResponse,
        lambda r: (list(r.models), r.pagination.next_key),
    )
    emit(args, {"models": [to_json(m) for m in ms]}, "\n".join(_model_text(m) for m in ms) or "(no models)")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    addr = resolve_address(args.address, args.home)
    r = _one(args, "Worker", q.QueryWorkerRequest(address=addr), q.QueryWorkerResponse)
    obj = to_json(r.worker)
    stats = [to_json(st) for st in r.stats]
    text = _fields_text(obj) + "".join(
        f"\nstats {st.model_id}: quality={st.quality_ema_ppm}ppm fidelity={st.fidelity_ema_ppm}ppm"
        f" results={st.results} misses={st.misses}"
        for st in r.stats
    )
    emit(args, {"worker": obj, "stats": stats}, text)
    return 0


def cmd_workers(args: argparse.Namespace) -> int:
    ws = _all_pages(
        args, "Workers", lambda p: q.QueryWorkersRequest(model_id=args.model, pagination=p),
        q.QueryWorkersResponse, lambda r: (list(r.workers), r.pagination.next_key),
    )
    emit(args, {"workers": [to_json(w) for w in ws]}, "\n".join(_worker_text(w) for w in ws) or "(no workers)")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    p = _one(args, "Params", q.QueryParamsRequest(), q.QueryParamsResponse).params
    obj = to_json(p)
    emit(args, {"params": obj}, _fields_text(obj))
    return 0

