"""One handler per tiqe message: stateless check, stateful check, writes, event, response.

The stateless checks (`validate_*`) run before any state is read (CheckTx
too); the stateful ones live in the keeper, each failure with its own code.
"""

from __future__ import annotations

from polylink.tiqe.v1 import tx_pb2

from chain.core.address import from_bech32
from chain.core.context import Context
from chain.core.events import Event
from chain.modules.tiqe.aggregate import PPM
from chain.modules.tiqe.errors import ErrInvalidCommitment, ErrInvalidMsg, ErrScoreOutOfRange, ErrUnknownRound
from chain.modules.tiqe.keeper import TiqeKeeper

COMMITMENT_LEN = 32
MAX_SALT_LEN = 64


# --- stateless checks -------------------------------------------------------
def _check_result_id(result_id: int) -> None:
    if result_id == 0:
        raise ErrUnknownRound.wrap("result id 0")


def validate_commit_score(msg: tx_pb2.MsgCommitScore) -> None:
    from_bech32(msg.validator)
    _check_result_id(msg.result_id)
    if len(msg.commitment) != COMMITMENT_LEN:
        raise ErrInvalidCommitment.wrap(f"{len(msg.commitment)} bytes")


def validate_reveal_score(msg: tx_pb2.MsgRevealScore) -> None:
    from_bech32(msg.validator)
    _check_result_id(msg.result_id)
    if msg.quality_ppm > PPM:
        raise ErrScoreOutOfRange.wrap(f"quality_ppm {msg.quality_ppm}")
    if msg.fidelity_ppm > PPM:
        raise ErrScoreOutOfRange.wrap(f"fidelity_ppm {msg.fidelity_ppm}")
    if not 1 <= len(msg.salt) <= MAX_SALT_LEN:
        raise ErrInvalidMsg.wrap(f"salt must be 1..{MAX_SALT_LEN} bytes, got {len(msg.salt)}")


class MsgServer:
    def __init__(self, k: TiqeKeeper) -> None:
        self.k = k

    def commit_score(self, ctx: Context, msg: tx_pb2.MsgCommitScore) -> tx_pb2.MsgCommitScoreResponse:
        self.k.commit_score(ctx, msg)
        ctx.emit(Event.of("message", module="tiqe", action="commit_score", sender=msg.validator))
        return tx_pb2.MsgCommitScoreResponse()

    def reveal_score(self, ctx: Context, msg: tx_pb2.MsgRevealScore) -> tx_pb2.MsgRevealScoreResponse:
        self.k.reveal_score(ctx, msg)
        ctx.emit(Event.of("message", module="tiqe", action="reveal_score", sender=msg.validator))
        return tx_pb2.MsgRevealScoreResponse()
