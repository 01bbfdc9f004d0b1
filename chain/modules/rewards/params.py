"""rewards params: defaults (SPEC 3.8) and validation.

`block_reward` is not in SPEC's defaults: 1 POLY (10^6 upoly) a block, about
5.3 million POLY a year at one-second blocks; governance sets it.
"""

from __future__ import annotations

from polylink.rewards.v1 import types_pb2

from chain.core.coins import parse_amount
from chain.core.errors import ChainError, ErrInvalidRequest

PPM = 1_000_000
COMMUNITY_POOL = "community_pool"
# the module account emission is minted into and paid out of, in the same block
EMISSION_ACCOUNT = "fee_collector"


def default_params() -> types_pb2.Params:
    return types_pb2.Params(
        worker_share_ppm=700_000, validator_share_ppm=200_000, block_reward="1000000", ticket_ppm=10_000
    )


def validate_params(p: types_pb2.Params) -> None:
    if p.worker_share_ppm > PPM or p.validator_share_ppm > PPM or p.ticket_ppm > PPM:
        raise ErrInvalidRequest.wrap(f"rewards shares and ticket_ppm must be <= {PPM} ppm")
    if p.worker_share_ppm + p.validator_share_ppm > PPM:
        raise ErrInvalidRequest.wrap(
            f"rewards.worker_share_ppm + validator_share_ppm must be <= {PPM} (the rest goes to the community pool)"
        )
    try:
        parse_amount(p.block_reward or "0")
    except ChainError:
        raise ErrInvalidRequest.wrap(
            f"rewards.block_reward must be a whole number of upoly, got {p.block_reward!r}"
        ) from None
