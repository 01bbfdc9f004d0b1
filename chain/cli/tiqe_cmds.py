"""`polylink tx tiqe ...` and `polylink query tiqe ...`: score results by hand, follow rounds and ratings.

    polylink tx tiqe commit-score 12 val0 --quality-ppm 830000 --fidelity-ppm 910000 --salt 00ff...
    polylink tx tiqe reveal-score 12 val0 --quality-ppm 830000 --fidelity-ppm 910000 --salt 00ff...
    polylink query tiqe round 12 | rounds [--limit N] | tasks VALIDATOR | rating VALIDATOR | ratings | params

The validator process (`polylink validator run`) sends the score messages on
its own; these commands exist to inspect and debug. A score is two numbers,
quality and fidelity (ppm); the commitment is sha256(quality_ppm as 8 bytes
big-endian || fidelity_ppm as 8 bytes big-endian || salt || utf8(validator
operator address)).
"""

from __future__ import annotations

import argparse

from polylink.base.v1 import query_pb2 as base_q
from polylink.tiqe.v1 import query_pb2 as q
from polylink.tiqe.v1 import tx_pb2, types_pb2

from chain.cli.client_args import emit, hex_bytes, positive_int, resolve_address, run, show_help
from chain.cli.query import _flags, _query
from chain.cli.tx import _sign_and_send, _tx_flags
from chain.client.client import Client
from chain.core.codec import to_json
from chain.core.errors import ErrInvalidRequest
from chain.modules.tiqe.keeper import score_commitment
from chain.modules.tiqe.msg_server import validate_commit_score, validate_reveal_score

PATH = "/polylink.tiqe.v1.Query/"
PPM = 1_000_000


# --- argument types and message constructors (checked before anything is signed) ---
def score_ppm(text: str) -> int:
    """A quality or fidelity in ppm (0..1000000)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (ppm: 1000000 = a perfect score)") from None
    if not 0 <= n <= PPM:
        raise argparse.ArgumentTypeError(f"{text!r} must be in 0..{PPM}")
    return n


def msg_commit_score(
    validator: str,
    result_id: int,
    *,
    commitment: bytes | None = None,
    quality: int | None = None,
    fidelity: int | None = None,
    salt: bytes = b"",
) -> tx_pb2.MsgCommitScore:
    """The commitment as given, or computed from the quality, fidelity and salt for this validator."""
    if commitment is None:
        if quality is None or fidelity is None or not salt:
            raise ErrInvalidRequest.wrap("give --commitment HEX, or --quality-ppm, --fidelity-ppm and --salt")
        commitment = score_commitment(quality, fidelity, salt, validator)
    msg = tx_pb2.MsgCommitScore(validator=validator, result_id=result_id, commitment=commitment)
    validate_commit_score(msg)
    return msg


def msg_reveal_score(
    validator: str, result_id: int, quality: int, fidelity: int, salt: bytes
) -> tx_pb2.MsgRevealScore:
    msg = tx_pb2.MsgRevealScore(
        validator=validator, result_id=result_id, quality_ppm=quality, fidelity_ppm=fidelity, salt=salt
    )
    validate_reveal_score(msg)
    return msg


# --- tx ------------------------------------------------------------------------
def register_tx(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "tiqe",
        help="TIQE transactions (commit-score, reveal-score: validators scoring results)",
        description="A scoring committee member's messages, signed with the validator operator's key "
        "(the validator process sends them itself; these are for operators debugging).",
    )
    show_help(g)
    s = g.add_subparsers(dest="tx_cmd", metavar="COMMAND")

    p = s.add_parser(
        "commit-score",
        help="commit to a score for a result whose committee you sit on",
        description="Sign a MsgCommitScore with FROM_KEY (the validator's operator key) while the round's "
        "commit window is open. The commitment is sha256(quality_ppm (8 bytes BE) || fidelity_ppm (8 bytes "
        "BE) || salt || utf8(operator address)): give it with --commitment, or --quality-ppm, --fidelity-ppm "
        "and --salt to compute it. Keep the numbers and the salt: the reveal needs them.",
    )
    p.add_argument("result_id", metavar="RESULT_ID", type=positive_int, help="the scored result's id")
    p.add_argument("from_key", metavar="FROM_KEY", help="the validator operator's key in the keyring")
    p.add_argument("--commitment", type=hex_bytes, metavar="HEX", help="the 32-byte commitment, hex")
    p.add_argument("--quality-ppm", type=score_ppm, metavar="PPM", help="the quality, 0..1000000 (with --salt)")
    p.add_argument("--fidelity-ppm", type=score_ppm, metavar="PPM", help="the fidelity, 0..1000000 (with --salt)")
    p.add_argument("--salt", type=hex_bytes, default=b"", metavar="HEX", help="the secret salt, hex (1-64 bytes)")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_commit_score))

    p = s.add_parser(
        "reveal-score",
        help="reveal a committed score once the round's reveal window is open",
        description="Sign a MsgRevealScore with FROM_KEY: the quality, fidelity and salt must open the commitment. "
        "The reveal window opens when every member committed or the commit window ended.",
    )
    p.add_argument("result_id", metavar="RESULT_ID", type=positive_int, help="the scored result's id")
    p.add_argument("from_key", metavar="FROM_KEY", help="the validator operator's key in the keyring")
    p.add_argument("--quality-ppm", type=score_ppm, required=True, metavar="PPM", help="the committed quality")
    p.add_argument("--fidelity-ppm", type=score_ppm, required=True, metavar="PPM", help="the committed fidelity")
    p.add_argument("--salt", type=hex_bytes, required=True, metavar="HEX", help="the committed salt, hex")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_reveal_score))


def cmd_commit_score(args: argparse.Namespace) -> int:
    return _sign_and_send(
        args,
        lambda v: [
            msg_commit_score(
                v,
                args.result_id,
                commitment=args.commitment,
                quality=args.quality_ppm,
                fidelity=args.fidelity_ppm,
                salt=args.salt,
            )
        ],
    )


def cmd_reveal_score(args: argparse.Namespace) -> int:
    return _sign_and_send(
        args, lambda v: [msg_reveal_score(v, args.result_id, args.quality_ppm, args.fidelity_ppm, args.salt)]
    )


# --- query ---------------------------------------------------------------------
def register_query(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "tiqe",
        help="TIQE scoring rounds, validator tasks and ratings, params",
        description="Query the tiqe module.",
    )
    show_help(g)
    s = g.add_subparsers(dest="query_cmd", metavar="COMMAND")

    p = s.add_parser(
        "round",
        help="the scoring round of one result",
        description="The round of RESULT_ID: committee, commitments, revealed scores (quality and "
        "fidelity) with deviations and outlier flags, phase, deadlines and the final quality and fidelity.",
    )
    p.add_argument("result_id", metavar="RESULT_ID", type=positive_int, help="result id")
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_round))

    p = s.add_parser("rounds", help="scoring rounds, newest first", description="Every round, newest first.")
    p.add_argument("--limit", type=positive_int, default=100, metavar="N", help="at most N rounds (default 100)")
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_rounds))

    p = s.add_parser(
        "tasks",
        help="what a validator must score now",
        description="The open scoring work of VALIDATOR (operator address or key name): COMMIT or REVEAL "
        "per result, with deadlines.",
    )
    p.add_argument("validator", metavar="VALIDATOR", help="operator bech32 address or key name")
    _flags(p)
    p.set_defaults(func=run(cmd_tasks))

    p = s.add_parser(
        "rating",
        help="one validator's scoring rating",
        description="The rating of VALIDATOR (operator address or key name): rating_ppm, its last "
        "deviations, misses in a row (initial_rating_ppm when it never scored).",
    )
    p.add_argument("validator", metavar="VALIDATOR", help="operator bech32 address or key name")
    _flags(p)
    p.set_defaults(func=run(cmd_rating))

    p = s.add_parser(
        "ratings",
        help="every validator's scoring rating",
        description="The stored ratings (validators that revealed or missed at least once), by address.",
    )
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_ratings))

    p = s.add_parser("params", help="tiqe params", description="The tiqe module's params.")
    _flags(p, home=False)
    p.set_defaults(func=run(cmd_params))


def _phase(phase: int) -> str:
    return types_pb2.RoundPhase.Name(phase).removeprefix("ROUND_PHASE_")


def _round_text(rd: types_pb2.Round) -> str:
    lines = [
        f"result_id: {rd.result_id}  request_id: {rd.request_id}",
        f"worker: {rd.worker}  model: {rd.model_id}",
        f"phase: {_phase(rd.phase)}",
        f"created_height: {rd.created_height}  commit_deadline: {rd.commit_deadline_height}"
        + (f"  reveal_deadline: {rd.reveal_deadline_height}" if rd.reveal_deadline_height else ""),
    ]
    for m in rd.members:
        state = "revealed" if m.revealed else "committed" if m.commitment else "waiting"
        line = f"member: {m.validator} {state}"
        if m.revealed:
            line += f" quality {m.quality_ppm} fidelity {m.fidelity_ppm}"
            if rd.phase == types_pb2.ROUND_PHASE_FINAL and rd.scored:
                line += f" deviation {m.deviation_ppm} / {m.fidelity_deviation_ppm}" + (" outlier" if m.outlier else "")
        elif m.slashed:
            line += f" slashed {m.slashed}"
        lines.append(line)
    if rd.phase == types_pb2.ROUND_PHASE_FINAL:
        verdict = "passed" if rd.passed else "rejected"
        scored = f"quality {rd.quality_ppm} fidelity {rd.fidelity_ppm}" if rd.scored else "unscored"
        lines.append(f"final: {scored}, {verdict} at height {rd.finalized_height}")
    return "\n".join(lines)


def cmd_round(args: argparse.Namespace) -> int:
    r = _query(
        args, lambda c: c.query(PATH + "Round", q.QueryRoundRequest(result_id=args.result_id), q.QueryRoundResponse)
    )
    emit(args, {"round": to_json(r.round)}, _round_text(r.round))
    return 0


def cmd_rounds(args: argparse.Namespace) -> int:
    async def fetch(c: Client) -> list[types_pb2.Round]:
        out: list[types_pb2.Round] = []
        key = b""
        while len(out) < args.limit:
            req = q.QueryRoundsRequest(pagination=base_q.PageRequest(key=key, limit=args.limit - len(out)))
            r = await c.query(PATH + "Rounds", req, q.QueryRoundsResponse)
            out.extend(r.rounds)
            key = r.pagination.next_key
            if not key:
                break
        return out

    items = _query(args, fetch)
    text = "\n".join(
        f"{rd.result_id}\t{_phase(rd.phase)}\trequest {rd.request_id}\t{rd.worker}"
        + (f"\tquality {rd.quality_ppm}\tfidelity {rd.fidelity_ppm}" if rd.scored else "")
        for rd in items
    )
    emit(args, {"rounds": [to_json(rd) for rd in items]}, text or "(no rounds)")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    validator = resolve_address(args.validator, args.home)
    req = q.QueryValidatorTasksRequest(validator=validator)
    r = _query(args, lambda c: c.query(PATH + "ValidatorTasks", req, q.QueryValidatorTasksResponse))
    text = "\n".join(
        f"{t.result_id}\t{t.action}\tdeadline {t.deadline_height}\trequest {t.request_id}\t{t.model_id}"
        for t in r.tasks
    )
    emit(args, {"tasks": [to_json(t) for t in r.tasks]}, text or "(no tasks)")
    return 0


def _rating_text(x: types_pb2.ValidatorRating) -> str:
    return (
        f"validator: {x.validator}\nrating_ppm: {x.rating_ppm}\nmisses_in_row: {x.misses_in_row}\n"
        f"reveals: {x.reveals}  misses: {x.misses}\ndeviations: {list(x.deviations)}"
    )


def cmd_rating(args: argparse.Namespace) -> int:
    validator = resolve_address(args.validator, args.home)
    req = q.QueryRatingRequest(validator=validator)
    r = _query(args, lambda c: c.query(PATH + "Rating", req, q.QueryRatingResponse))
    emit(args, {"rating": to_json(r.rating)}, _rating_text(r.rating))
    return 0


def cmd_ratings(args: argparse.Namespace) -> int:
    async def fetch(c: Client) -> list[types_pb2.ValidatorRating]:
        out: list[types_pb2.ValidatorRating] = []
        key = b""
        while True:
            req = q.QueryRatingsRequest(pagination=base_q.PageRequest(key=key))
            r = await c.query(PATH + "Ratings", req, q.QueryRatingsResponse)
            out.extend(r.ratings)
            key = r.pagination.next_key
            if not key:
                return out

    items = _query(args, fetch)
    text = "\n".join(f"{x.validator}\t{x.rating_ppm}\tmisses_in_row {x.misses_in_row}" for x in items)
    emit(args, {"ratings": [to_json(x) for x in items]}, text or "(no ratings)")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    r = _query(args, lambda c: c.query(PATH + "Params", q.QueryParamsRequest(), q.QueryParamsResponse))
    obj = to_json(r.params)
    emit(args, {"params": obj}, "\n".join(f"{k}: {v}" for k, v in obj.items()))
    return 0
