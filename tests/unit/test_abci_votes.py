"""FinalizeBlock's decided last commit becomes the app's votes: only an absent signature misses (as x/slashing)."""

from __future__ import annotations

from typing import Any

from tendermint.abci import types_pb2 as abci
from tendermint.types import validator_pb2

from chain.abci.methods import finalize_block
from chain.app.app import BlockResult
from chain.core.consensus import Vote


class _RecordingApp:
    """The seam: records what the ABCI layer hands the app and answers an empty block."""

    def __init__(self) -> None:
        self.votes: list[Vote] = []

    def finalize_block(self, height: int, time_ns: int, block_hash: bytes, proposer: bytes, txs: list[bytes],
                       votes: list[Vote], evidence: list[Any]) -> BlockResult:
        self.votes = votes
        return BlockResult(tx_results=[], events=[], app_hash=b"\x00" * 32)


def _vote(addr: bytes, flag: int) -> abci.VoteInfo:
    return abci.VoteInfo(validator=abci.Validator(address=addr, power=10), block_id_flag=flag)


def test_a_nil_precommit_counts_as_signed_and_only_an_absent_one_misses() -> None:
    app = _RecordingApp()
    req = abci.RequestFinalizeBlock(
        height=5,
        decided_last_commit=abci.CommitInfo(
            round=0,
            votes=[
                _vote(b"a" * 20, validator_pb2.BLOCK_ID_FLAG_COMMIT),
                _vote(b"n" * 20, validator_pb2.BLOCK_ID_FLAG_NIL),
                _vote(b"x" * 20, validator_pb2.BLOCK_ID_FLAG_ABSENT),
            ],
        ),
    )
    finalize_block(app, req)  # type: ignore[arg-type]  # the seam fake has the one method used
    assert [(v.address[:1], v.power, v.signed) for v in app.votes] == [
        (b"a", 10, True), (b"n", 10, True), (b"x", 10, False)
    ]
