"""pricing params: defaults and validation (SPEC 3.7 names them; the values are this project's).

- `target_util_ppm` 500_000: the price steers demand to half the active
  workers' capacity, leaving room for bursts (EIP-1559's target is half the
  block limit for the same reason).
- `adjust_denominator` 8: EIP-1559's, at most 12.5% a block either way.
- `max_price` 10^9 upoly (1000 POLY) per 1000 tokens: a cap far above any
  base price, so it only stops a runaway.
- `history_blocks` 200: about three minutes of 1-second blocks, the span the
  dashboard charts; each point costs one small record per moving model.
"""

from __future__ import annotations

from polylink.pricing.v1 import types_pb2

from chain.core.coins import parse_amount
from chain.core.errors import ChainError, ErrInvalidRequest

PPM = 1_000_000
MAX_HISTORY_BLOCKS = 10_000  # end_block prunes without gas metering: keep the window bounded


def default_params() -> types_pb2.Params:
    return types_pb2.Params(target_util_ppm=500_000, adjust_denominator=8, max_price="1000000000", history_blocks=200)


def validate_params(p: types_pb2.Params) -> None:
    if not 1 <= p.target_util_ppm <= PPM:
        raise ErrInvalidRequest.wrap(f"pricing.target_util_ppm must be in 1..{PPM}")
    if p.adjust_denominator < 1:
        raise ErrInvalidRequest.wrap("pricing.adjust_denominator must be >= 1")
    if not 1 <= p.history_blocks <= MAX_HISTORY_BLOCKS:
        raise ErrInvalidRequest.wrap(f"pricing.history_blocks must be in 1..{MAX_HISTORY_BLOCKS}")
    try:
        cap = parse_amount(p.max_price)
    except ChainError:
        raise ErrInvalidRequest.wrap(
            f"pricing.max_price must be a whole number of upoly, got {p.max_price!r}"
        ) from None
    if cap < 1:
        raise ErrInvalidRequest.wrap("pricing.max_price must be >= 1 upoly")
