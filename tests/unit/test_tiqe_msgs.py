"""MsgCommitScore and MsgRevealScore: success, and each failure with its own registered code
(nothing of a failed message stays); the ValidatorTasks query follows every step."""

from __future__ import annotations

import pytest
from polylink.tiqe.v1 import query_pb2, tx_pb2

from chain.core.errors import ChainError, ErrInvalidAddress
from chain.modules.tiqe import errors
from chain.modules.tiqe.keeper import FINAL, REVEAL, score_commitment
from chain.modules.tiqe.query_server import QueryServer
from tests.unit.tiqe_env import PPM, Env, addr


@pytest.fixture
def env() -> Env:
    return Env()


def open_round(e: Env) -> tuple[int, list[str], str]:
    """A result waiting for its committee: (result id, committee, a validator not on it)."""
    rid = e.answer()
    (res,) = e.result_ids(rid)
    com = e.committee(res)
    outsider = next(addr(v) for v in sorted(e.vals) if addr(v) not in com)
    return res, com, outsider


def code(x: object) -> tuple[str, int]:
    assert isinstance(x, ChainError), x
    return x.codespace, x.code


def try_reveal(e: Env, v: str, res: int, score: int, salt: bytes = b"salt", fidelity: int = PPM) -> object:
    return e.try_deliver(
        tx_pb2.MsgRevealScore(validator=v, result_id=res, quality_ppm=score, fidelity_ppm=fidelity, salt=salt)
    )


def tasks(e: Env, v: str) -> list[tuple[str, int, int]]:
    r = QueryServer(e.m.tiqe).validator_tasks(e.q(), query_pb2.QueryValidatorTasksRequest(validator=v))
    return [(t.action, t.result_id, t.deadline_height) for t in r.tasks]


def test_commit_then_reveal_succeed_and_tasks_follow(env: Env) -> None:
    e = env
    res, com, outsider = open_round(e)
    deadline = e.round(res).commit_deadline_height
    assert deadline == e.height + 10
    assert tasks(e, com[0]) == [("COMMIT", res, deadline)]
    assert tasks(e, outsider) == []
    assert e.commit(com[0], res, 700_000, fidelity=900_000) == tx_pb2.MsgCommitScoreResponse()
    assert e.round(res).members[0].commitment == score_commitment(700_000, 900_000, b"salt", com[0])
    assert tasks(e, com[0]) == []  # committed: nothing to do until the reveal window opens
    assert e.events_of("tiqe.committed")[-1] == {"result_id": str(res), "request_id": "1", "validator": com[0]}
    e.commit(com[1], res, 720_000, fidelity=950_000)
    e.commit(com[2], res, 710_000, fidelity=800_000)
    rd = e.round(res)
    # every member committed: the reveal window opened at once
    assert (rd.phase, rd.commit_deadline_height, rd.reveal_deadline_height) == (REVEAL, e.height, e.height + 10)
    assert [x["validator"] for x in e.events_of("tiqe.reveal")] == com
    assert tasks(e, com[1]) == [("REVEAL", res, e.height + 10)]
    assert e.reveal(com[0], res, 700_000, fidelity=900_000) == tx_pb2.MsgRevealScoreResponse()
    revealed = e.events_of("tiqe.revealed")[-1]
    assert (revealed["quality_ppm"], revealed["fidelity_ppm"]) == ("700000", "900000")
    assert tasks(e, com[0]) == []
    e.reveal(com[1], res, 720_000, fidelity=950_000)
    e.reveal(com[2], res, 710_000, fidelity=800_000)
    assert e.round(res).reveal_deadline_height == e.height  # everyone revealed: the window closes now
    e.end_block()  # aggregated at the start of the next block
    rd = e.round(res)
    assert (rd.phase, rd.quality_ppm, rd.fidelity_ppm, rd.scored) == (FINAL, 710_000, 900_000, True)
    finalized = e.events_of("tiqe.finalized")[-1]
    assert (finalized["quality_ppm"], finalized["fidelity_ppm"]) == ("710000", "900000")
    assert all(tasks(e, v) == [] for v in com)
    assert e.invariants() == []


def test_commit_failures(env: Env) -> None:
    e = env
    res, com, outsider = open_round(e)
    c = score_commitment(1, 1, b"s", com[0])
    # stateless: bad address, result id 0, wrong commitment length
    assert code(e.try_deliver(tx_pb2.MsgCommitScore(validator="nope", result_id=res, commitment=c))) == (
        ErrInvalidAddress.codespace, ErrInvalidAddress.code
    )
    bad_len = tx_pb2.MsgCommitScore(validator=com[0], result_id=res, commitment=c[:31])
    assert code(e.try_deliver(bad_len)) == ("tiqe", errors.ErrInvalidCommitment.code)
    zero = tx_pb2.MsgCommitScore(validator=com[0], result_id=0, commitment=c)
    assert code(e.try_deliver(zero)) == ("tiqe", errors.ErrUnknownRound.code)
    # stateful
    unknown = tx_pb2.MsgCommitScore(validator=com[0], result_id=res + 1, commitment=c)
    assert code(e.try_deliver(unknown)) == ("tiqe", errors.ErrUnknownRound.code)
    stranger = tx_pb2.MsgCommitScore(validator=outsider, result_id=res, commitment=c)
    assert code(e.try_deliver(stranger)) == ("tiqe", errors.ErrNotOnCommittee.code)
    worker = e.round(res).worker
    assert code(e.try_deliver(tx_pb2.MsgCommitScore(validator=worker, result_id=res, commitment=c))) == (
        "tiqe", errors.ErrNotOnCommittee.code
    )
    e.commit(com[0], res, 1)
    before = e.round(res)
    assert code(e.try_deliver(tx_pb2.MsgCommitScore(validator=com[0], result_id=res, commitment=c))) == (
        "tiqe", errors.ErrAlreadyCommitted.code
    )
    assert e.round(res) == before  # the commitment is not replaced
    # late: the commit window closed (one commitment -> REVEAL opened)
    e.advance(e.round(res).commit_deadline_height - e.height + 1)
    assert e.round(res).phase == REVEAL
    late = tx_pb2.MsgCommitScore(validator=com[1], result_id=res, commitment=score_commitment(1, 1, b"s", com[1]))
    assert code(e.try_deliver(late)) == ("tiqe", errors.ErrCommitClosed.code)
    assert e.invariants() == []


def test_a_commit_in_the_deadline_block_still_counts(env: Env) -> None:
    e = env
    res, com, _ = open_round(e)
    e.advance(e.round(res).commit_deadline_height - e.height)
    assert e.height == e.round(res).commit_deadline_height
    e.commit(com[0], res, 5)
    e.end_block()
    rd = e.round(res)
    assert rd.phase == REVEAL and rd.members[0].commitment


def test_reveal_failures(env: Env) -> None:
    e = env
    res, com, outsider = open_round(e)
    e.commit(com[0], res, 600_000, fidelity=700_000)
    e.commit(com[1], res, 650_000)
    # stateless: either number above 10^6, salt length, result id 0
    high = tx_pb2.MsgRevealScore(validator=com[0], result_id=res, quality_ppm=1_000_001, salt=b"salt")
    assert code(e.try_deliver(high)) == ("tiqe", errors.ErrScoreOutOfRange.code)
    high_f = tx_pb2.MsgRevealScore(
        validator=com[0], result_id=res, quality_ppm=600_000, fidelity_ppm=1_000_001, salt=b"salt"
    )
    assert code(e.try_deliver(high_f)) == ("tiqe", errors.ErrScoreOutOfRange.code)
    no_salt = tx_pb2.MsgRevealScore(validator=com[0], result_id=res, quality_ppm=600_000, salt=b"")
    assert code(e.try_deliver(no_salt)) == ("tiqe", errors.ErrInvalidMsg.code)
    long_salt = tx_pb2.MsgRevealScore(validator=com[0], result_id=res, quality_ppm=600_000, salt=b"x" * 65)
    assert code(e.try_deliver(long_salt)) == ("tiqe", errors.ErrInvalidMsg.code)
    zero = tx_pb2.MsgRevealScore(validator=com[0], result_id=0, quality_ppm=1, salt=b"salt")
    assert code(e.try_deliver(zero)) == ("tiqe", errors.ErrUnknownRound.code)
    # before the window: commitments are still being collected (a member that did not commit
    # has nothing to reveal at all)
    assert code(try_reveal(e, com[0], res, 600_000, fidelity=700_000)) == ("tiqe", errors.ErrRevealNotOpen.code)
    assert code(try_reveal(e, com[2], res, 600_000)) == ("tiqe", errors.ErrNotCommitted.code)
    e.advance(e.round(res).commit_deadline_height - e.height + 1)
    assert e.round(res).phase == REVEAL
    assert code(try_reveal(e, outsider, res, 1)) == ("tiqe", errors.ErrNotOnCommittee.code)
    # reveal without a commitment
    assert code(try_reveal(e, com[2], res, 1)) == ("tiqe", errors.ErrNotCommitted.code)
    # wrong salt, wrong quality, wrong fidelity, the numbers swapped: refused, nothing changes, a
    # correct reveal still works
    before = e.round(res)
    assert code(try_reveal(e, com[0], res, 600_000, salt=b"other", fidelity=700_000)) == (
        "tiqe", errors.ErrCommitmentMismatch.code
    )
    for q, f in ((600_001, 700_000), (600_000, 700_001), (700_000, 600_000)):
        assert code(try_reveal(e, com[0], res, q, fidelity=f)) == ("tiqe", errors.ErrCommitmentMismatch.code)
    assert e.round(res) == before
    e.reveal(com[0], res, 600_000, fidelity=700_000)
    m = e.round(res).members[0]
    assert (m.quality_ppm, m.fidelity_ppm) == (600_000, 700_000)
    assert code(try_reveal(e, com[0], res, 600_000, fidelity=700_000)) == ("tiqe", errors.ErrAlreadyRevealed.code)
    e.advance(e.round(res).reveal_deadline_height - e.height + 1)
    assert e.round(res).phase == FINAL
    # com[1] committed but the window is gone
    assert code(try_reveal(e, com[1], res, 650_000)) == ("tiqe", errors.ErrRevealClosed.code)
    assert code(try_reveal(e, com[0], res + 5, 1)) == ("tiqe", errors.ErrUnknownRound.code)
    assert e.invariants() == []
