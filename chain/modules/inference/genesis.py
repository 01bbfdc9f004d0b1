"""inference genesis: validate, init and export (init and export mirror each other).

Only params, requests, results and the id counters are exported; every index
(PENDING, DEADLINE, TASK, BY_REQUESTER, BY_NEWEST) follows from the requests
and init rebuilds it. That the escrow account holds the open requests'
escrow is the `inference/escrow` invariant's job (bank state is not ours).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from polylink.inference.v1 import genesis_pb2, types_pb2

from chain.core.address import from_bech32
from chain.core.coins import parse_amount
from chain.core.context import Context
from chain.core.errors import ChainError
from chain.modules.inference.errors import ErrInvalidGenesis
from chain.modules.inference.keeper import (
    A_COMMITTED,
    A_DONE,
    A_OPEN,
    ASSIGNED,
    COMPLETED,
    FAILED,
    OPEN_STATUSES,
    PENDING,
    REVEAL,
    SCORING,
    InferenceKeeper,
    is_final,
)
from chain.modules.inference.params import PPM, default_params, validate_params


def default_genesis() -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(params=default_params(), next_request_id=1, next_result_id=1)


@contextmanager
def _invalid(where: str) -> Iterator[None]:
    """Re-raise a registered error from inside the block as ErrInvalidGenesis naming `where`."""
    try:
        yield
    except ChainError as e:
        raise ErrInvalidGenesis.wrap(f"{where}: {e.log}") from None


def _validate_request(r: types_pb2.Request, result_ids: dict[int, tuple[int, str]]) -> None:
    where = f"request {r.id}"
    with _invalid(where):
        from_bech32(r.requester)
        parse_amount(r.price)
        parse_amount(r.max_price)
        escrow = parse_amount(r.escrow)
        for a in r.assignments:
            from_bech32(a.worker)
    if r.status not in types_pb2.RequestStatus.values() or r.status == 0:
        raise ErrInvalidGenesis.wrap(f"{where}: status {r.status}")
    if not r.model_id or r.max_tokens == 0 or r.redundancy == 0:
        raise ErrInvalidGenesis.wrap(f"{where}: model_id, max_tokens and redundancy must be set")
    if r.status not in OPEN_STATUSES and escrow != 0:
        raise ErrInvalidGenesis.wrap(f"{where}: a closed request holds no escrow")
    if (r.status in (ASSIGNED, REVEAL)) != (r.deadline_height != 0):
        raise ErrInvalidGenesis.wrap(f"{where}: deadline_height is set exactly while ASSIGNED or REVEAL")
    if r.status == COMPLETED and r.answer_result_id == 0:
        raise ErrInvalidGenesis.wrap(f"{where}: COMPLETED without an answer")
    if r.status == SCORING and r.answer_result_id != 0:
        raise ErrInvalidGenesis.wrap(f"{where}: SCORING with an answer already")
    workers = [a.worker for a in r.assignments]
    if len(set(workers)) != len(workers):
        raise ErrInvalidGenesis.wrap(f"{where}: a worker is assigned twice")
    own_results = set()
    for a in r.assignments:
        if a.attempt > r.reassignments:
            raise ErrInvalidGenesis.wrap(f"{where}: assignment of {a.worker} in a future attempt")
        live = a.status in (A_OPEN, A_COMMITTED)
        if live and (a.attempt != r.reassignments or r.status not in (ASSIGNED, REVEAL)):
            raise ErrInvalidGenesis.wrap(f"{where}: open assignment of {a.worker} outside the current attempt")
        if (a.status == A_DONE) != (a.result_id != 0):
            raise ErrInvalidGenesis.wrap(f"{where}: assignment of {a.worker}: result_id is set exactly when DONE")
        if a.result_id:
            if result_ids.get(a.result_id) != (r.id, a.worker):
                raise ErrInvalidGenesis.wrap(f"{where}: result {a.result_id} is not this worker's on this request")
            own_results.add(a.result_id)
    if r.answer_result_id and r.answer_result_id not in own_results:
        raise ErrInvalidGenesis.wrap(f"{where}: answer {r.answer_result_id} is not one of its results")
    if r.status == FAILED and own_results:
        raise ErrInvalidGenesis.wrap(f"{where}: a FAILED request has no results")
    if r.status in (SCORING, COMPLETED) and not own_results:
        raise ErrInvalidGenesis.wrap(f"{where}: {'SCORING' if r.status == SCORING else 'COMPLETED'} without results")
    if r.status == PENDING and any(a.attempt == r.reassignments for a in r.assignments):
        raise ErrInvalidGenesis.wrap(f"{where}: PENDING with assignments in its current attempt")


def validate_genesis(gs: genesis_pb2.GenesisState) -> None:
    validate_params(gs.params)
    if gs.next_request_id < 1 or gs.next_result_id < 1:
        raise ErrInvalidGenesis.wrap("next_request_id and next_result_id must be >= 1")
    result_ids: dict[int, tuple[int, str]] = {}
    last = 0
    for res in gs.results:
        if res.id <= last or res.id >= gs.next_result_id:
            raise ErrInvalidGenesis.wrap(f"result {res.id}: ids must ascend, in 1..next_result_id-1")
        last = res.id
        with _invalid(f"result {res.id}"):
            from_bech32(res.worker)
            parse_amount(res.worker_paid)
            parse_amount(res.royalty_paid)
        result_ids[res.id] = (res.request_id, res.worker)
    statuses: dict[int, int] = {}
    last = 0
    for r in gs.requests:
        if r.id <= last or r.id >= gs.next_request_id:
            raise ErrInvalidGenesis.wrap(f"request {r.id}: ids must ascend, in 1..next_request_id-1")
        last = r.id
        statuses[r.id] = r.status
        _validate_request(r, result_ids)
    for res in gs.results:
        if res.request_id not in statuses:
            raise ErrInvalidGenesis.wrap(f"result {res.id}: no request {res.request_id}")
        _validate_verdict(res, statuses[res.request_id])


def _validate_verdict(res: types_pb2.Result, request_status: int) -> None:
    """A result is final (scored or passed) exactly when its request says so: always once
    COMPLETED, never before SCORING; an unscored result has quality and fidelity 0."""
    where = f"result {res.id}"
    if res.quality_ppm > PPM:
        raise ErrInvalidGenesis.wrap(f"{where}: quality_ppm > {PPM}")
    if res.fidelity_ppm > PPM:
        raise ErrInvalidGenesis.wrap(f"{where}: fidelity_ppm > {PPM}")
    if not res.scored and (res.quality_ppm or res.fidelity_ppm):
        raise ErrInvalidGenesis.wrap(f"{where}: an unscored result has quality and fidelity 0")
    if request_status == COMPLETED and not is_final(res):
        raise ErrInvalidGenesis.wrap(f"{where}: its request is COMPLETED but it has no verdict")
    if request_status not in (SCORING, COMPLETED) and is_final(res):
        raise ErrInvalidGenesis.wrap(f"{where}: a verdict before its request is SCORING")


def init_genesis(k: InferenceKeeper, ctx: Context, gs: genesis_pb2.GenesisState) -> None:
    k.set_params(ctx, gs.params)
    k.set_next_ids(ctx, gs.next_request_id, gs.next_result_id)
    for r in gs.requests:
        k.set_request(ctx, r)
        k.write_indexes(ctx, r)
    for res in gs.results:
        k.set_result(ctx, res)


def export_genesis(k: InferenceKeeper, ctx: Context) -> genesis_pb2.GenesisState:
    next_request_id, next_result_id = k.next_ids(ctx)
    return genesis_pb2.GenesisState(
        params=k.get_params(ctx),
        requests=k.iterate_requests(ctx),
        results=k.iterate_results(ctx),
        next_request_id=next_request_id,
        next_result_id=next_result_id,
    )
