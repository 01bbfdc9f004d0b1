"""gov params: defaults (the localnet values) and validation."""

from __future__ import annotations

from polylink.base.v1 import coin_pb2
from polylink.gov.v1 import types_pb2

from chain.core.coins import BOND_DENOM, Coins
from chain.core.errors import ErrInvalidRequest

PPM = 1_000_000


def default_params() -> types_pb2.Params:
    return types_pb2.Params(
        min_deposit=[coin_pb2.Coin(denom=BOND_DENOM, amount="10000000")],
        max_deposit_period_blocks=20,
        voting_period_blocks=20,
        quorum_ppm=334_000,
        threshold_ppm=500_000,
        veto_ppm=334_000,
    )


def validate_params(p: types_pb2.Params) -> None:
    Coins.from_proto(p.min_deposit)  # canonical: sorted, unique, positive
    if p.max_deposit_period_blocks < 1 or p.voting_period_blocks < 1:
        raise ErrInvalidRequest.wrap("gov periods must be at least 1 block")
    # Each fraction is at least 1 ppm: a zero quorum or veto would let an
    # empty tally pass or veto every proposal.
    for name in ("quorum_ppm", "threshold_ppm", "veto_ppm"):
        v = getattr(p, name)
        if not 1 <= v <= PPM:
            raise ErrInvalidRequest.wrap(f"gov.{name} must be in 1..{PPM}, got {v}")
