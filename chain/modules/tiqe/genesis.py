"""tiqe genesis: validate, init and export (init and export mirror each other).

Only params, rounds and stored ratings are exported; the DEADLINE and MEMBER
indexes follow from the open rounds and init rebuilds them. Rounds ascend by
result id, ratings by validator address bytes (the store's order), so an
export imports back to the same state and exports again byte for byte. That
each open round's result exists and waits for its verdict is the
`tiqe/results` invariant's job (inference state is not ours).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise

from polylink.tiqe.v1 import genesis_pb2, types_pb2

from chain.core.address import from_bech32
from chain.core.coins import parse_amount
from chain.core.context import Context
from chain.core.errors import ChainError
from chain.modules.tiqe.aggregate import PPM
from chain.modules.tiqe.errors import ErrInvalidGenesis
from chain.modules.tiqe.keeper import COMMIT, FINAL, OPEN_PHASES, REVEAL, TiqeKeeper
from chain.modules.tiqe.msg_server import COMMITMENT_LEN
from chain.modules.tiqe.params import default_params, validate_params


def default_genesis() -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(params=default_params())


@contextmanager
def _invalid(where: str) -> Iterator[None]:
    """Re-raise a registered error from inside the block as ErrInvalidGenesis naming `where`."""
    try:
        yield
    except ChainError as e:
        if e.kind is ErrInvalidGenesis:
            raise
        raise ErrInvalidGenesis.wrap(f"{where}: {e.log}") from None


def _require(ok: bool, why: Callable[[], str]) -> None:
    if not ok:
        raise ErrInvalidGenesis.wrap(why())


def _validate_member(m: types_pb2.Member, rd: types_pb2.Round) -> None:
    where = f"round {rd.result_id}, member {m.validator}"
    with _invalid(where):
        from_bech32(m.validator)
        for amount in (m.weight, m.slashed):
            if amount:
                parse_amount(amount)
    _require(len(m.commitment) in (0, COMMITMENT_LEN), lambda: f"{where}: commitment must be empty or 32 bytes")
    _require(m.quality_ppm <= PPM, lambda: f"{where}: quality_ppm > {PPM}")
    _require(m.fidelity_ppm <= PPM, lambda: f"{where}: fidelity_ppm > {PPM}")
    _require(not m.revealed or bool(m.commitment), lambda: f"{where}: revealed without a commitment")
    _require(
        m.revealed or (m.quality_ppm == 0 and m.fidelity_ppm == 0), lambda: f"{where}: a score without a reveal"
    )
    if rd.phase != FINAL or not rd.scored:
        _require(
            not (m.deviation_ppm or m.fidelity_deviation_ppm or m.outlier),
            lambda: f"{where}: deviations set without a scored verdict",
        )
    if rd.phase != FINAL:
        _require(not (m.weight or m.slashed), lambda: f"{where}: verdict fields set before aggregation")
    elif m.revealed and rd.scored:
        _require(
            m.deviation_ppm == m.quality_ppm - rd.quality_ppm,
            lambda: f"{where}: deviation_ppm != member quality - round quality",
        )
        _require(
            m.fidelity_deviation_ppm == m.fidelity_ppm - rd.fidelity_ppm,
            lambda: f"{where}: fidelity_deviation_ppm != member fidelity - round fidelity",
        )


def _validate_round(rd: types_pb2.Round) -> None:
    where = f"round {rd.result_id}"
    with _invalid(where):
        from_bech32(rd.worker)
    _require(rd.request_id > 0 and bool(rd.model_id), lambda: f"{where}: request_id and model_id must be set")
    _require(rd.phase in (COMMIT, REVEAL, FINAL), lambda: f"{where}: phase {rd.phase}")
    _require(rd.quality_ppm <= PPM, lambda: f"{where}: quality_ppm > {PPM}")
    _require(rd.fidelity_ppm <= PPM, lambda: f"{where}: fidelity_ppm > {PPM}")
    members = [m.validator for m in rd.members]
    _require(len(set(members)) == len(members), lambda: f"{where}: a validator sits twice on the committee")
    _require(rd.worker not in members, lambda: f"{where}: the worker sits on its own committee")
    for m in rd.members:
        _validate_member(m, rd)
    revealed = any(m.revealed for m in rd.members)
    if rd.phase in OPEN_PHASES:
        _require(bool(rd.members), lambda: f"{where}: an open round needs a committee")
        _require(
            not (rd.quality_ppm or rd.fidelity_ppm or rd.scored or rd.passed or rd.finalized_height),
            lambda: f"{where}: verdict set on an open round",
        )
        _require(rd.commit_deadline_height > 0, lambda: f"{where}: commit_deadline_height must be set")
    if rd.phase == COMMIT:
        _require(
            rd.reveal_deadline_height == 0 and not revealed,
            lambda: f"{where}: COMMIT has no reveal window and no reveals",
        )
    if rd.phase == REVEAL:
        _require(
            rd.reveal_deadline_height >= rd.commit_deadline_height,
            lambda: f"{where}: the reveal window ends before the commit window",
        )
        _require(any(m.commitment for m in rd.members), lambda: f"{where}: REVEAL without a commitment")
    if rd.phase == FINAL:
        _require(rd.finalized_height > 0, lambda: f"{where}: FINAL without finalized_height")
        _require(not rd.scored or revealed, lambda: f"{where}: scored without a reveal")
        _require(
            rd.scored or (rd.quality_ppm == 0 and rd.fidelity_ppm == 0 and rd.passed),
            lambda: f"{where}: an unscored round has quality and fidelity 0 and passes",
        )


def _validate_rating(r: types_pb2.ValidatorRating, p: types_pb2.Params) -> None:
    where = f"rating of {r.validator}"
    _require(
        p.min_rating_ppm <= r.rating_ppm <= PPM,
        lambda: f"{where}: rating_ppm outside [{p.min_rating_ppm}, {PPM}]",
    )
    _require(len(r.deviations) <= p.rating_window, lambda: f"{where}: more deviations than rating_window")
    _require(all(abs(d) <= PPM for d in r.deviations), lambda: f"{where}: a deviation beyond {PPM}")


def validate_genesis(gs: genesis_pb2.GenesisState) -> None:
    with _invalid("params"):
        validate_params(gs.params)
    last = 0
    for rd in gs.rounds:
        if rd.result_id <= last:
            raise ErrInvalidGenesis.wrap(f"round {rd.result_id}: rounds must ascend by result id (> 0), no duplicates")
        last = rd.result_id
        _validate_round(rd)
    raws = []
    for r in gs.ratings:
        with _invalid(f"rating of {r.validator}"):
            raws.append(from_bech32(r.validator))
        _validate_rating(r, gs.params)
    for x, y in pairwise(raws):
        _require(x < y, lambda: "ratings must ascend by validator address bytes, no duplicates")


def init_genesis(k: TiqeKeeper, ctx: Context, gs: genesis_pb2.GenesisState) -> None:
    k.set_params(ctx, gs.params)
    for rd in gs.rounds:
        k.set_round(ctx, rd)
        k.write_indexes(ctx, rd)
    for r in gs.ratings:
        k.set_rating(ctx, r)


def export_genesis(k: TiqeKeeper, ctx: Context) -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(
        params=k.get_params(ctx), rounds=k.iterate_rounds(ctx), ratings=k.iterate_ratings(ctx)
    )
