"""inference messages: each message's success path and every failure code, with nothing kept on failure.

Runs the module's own routes (stateless check, then the handler in a branch)
over auth + bank + a fake registry (tests/unit/inference_env.py).
"""

from __future__ import annotations

import pytest
from polylink.inference.v1 import tx_pb2, types_pb2

from chain.core.errors import ChainError, ErrInvalidAddress, ErrorKind
from chain.core.events import is_indexed
from chain.modules.bank.errors import ErrInsufficientFunds
from chain.modules.inference import errors
from chain.modules.inference.keeper import EVENT_TYPES, commitment_of
from tests.unit.inference_env import ESCROW_ADDR, MODEL, Env, addr, make_params

USER = addr("user")
RICH = 10**12
WORKERS = ["w1", "w2", "w3", "w4"]
S = types_pb2
PRICE = 1000  # upoly per 1000 tokens: 1 upoly per token


def expect(kind: ErrorKind, out: object) -> ChainError:
    assert isinstance(out, ChainError), f"expected {kind}, got {out!r}"
    assert (out.codespace, out.code) == (kind.codespace, kind.code), out.log
    return out


@pytest.fixture
def env() -> Env:
    e = Env({USER: RICH, **{addr(w): 10**6 for w in WORKERS}, addr("poor"): 50})
    e.setup_model(base_price=PRICE, royalty_ppm=100_000, context_length=2048)
    for w in WORKERS:
        e.setup_worker(w)
    return e


def msg(**kw: object) -> tx_pb2.MsgRequestInference:
    base: dict[str, object] = {
        "requester": USER,
        "model_id": MODEL,
        "prompt": "What is 2+2?",
        "max_tokens": 100,
        "max_price": "1000",
    }
    base.update(kw)
    return tx_pb2.MsgRequestInference(**base)  # type: ignore[arg-type]


def unassigned(env: Env, rid: int) -> str:
    return next(addr(w) for w in WORKERS if addr(w) not in env.assigned(rid))


# --- codes --------------------------------------------------------------------
def test_error_codes_are_distinct_and_in_the_inference_codespace() -> None:
    kinds = [v for v in vars(errors).values() if isinstance(v, ErrorKind)]
    assert len(kinds) >= 20
    assert {k.codespace for k in kinds} == {"inference"}
    assert len({k.code for k in kinds}) == len(kinds)


def test_every_inference_event_indexes_request_id_and_worker() -> None:
    for t in EVENT_TYPES:
        assert is_indexed(t, "request_id") and is_indexed(t, "worker"), t
    assert is_indexed("inference.requested", "requester")


# --- MsgRequestInference ----------------------------------------------------------
def test_request_escrows_rounded_up_slots_and_stores_pending(env: Env) -> None:
    env.setup_model("m333", base_price=333)
    before = env.balance(USER)
    resp = env.deliver(msg(model_id="m333", max_tokens=10, redundancy=3))
    assert resp.request_id == 1
    # slot = ceil(333 x 10 / 1000) = 4; escrow = 4 x 3
    assert env.balance(USER) == before - 12
    assert env.balance(ESCROW_ADDR) == 12
    r = env.request(1)
    assert (r.status, r.escrow, r.price, r.redundancy, r.created_height) == (
        S.REQUEST_STATUS_PENDING,
        "12",
        "333",
        3,
        1,
    )
    (ev,) = env.events_of("inference.requested")
    assert ev == {
        "request_id": "1",
        "requester": USER,
        "model_id": "m333",
        "redundancy": "3",
        "max_tokens": "10",
        "price": "333",
        "escrow": "12",
    }
    assert env.invariants() == []


def test_redundancy_zero_means_one(env: Env) -> None:
    rid = env.deliver(msg(redundancy=0)).request_id
    assert env.request(rid).redundancy == 1
    assert env.request(rid).escrow == "100"


def test_free_model_escrows_nothing() -> None:
    env = Env({USER: RICH, addr("w1"): 10**6})
    env.setup_model("free", base_price=0)
    env.setup_worker("w1", models=("free",))
    rid = env.deliver(msg(model_id="free", max_price="0")).request_id
    assert env.request(rid).escrow == "0"
    env.end_block()
    w = env.assigned(rid)[0]
    env.submit(w, rid)
    assert env.request(rid).status == S.REQUEST_STATUS_COMPLETED
    assert env.result(1).worker_paid == "0"
    assert env.invariants() == []


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"model_id": ""}, "model_id"),
        ({"prompt": ""}, "prompt"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_price": ""}, "max_price"),
        ({"max_price": "01"}, "max_price"),
        ({"max_price": "-1"}, "max_price"),
        ({"sampling": types_pb2.SamplingParams(temperature_ppm=2_000_001)}, "temperature"),
        ({"sampling": types_pb2.SamplingParams(top_p_ppm=1_000_001)}, "top_p"),
    ],
)
def test_request_stateless_failures(env: Env, kw: dict[str, object], why: str) -> None:
    e = expect(errors.ErrInvalidMsg, env.try_deliver(msg(**kw)))
    assert why in e.log


def test_request_bad_requester_address(env: Env) -> None:
    expect(ErrInvalidAddress, env.try_deliver(msg(requester="nope")))


def test_sampling_at_the_limits_is_accepted(env: Env) -> None:
    env.deliver(msg(sampling=types_pb2.SamplingParams(temperature_ppm=2_000_000, top_p_ppm=1_000_000, seed=7)))
    assert env.request(1).sampling.seed == 7


def _nothing_happened(env: Env, before: int) -> None:
    assert env.balance(USER) == before
    assert env.balance(ESCROW_ADDR) == 0
    assert env.k.next_ids(env.q()) == (1, 1)
    assert env.k.iterate_requests(env.q()) == []
    assert env.events_of("inference.requested") == []
    assert env.invariants() == []


@pytest.mark.parametrize(
    ("kind", "kw"),
    [
        (errors.ErrUnknownModel, {"model_id": "nope"}),
        (errors.ErrPromptTooLarge, {"prompt": "é" * 4097}),  # 8194 bytes > 8192
        (errors.ErrMaxTokensTooLarge, {"max_tokens": 4097}),  # > max_tokens_limit
        (errors.ErrMaxTokensTooLarge, {"max_tokens": 2049}),  # > the model's context_length 2048
        (errors.ErrRedundancyTooLarge, {"redundancy": 17}),
        (errors.ErrPriceTooHigh, {"max_price": "999"}),
    ],
)
def test_request_stateful_failures_escrow_nothing(env: Env, kind: ErrorKind, kw: dict[str, object]) -> None:
    before = env.balance(USER)
    expect(kind, env.try_deliver(msg(**kw)))
    _nothing_happened(env, before)


def test_prompt_at_the_limit_is_accepted(env: Env) -> None:
    env.deliver(msg(prompt="é" * 4096))  # exactly 8192 bytes
    assert env.request(1).status == S.REQUEST_STATUS_PENDING


def test_insufficient_funds_escrows_nothing(env: Env) -> None:
    poor = addr("poor")
    expect(ErrInsufficientFunds, env.try_deliver(msg(requester=poor)))  # escrow 100 > 50
    assert env.balance(poor) == 50
    _nothing_happened(env, env.balance(USER))


# --- MsgSubmitResult -----------------------------------------------------------------
@pytest.fixture
def assigned_single(env: Env) -> int:
    rid = env.ask(USER)
    env.end_block()
    assert env.request(rid).status == S.REQUEST_STATUS_ASSIGNED
    return rid


def test_submit_by_a_worker_not_assigned(env: Env, assigned_single: int) -> None:
    rid = assigned_single
    expect(errors.ErrNotAssigned, env.try_deliver(tx_pb2.MsgSubmitResult(worker=unassigned(env, rid), request_id=rid)))
    expect(errors.ErrNotAssigned, env.try_deliver(tx_pb2.MsgSubmitResult(worker=USER, request_id=rid)))


def test_submit_before_assignment(env: Env) -> None:
    rid = env.ask(USER)
    expect(errors.ErrNotAssigned, env.try_deliver(tx_pb2.MsgSubmitResult(worker=addr("w1"), request_id=rid)))


def test_submit_unknown_request(env: Env) -> None:
    expect(errors.ErrUnknownRequest, env.try_deliver(tx_pb2.MsgSubmitResult(worker=addr("w1"), request_id=99)))
    expect(errors.ErrUnknownRequest, env.try_deliver(tx_pb2.MsgSubmitResult(worker=addr("w1"), request_id=0)))


def test_submit_completes_and_duplicate_fails(env: Env, assigned_single: int) -> None:
    rid = assigned_single
    w = env.assigned(rid)[0]
    assert env.submit(w, rid, "four", tokens=7).result_id == 1
    r = env.request(rid)
    assert (r.status, r.answer_result_id, r.completed_height, r.deadline_height) == (
        S.REQUEST_STATUS_COMPLETED,
        1,
        env.height,
        0,
    )
    assert r.assignments[0].status == S.ASSIGNMENT_STATUS_DONE
    assert env.worker(w).inflight_tokens == 0
    assert env.reg.get_stats(env.q(), w, MODEL).results == 1
    expect(errors.ErrAlreadySubmitted, env.try_deliver(tx_pb2.MsgSubmitResult(worker=w, request_id=rid)))
    assert env.events_of("inference.result") == [
        {"request_id": "1", "result_id": "1", "worker": w, "completion_tokens": "7"}
    ]
    assert env.invariants() == []


def test_submit_late_fails(env: Env, assigned_single: int) -> None:
    rid = assigned_single
    w = env.assigned(rid)[0]
    env.advance(env.request(rid).deadline_height - env.height + 1)  # the deadline's end_block ran
    expect(errors.ErrDeadlinePassed, env.try_deliver(tx_pb2.MsgSubmitResult(worker=w, request_id=rid)))


def test_submit_too_many_tokens(env: Env, assigned_single: int) -> None:
    w = env.assigned(assigned_single)[0]
    expect(errors.ErrTooManyTokens, env.try_deliver(tx_pb2.MsgSubmitResult(
        worker=w, request_id=assigned_single, response="x", completion_tokens=101
    )))  # fmt: skip
    env.submit(w, assigned_single, tokens=100)  # exactly max_tokens is fine


def test_submit_response_too_long(env: Env) -> None:
    e = Env({USER: RICH, addr("w1"): 10**6}, make_params(max_response_bytes=8))
    e.setup_model()
    w = e.setup_worker("w1")
    rid = e.ask(USER)
    e.end_block()
    expect(errors.ErrResponseTooLarge, e.try_deliver(tx_pb2.MsgSubmitResult(
        worker=w, request_id=rid, response="é" * 5, completion_tokens=1
    )))  # fmt: skip
    e.submit(w, rid, "é" * 4)  # 8 bytes


def test_submit_to_a_swarm_request_is_the_wrong_mode(env: Env) -> None:
    rid = env.ask(USER, redundancy=2)
    env.end_block()
    w = env.assigned(rid)[0]
    expect(errors.ErrWrongMode, env.try_deliver(tx_pb2.MsgSubmitResult(worker=w, request_id=rid)))


def test_commit_and_reveal_on_a_single_request_are_the_wrong_mode(env: Env, assigned_single: int) -> None:
    w = env.assigned(assigned_single)[0]
    c = commitment_of("4", b"s", w)
    expect(
        errors.ErrWrongMode, env.try_deliver(tx_pb2.MsgCommitResult(worker=w, request_id=assigned_single, commitment=c))
    )
    expect(
        errors.ErrWrongMode, env.try_deliver(tx_pb2.MsgRevealResult(worker=w, request_id=assigned_single, salt=b"s"))
    )


# --- MsgCommitResult / MsgRevealResult -------------------------------------------------
@pytest.fixture
def swarm(env: Env) -> int:
    rid = env.ask(USER, redundancy=3)
    env.end_block()
    assert len(env.assigned(rid)) == 3
    return rid


def test_commit_twice_fails(env: Env, swarm: int) -> None:
    w = env.assigned(swarm)[0]
    env.commit(w, swarm)
    # no rewards keeper bound in this env: no swarm ticket
    assert env.events_of("inference.committed") == [{"request_id": str(swarm), "worker": w, "ticket": "0"}]
    expect(errors.ErrAlreadyCommitted, env.try_deliver(tx_pb2.MsgCommitResult(
        worker=w, request_id=swarm, commitment=b"\x00" * 32
    )))  # fmt: skip
    assert env.request(swarm).assignments[0].commitment == commitment_of("4", b"salt", w)


def test_commit_by_a_worker_not_assigned(env: Env, swarm: int) -> None:
    expect(errors.ErrNotAssigned, env.try_deliver(tx_pb2.MsgCommitResult(
        worker=unassigned(env, swarm), request_id=swarm, commitment=b"\x00" * 32
    )))  # fmt: skip


@pytest.mark.parametrize("length", [0, 31, 33])
def test_commitment_must_be_32_bytes(env: Env, swarm: int, length: int) -> None:
    w = env.assigned(swarm)[0]
    expect(errors.ErrInvalidCommitment, env.try_deliver(tx_pb2.MsgCommitResult(
        worker=w, request_id=swarm, commitment=b"\x01" * length
    )))  # fmt: skip


def test_reveal_before_the_window(env: Env, swarm: int) -> None:
    w = env.assigned(swarm)[0]
    env.commit(w, swarm)
    assert env.request(swarm).status == S.REQUEST_STATUS_ASSIGNED
    expect(errors.ErrRevealNotOpen, env.try_deliver(tx_pb2.MsgRevealResult(
        worker=w, request_id=swarm, response="4", salt=b"salt", completion_tokens=1
    )))  # fmt: skip


def test_reveal_without_commitment(env: Env, swarm: int) -> None:
    w = env.assigned(swarm)[0]
    expect(errors.ErrNotCommitted, env.try_deliver(tx_pb2.MsgRevealResult(
        worker=w, request_id=swarm, response="4", salt=b"salt", completion_tokens=1
    )))  # fmt: skip


def test_reveal_salt_must_be_given(env: Env, swarm: int) -> None:
    w = env.assigned(swarm)[0]
    expect(errors.ErrInvalidMsg, env.try_deliver(tx_pb2.MsgRevealResult(worker=w, request_id=swarm, response="4")))
    expect(errors.ErrInvalidMsg, env.try_deliver(tx_pb2.MsgRevealResult(
        worker=w, request_id=swarm, response="4", salt=b"x" * 65
    )))  # fmt: skip


def test_mismatching_reveal_fails_and_keeps_the_commitment(env: Env, swarm: int) -> None:
    ws = env.assigned(swarm)
    for w in ws:
        env.commit(w, swarm, "4", b"salt")
    assert env.request(swarm).status == S.REQUEST_STATUS_REVEAL  # everyone committed: window open at once
    w = ws[0]
    for bad in [
        tx_pb2.MsgRevealResult(worker=w, request_id=swarm, response="5", salt=b"salt", completion_tokens=1),
        tx_pb2.MsgRevealResult(worker=w, request_id=swarm, response="4", salt=b"pepper", completion_tokens=1),
    ]:
        expect(errors.ErrCommitmentMismatch, env.try_deliver(bad))
    assert env.request(swarm).assignments[0].status == S.ASSIGNMENT_STATUS_COMMITTED
    assert env.reveal(w, swarm, "4", b"salt").result_id == 1
    expect(errors.ErrAlreadySubmitted, env.try_deliver(tx_pb2.MsgRevealResult(
        worker=w, request_id=swarm, response="4", salt=b"salt", completion_tokens=1
    )))  # fmt: skip


def test_reveal_checks_tokens_and_size(env: Env, swarm: int) -> None:
    ws = env.assigned(swarm)
    for w in ws:
        env.commit(w, swarm, "4", b"salt")
    expect(errors.ErrTooManyTokens, env.try_deliver(tx_pb2.MsgRevealResult(
        worker=ws[0], request_id=swarm, response="4", salt=b"salt", completion_tokens=101
    )))  # fmt: skip


def test_commitment_binds_the_worker_address(env: Env, swarm: int) -> None:
    """A commitment copied from another worker does not open for the copier."""
    a, b, _c = env.assigned(swarm)
    env.commit(a, swarm, "4", b"salt")
    env.deliver(tx_pb2.MsgCommitResult(worker=b, request_id=swarm, commitment=commitment_of("4", b"salt", a)))
    env.commit(_c, swarm)
    expect(errors.ErrCommitmentMismatch, env.try_deliver(tx_pb2.MsgRevealResult(
        worker=b, request_id=swarm, response="4", salt=b"salt", completion_tokens=1
    )))  # fmt: skip


def test_commit_after_the_window_closed(env: Env, swarm: int) -> None:
    ws = env.assigned(swarm)
    env.commit(ws[0], swarm)
    env.advance(env.request(swarm).deadline_height - env.height + 1)
    assert env.request(swarm).status == S.REQUEST_STATUS_REVEAL
    expect(errors.ErrDeadlinePassed, env.try_deliver(tx_pb2.MsgCommitResult(
        worker=ws[1], request_id=swarm, commitment=b"\x00" * 32
    )))  # fmt: skip
