"""staking params: defaults and validation."""

from __future__ import annotations

from polylink.staking.v1 import types_pb2

from chain.core.errors import ErrInvalidRequest

# Fixed by the design, not governance params.
PPM = 1_000_000
BONDED_POOL = "bonded_pool"  # module account holding BONDED validators' tokens
NOT_BONDED_POOL = "not_bonded_pool"  # the other validators' tokens and unbonding balances
SHARES_PER_TOKEN = 10**6  # shares of a validator's first delegation per upoly


def default_params() -> types_pb2.Params:
    return types_pb2.Params(
        unbonding_blocks=100_800,  # ~7 days of 6 s blocks; localnet uses 20
        max_validators=100,
        power_reduction=1_000_000,  # 1 POLY = 1 unit of CometBFT voting power
        max_entries=7,
        max_commission_change_ppm=100_000,
    )


def validate_params(p: types_pb2.Params) -> None:
    if p.unbonding_blocks < 1:
        raise ErrInvalidRequest.wrap("staking.unbonding_blocks must be >= 1")
    if not 1 <= p.max_validators <= 10_000:
        raise ErrInvalidRequest.wrap("staking.max_validators must be in 1..10000")
    if p.power_reduction < 1:
        raise ErrInvalidRequest.wrap("staking.power_reduction must be >= 1")
    if p.max_entries < 1:
        raise ErrInvalidRequest.wrap("staking.max_entries must be >= 1")
    if p.max_commission_change_ppm > PPM:
        raise ErrInvalidRequest.wrap("staking.max_commission_change_ppm must be <= 1000000")
