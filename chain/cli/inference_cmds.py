"""`polylink tx inference ...` and `polylink query inference ...`: ask for answers, follow requests.

    polylink tx inference request --model smollm2-135m --prompt "What is 2+2?" alice --wait
    polylink tx inference request --model M --prompt P --redundancy 3 --max-price 2000 alice
    polylink tx inference submit 7 "4" worker1 --tokens 1            # operators debugging
    polylink tx inference commit 7 worker1 --response "4" --salt 00ff...
    polylink tx inference reveal 7 worker1 --response "4" --salt 00ff... --tokens 1
    polylink query inference request 7 | requests [--requester alice] | result 3 | tasks WORKER | params

`request --wait` waits for the tx's block, then polls the Request query until
the request is COMPLETED (prints the answer) or FAILED (prints why, exit 1);
`--timeout` bounds the whole wait. Without --max-price the model's current
price is read from the registry and accepted as the most it may cost.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from polylink.base.v1 import query_pb2 as base_q
from polylink.inference.v1 import query_pb2 as q
from polylink.inference.v1 import tx_pb2, types_pb2
from polylink.registry.v1 import query_pb2 as reg_q

from chain.cli.client_args import (
    add_home,
    add_node,
    add_output,
    emit,
    fail,
    hex_bytes,
    keyring_of,
    non_negative_int,
    positive_int,
    resolve_address,
    run,
    show_help,
)
from chain.cli.tx import _sign_and_send, _tx_flags, parse_fee
from chain.client.client import Client
from chain.core.codec import to_json
from chain.core.errors import ErrInvalidRequest
from chain.modules.inference.keeper import commitment_of
from chain.modules.inference.msg_server import (
    validate_commit_result,
    validate_request_inference,
    validate_reveal_result,
    validate_submit_result,
)

T = TypeVar("T")
PATH = "/polylink.inference.v1.Query/"
MODEL_PATH = "/polylink.registry.v1.Query/Model"
POLL_SECONDS = 1.0  # how often `request --wait` asks for the request's status
DEFAULT_TIMEOUT = 120.0
# The tx carries the prompt and the request is stored with it (ante per-byte cost + 30 gas per
# byte written): measured in the app about 50k gas for a short prompt and 392k for 8000 bytes.
REQUEST_GAS_BASE = 150_000
REQUEST_GAS_PER_BYTE = 50
PPM = 1_000_000
CLOSED = (types_pb2.REQUEST_STATUS_COMPLETED, types_pb2.REQUEST_STATUS_FAILED)


# --- argument types and message constructors (checked before anything is signed) ---
def fraction_ppm(text: str) -> int:
    """'0.7' -> 700000: a decimal fraction to ppm, exactly (at most 6 decimals)."""
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    ppm = d * PPM
    if not d.is_finite() or d < 0 or ppm != ppm.to_integral_value():
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0 with at most 6 decimals")
    return int(ppm)


def price_text(text: str) -> str:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of upoly per 1000 tokens")
    return text


def msg_request_inference(
    requester: str,
    model_id: str,
    prompt: str,
    max_tokens: int,
    max_price: str,
    *,
    redundancy: int = 1,
    temperature_ppm: int = 0,
    top_p_ppm: int = PPM,
    seed: int = 0,
) -> tx_pb2.MsgRequestInference:
    msg = tx_pb2.MsgRequestInference(
        requester=requester,
        model_id=model_id,
        prompt=prompt,
        max_tokens=max_tokens,
        sampling=types_pb2.SamplingParams(temperature_ppm=temperature_ppm, top_p_ppm=top_p_ppm, seed=seed),
        max_price=max_price,
        redundancy=redundancy,
    )
    validate_request_inference(msg)
    return msg


def msg_submit_result(worker: str, request_id: int, response: str, tokens: int) -> tx_pb2.MsgSubmitResult:
    msg = tx_pb2.MsgSubmitResult(worker=worker, request_id=request_id, response=response, completion_tokens=tokens)
    validate_submit_result(msg)
    return msg


def msg_commit_result(
    worker: str, request_id: int, *, commitment: bytes | None = None, response: str | None = None, salt: bytes = b""
) -> tx_pb2.MsgCommitResult:
    """The commitment as given, or computed from the response and salt for this worker."""
    if commitment is None:
        if response is None or not salt:
            raise ErrInvalidRequest.wrap("give --commitment HEX, or --response and --salt")
        commitment = commitment_of(response, salt, worker)
    msg = tx_pb2.MsgCommitResult(worker=worker, request_id=request_id, commitment=commitment)
    validate_commit_result(msg)
    return msg


def msg_reveal_result(worker: str, request_id: int, response: str, salt: bytes, tokens: int) -> tx_pb2.MsgRevealResult:
    msg = tx_pb2.MsgRevealResult(
        worker=worker, request_id=request_id, response=response, salt=salt, completion_tokens=tokens
    )
    validate_reveal_result(msg)
    return msg


# --- tx ------------------------------------------------------------------------
def register_tx(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "inference",
        help="inference transactions (request; submit, commit, reveal for workers)",
        description="Ask the network for an answer; workers' result messages (for operators debugging).",
    )
    show_help(g)
    s = g.add_subparsers(dest="tx_cmd", metavar="COMMAND")

    p = s.add_parser(
        "request",
        help="ask for an answer from a registered model (escrows the worst-case fee)",
        description="Sign a MsgRequestInference with FROM_KEY. Escrow = ceil(price x max_tokens / 1000) x "
        "redundancy upoly moves to the escrow account; what the answer does not cost is refunded. With "
        "--wait, follow the request until it is answered and print the answer.",
    )
    _key_args(p, "the requester's key in the keyring (it pays)")
    p.add_argument("--model", required=True, metavar="MODEL_ID", help="registered model id")
    p.add_argument("--prompt", required=True, help="the prompt (one user message)")
    p.add_argument(
        "--max-tokens", type=positive_int, default=256, metavar="N", help="most tokens to generate (default 256)"
    )
    p.add_argument(
        "--redundancy",
        type=positive_int,
        default=1,
        metavar="N",
        help="workers that answer (default 1; N > 1 is a swarm that answers by commit-reveal)",
    )
    p.add_argument(
        "--max-price",
        type=price_text,
        metavar="UPOLY",
        help="most upoly per 1000 tokens you accept (default: the model's current price)",
    )
    p.add_argument(
        "--temperature", type=fraction_ppm, default=0, metavar="T", help="sampling temperature, 0..2 (default 0)"
    )
    p.add_argument("--top-p", type=fraction_ppm, default=PPM, metavar="P", help="nucleus sampling, 0..1 (default 1)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed (default 0)")
    _request_flags(p)
    p.set_defaults(func=run(cmd_request))

    p = s.add_parser(
        "submit",
        help="(worker) submit the answer to an n = 1 request assigned to you",
        description="Sign a MsgSubmitResult with FROM_KEY, the assigned worker.",
    )
    p.add_argument("request_id", metavar="REQUEST_ID", type=positive_int, help="request id")
    p.add_argument("response", metavar="RESPONSE", help="the answer text")
    _key_args(p, "the worker's key in the keyring")
    p.add_argument("--tokens", type=non_negative_int, required=True, metavar="N", help="completion tokens")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_submit))

    p = s.add_parser(
        "commit",
        help="(worker) commit to an answer of a swarm (n > 1) request",
        description="Sign a MsgCommitResult with FROM_KEY. The commitment is sha256(utf8(response) || salt || "
        "utf8(worker address)): give it with --commitment, or --response and --salt to compute it.",
    )
    p.add_argument("request_id", metavar="REQUEST_ID", type=positive_int, help="request id")
    _key_args(p, "the worker's key in the keyring")
    p.add_argument("--commitment", type=hex_bytes, metavar="HEX", help="the 32-byte commitment, hex")
    p.add_argument("--response", help="the answer text (with --salt: the commitment is computed)")
    p.add_argument("--salt", type=hex_bytes, default=b"", metavar="HEX", help="the secret salt, hex (1-64 bytes)")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_commit))

    p = s.add_parser(
        "reveal",
        help="(worker) reveal a committed answer once the reveal window is open",
        description="Sign a MsgRevealResult with FROM_KEY: the response and salt must open its commitment.",
    )
    p.add_argument("request_id", metavar="REQUEST_ID", type=positive_int, help="request id")
    _key_args(p, "the worker's key in the keyring")
    p.add_argument("--response", required=True, help="the committed answer text")
    p.add_argument("--salt", type=hex_bytes, required=True, metavar="HEX", help="the committed salt, hex")
    p.add_argument("--tokens", type=non_negative_int, required=True, metavar="N", help="completion tokens")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_reveal))


def _key_args(p: argparse.ArgumentParser, help_: str) -> None:
    """FROM_KEY as the last positional argument, as in every tx command, or as --key."""
    p.add_argument("from_key", metavar="FROM_KEY", nargs="?", help=help_ + " (or give --key)")
    p.add_argument("--key", metavar="FROM_KEY", help="the same as the FROM_KEY argument")


def _resolve_key(args: argparse.Namespace) -> None:
    if args.key and args.from_key and args.key != args.from_key:
        raise ErrInvalidRequest.wrap(f"two keys given: {args.from_key!r} and --key {args.key!r}")
    args.from_key = args.key or args.from_key
    if not args.from_key:
        raise ErrInvalidRequest.wrap("give the signing key: FROM_KEY or --key")


def _request_flags(p: argparse.ArgumentParser) -> None:
    """The usual tx flags, with --wait meaning "wait for the answer"."""
    add_node(p)
    add_home(p)
    add_output(p)
    p.add_argument(
        "--gas",
        type=int,
        default=None,
        help=f"gas limit (default {REQUEST_GAS_BASE} + {REQUEST_GAS_PER_BYTE} per prompt byte: the request "
        "is stored with its prompt)",
    )
    p.add_argument(
        "--fees", metavar="AMOUNT", help="fee, e.g. 2000upoly (default: gas x the chain's min gas price, rounded up)"
    )
    p.add_argument("--memo", default="", help="tx memo")
    p.add_argument(
        "--timeout-height", type=int, default=0, help="the tx fails if included after this height (0: never)"
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait for the answer and print it (exit 1 if the request fails or the wait times out)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long --wait waits for the tx and the answer together (default {DEFAULT_TIMEOUT:g})",
    )


async def _model_price(c: Client, model_id: str) -> str:
    r = await c.query(MODEL_PATH, reg_q.QueryModelRequest(model_id=model_id), reg_q.QueryModelResponse)
    return r.model.base_price or "0"


def _answer(r: q.QueryRequestResponse) -> types_pb2.Result | None:
    return next((x for x in r.results if x.id == r.request.answer_result_id), None)


def request_json(r: q.QueryRequestResponse) -> dict[str, object]:
    return {"request": to_json(r.request), "results": [to_json(x) for x in r.results]}


def request_gas(prompt: str) -> int:
    return REQUEST_GAS_BASE + REQUEST_GAS_PER_BYTE * len(prompt.encode())


def cmd_request(args: argparse.Namespace) -> int:
    gas = args.gas if args.gas is not None else request_gas(args.prompt)
    if gas <= 0:
        return fail("--gas must be positive")
    fee = parse_fee(args.fees)
    _resolve_key(args)
    signer = keyring_of(args).get_signer(args.from_key)

    async def go() -> int:
        async with Client(args.node) as c:
            max_price = args.max_price if args.max_price is not None else await _model_price(c, args.model)
            msg = msg_request_inference(
                signer.address,
                args.model,
                args.prompt,
                args.max_tokens,
                max_price,
                redundancy=args.redundancy,
                temperature_ppm=args.temperature,
                top_p_ppm=args.top_p,
                seed=args.seed,
            )
            start = time.monotonic()
            res = await c.send([msg], signer, gas=gas, fee=fee, memo=args.memo, timeout_height=args.timeout_height)
            if not args.wait:
                emit(
                    args,
                    {"txhash": res.hash, "code": res.code, "codespace": res.codespace, "log": res.log},
                    f"txhash: {res.hash}\ncode: {res.code}",
                )
                return 0
            tx = await c.wait(res.hash, args.timeout)
            if not tx.ok:
                emit(args, tx.to_json(), f"txhash: {tx.hash}\ncode: {tx.code}\nlog: {tx.log}")
                return fail(f"tx {tx.hash} failed in its block: codespace={tx.codespace} code={tx.code} log={tx.log}")
            requested = tx.attributes("inference.requested")
            if not requested:
                return fail(f"tx {tx.hash} has no inference.requested event")
            rid = int(requested[0]["request_id"])
            return await _follow(args, c, rid, start)

    return asyncio.run(go())


async def _follow(args: argparse.Namespace, c: Client, rid: int, start: float) -> int:
    """Poll request `rid` until it closes or --timeout passes; print the outcome."""
    while True:
        r = await c.query(PATH + "Request", q.QueryRequestRequest(id=rid), q.QueryRequestResponse)
        if r.request.status in CLOSED:
            break
        if time.monotonic() - start >= args.timeout:
            status = types_pb2.RequestStatus.Name(r.request.status).removeprefix("REQUEST_STATUS_")
            if args.output == "json":
                emit(args, request_json(r), "")
            return fail(
                f"request {rid} is still {status} after {args.timeout:g} s; "
                f"follow it with `polylink query inference request {rid}`"
            )
        await asyncio.sleep(POLL_SECONDS)
    if r.request.status == types_pb2.REQUEST_STATUS_FAILED:
        if args.output == "json":
            emit(args, request_json(r), "")
        return fail(f"request {rid} failed: {r.request.failure} (escrow refunded)")
    answer = _answer(r)
    emit(args, request_json(r), answer.response if answer is not None else "")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    _resolve_key(args)
    return _sign_and_send(args, lambda w: [msg_submit_result(w, args.request_id, args.response, args.tokens)])


def cmd_commit(args: argparse.Namespace) -> int:
    _resolve_key(args)
    return _sign_and_send(
        args,
        lambda w: [
            msg_commit_result(w, args.request_id, commitment=args.commitment, response=args.response, salt=args.salt)
        ],
    )


def cmd_reveal(args: argparse.Namespace) -> int:
    _resolve_key(args)
    return _sign_and_send(
        args, lambda w: [msg_reveal_result(w, args.request_id, args.response, args.salt, args.tokens)]
    )


# --- query ---------------------------------------------------------------------
def register_query(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "inference",
        help="inference requests, results, worker tasks, params",
        description="Query the inference module.",
    )
    show_help(g)
    s = g.add_subparsers(dest="query_cmd", metavar="COMMAND")

    p = s.add_parser("request", help="one request with its results", description="Request ID and its results.")
    p.add_argument("request_id", metavar="ID", type=positive_int, help="request id")
    _flags(p)
    p.set_defaults(func=run(cmd_request_query))

    p = s.add_parser(
        "requests", help="requests, newest first", description="Every request (or one requester's), newest first."
    )
    p.add_argument("--requester", metavar="ADDR", help="only this requester's (bech32 address or key name)")
    p.add_argument("--limit", type=positive_int, default=100, metavar="N", help="at most N requests (default 100)")
    _flags(p, home=True)
    p.set_defaults(func=run(cmd_requests))

    p = s.add_parser("result", help="one result", description="Result ID: the answer, its worker and payment.")
    p.add_argument("result_id", metavar="ID", type=positive_int, help="result id")
    _flags(p)
    p.set_defaults(func=run(cmd_result))

    p = s.add_parser(
        "tasks",
        help="what a worker must do now",
        description="The open work of WORKER: SUBMIT, COMMIT or REVEAL per request, with deadlines.",
    )
    p.add_argument("worker", metavar="WORKER", help="bech32 address or key name")
    _flags(p, home=True)
    p.set_defaults(func=run(cmd_tasks))

    p = s.add_parser("params", help="inference params", description="The inference module's params.")
    _flags(p)
    p.set_defaults(func=run(cmd_params))


def _flags(p: argparse.ArgumentParser, home: bool = False) -> None:
    add_node(p)
    if home:
        add_home(p)
    add_output(p)


def _query(args: argparse.Namespace, fn: Callable[[Client], Awaitable[T]]) -> T:
    async def go() -> T:
        async with Client(args.node) as c:
            return await fn(c)

    return asyncio.run(go())


def _status(status: int) -> str:
    return types_pb2.RequestStatus.Name(status).removeprefix("REQUEST_STATUS_")


def _request_text(r: q.QueryRequestResponse) -> str:
    x = r.request
    lines = [
        f"id: {x.id}",
        f"status: {_status(x.status)}",
        f"requester: {x.requester}",
        f"model: {x.model_id}",
        f"max_tokens: {x.max_tokens}  redundancy: {x.redundancy}  price: {x.price}  escrow: {x.escrow}",
        f"created_height: {x.created_height}",
    ]
    if x.deadline_height:
        lines.append(f"deadline_height: {x.deadline_height}")
    if x.failure:
        lines.append(f"failure: {x.failure}")
    for a in x.assignments:
        status = types_pb2.AssignmentStatus.Name(a.status).removeprefix("ASSIGNMENT_STATUS_")
        lines.append(f"assignment: {a.worker} {status} attempt {a.attempt}")
    answer = _answer(r)
    if answer is not None:
        lines.append(f"answer (result {answer.id}, {answer.worker}):\n{answer.response}")
    return "\n".join(lines)


def cmd_request_query(args: argparse.Namespace) -> int:
    r = _query(
        args, lambda c: c.query(PATH + "Request", q.QueryRequestRequest(id=args.request_id), q.QueryRequestResponse)
    )
    emit(args, request_json(r), _request_text(r))
    return 0


def cmd_requests(args: argparse.Namespace) -> int:
    requester = resolve_address(args.requester, args.home) if args.requester else ""

    async def fetch(c: Client) -> list[types_pb2.Request]:
        out: list[types_pb2.Request] = []
        key = b""
        while len(out) < args.limit:
            req = q.QueryRequestsRequest(
                requester=requester, pagination=base_q.PageRequest(key=key, limit=args.limit - len(out))
            )
            r = await c.query(PATH + "Requests", req, q.QueryRequestsResponse)
            out.extend(r.requests)
            key = r.pagination.next_key
            if not key:
                break
        return out

    items = _query(args, fetch)
    text = "\n".join(f"{r.id}\t{_status(r.status)}\t{r.model_id}\t{r.requester}" for r in items)
    emit(args, {"requests": [to_json(r) for r in items]}, text or "(no requests)")
    return 0


def cmd_result(args: argparse.Namespace) -> int:
    r = _query(args, lambda c: c.query(PATH + "Result", q.QueryResultRequest(id=args.result_id), q.QueryResultResponse))
    x = r.result
    text = (
        f"id: {x.id}\nrequest_id: {x.request_id}\nworker: {x.worker}\ncompletion_tokens: {x.completion_tokens}\n"
        f"height: {x.height}\nworker_paid: {x.worker_paid}\nroyalty_paid: {x.royalty_paid}\nresponse:\n{x.response}"
    )
    emit(args, {"result": to_json(x)}, text)
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    worker = resolve_address(args.worker, args.home)
    r = _query(
        args,
        lambda c: c.query(PATH + "WorkerTasks", q.QueryWorkerTasksRequest(worker=worker), q.QueryWorkerTasksResponse),
    )
    text = "\n".join(
        f"{t.request.id}\t{t.action}\tdeadline {t.deadline_height}\tattempt {t.attempt}\t{t.request.model_id}"
        for t in r.tasks
    )
    emit(args, {"tasks": [to_json(t) for t in r.tasks]}, text or "(no tasks)")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    r = _query(args, lambda c: c.query(PATH + "Params", q.QueryParamsRequest(), q.QueryParamsResponse))
    obj = to_json(r.params)
    emit(args, {"params": obj}, "\n".join(f"{k}: {v}" for k, v in obj.items()))
    return 0
