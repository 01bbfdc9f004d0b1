"""slashing params: defaults and validation.

The defaults suit a public network; the localnet template shortens the window
(20 blocks) and the downtime jail (10 blocks) so demos see slashing quickly.
"""

from __future__ import annotations

from polylink.slashing.v1 import types_pb2

from chain.core.errors import ErrInvalidRequest

PPM = 1_000_000
MAX_WINDOW = 1_000_000  # bounds the bitmap: one key per slot per validator


def default_params() -> types_pb2.Params:
    return types_pb2.Params(
        signed_blocks_window=100,
        min_signed_ppm=500_000,
        downtime_jail_blocks=100,
        slash_fraction_downtime_ppm=10_000,
        slash_fraction_double_sign_ppm=50_000,
        max_evidence_age_blocks=10_000,
    )


def validate_params(p: types_pb2.Params) -> None:
    if not 1 <= p.signed_blocks_window <= MAX_WINDOW:
        raise ErrInvalidRequest.wrap(f"slashing.signed_blocks_window must be in 1..{MAX_WINDOW}")
    if p.min_signed_ppm > PPM:
        raise ErrInvalidRequest.wrap("slashing.min_signed_ppm must be <= 1_000_000")
    if p.slash_fraction_downtime_ppm > PPM:
        raise ErrInvalidRequest.wrap("slashing.slash_fraction_downtime_ppm must be <= 1_000_000")
    if p.slash_fraction_double_sign_ppm > PPM:
        raise ErrInvalidRequest.wrap("slashing.slash_fraction_double_sign_ppm must be <= 1_000_000")
    if p.max_evidence_age_blocks == 0:
        raise ErrInvalidRequest.wrap("slashing.max_evidence_age_blocks must be positive")


def max_missed(p: types_pb2.Params) -> int:
    """Misses allowed in a window; one more is downtime (integer math, floor on the signed share)."""
    w = p.signed_blocks_window
    return w - w * p.min_signed_ppm // PPM
