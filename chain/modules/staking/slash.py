"""Slashing a validator's stake for an infraction at an earlier height.

amount = power_at_infraction * power_reduction * fraction_ppm // 10**6.
Stake that left the validator after the infraction still answers for it:
first each unbonding delegation entry and each redelegation entry created at
or after the infraction height (and not yet matured) loses `fraction` of its
initial balance, capped at what is left of it; then the validator's tokens
pay the rest of `amount` (never below zero). Everything taken is burned from
the pool that holds it, so total supply falls by exactly the returned amount.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polylink.staking.v1 import types_pb2

from chain.core.context import Context
from chain.core.events import Event
from chain.modules.staking.errors import ErrInvalidSlash
from chain.modules.staking.params import NOT_BONDED_POOL, PPM

if TYPE_CHECKING:
    from chain.modules.staking.keeper import StakingKeeper


def slash_validator(
    k: StakingKeeper, ctx: Context, cons_addr: bytes, infraction_height: int, power: int, fraction_ppm: int
) -> int:
    """Returns the upoly burned; 0 for an unknown consensus address."""
    if not 0 <= fraction_ppm <= PPM:
        raise ErrInvalidSlash.wrap(f"fraction {fraction_ppm} ppm is not in 0..{PPM}")
    if infraction_height > ctx.height:
        raise ErrInvalidSlash.wrap(f"infraction height {infraction_height} is after the current {ctx.height}")
    v = k.validator_by_cons_addr(ctx, cons_addr)
    if v is None:
        return 0
    operator = v.operator_address
    amount = max(power, 0) * k.get_params(ctx).power_reduction * fraction_ppm // PPM
    burned = 0
    for ubd in k.unbonding_delegations_from(ctx, operator):
        burned += _slash_unbonding(k, ctx, ubd, infraction_height, fraction_ppm)
    for red in k.redelegations_from(ctx, operator):
        burned += _slash_redelegation(k, ctx, red, infraction_height, fraction_ppm)
    v = k.must_validator(ctx, operator)  # re-read: nothing above touches it, but stay safe
    from_validator = min(max(amount - burned, 0), int(v.tokens))
    if from_validator:
        v.tokens = str(int(v.tokens) - from_validator)
        k.set_validator(ctx, v)
        k.burn_tokens(ctx, k.pool_of(v), from_validator)
    burned += from_validator
    ctx.emit(
        Event.of(
            "slash",
            validator=operator,
            consensus_address=cons_addr.hex().upper(),
            infraction_height=infraction_height,
            power=power,
            fraction_ppm=fraction_ppm,
            amount=burned,
        )
    )
    return burned


def _slashable(creation_height: int, completion_height: int, infraction_height: int, height: int) -> bool:
    """Created at or after the infraction, and not maturing in this block already."""
    return creation_height >= infraction_height and completion_height > height


def _slash_unbonding(
    k: StakingKeeper, ctx: Context, ubd: types_pb2.UnbondingDelegation, infraction_height: int, fraction_ppm: int
) -> int:
    burned = 0
    for e in ubd.entries:
        if not _slashable(e.creation_height, e.completion_height, infraction_height, ctx.height):
            continue
        take = min(int(e.initial_balance) * fraction_ppm // PPM, int(e.balance))
        if take:
            e.balance = str(int(e.balance) - take)
            burned += take
    if burned:
        k.set_unbonding_delegation(ctx, ubd)  # entries with balance 0 stay until they mature
        k.burn_tokens(ctx, NOT_BONDED_POOL, burned)
    return burned


def _slash_redelegation(
    k: StakingKeeper, ctx: Context, red: types_pb2.Redelegation, infraction_height: int, fraction_ppm: int
) -> int:
    """The redelegated stake now sits at the destination validator: remove `fraction` of the
    shares each entry received (capped at the delegation left there) and burn their tokens
    from the destination's pool."""
    burned = 0
    for e in red.entries:
        if not _slashable(e.creation_height, e.completion_height, infraction_height, ctx.height):
            continue
        shares = int(e.shares_dst) * fraction_ppm // PPM
        dst = k.get_validator(ctx, red.dst_validator)
        d = k.get_delegation(ctx, red.delegator, red.dst_validator)
        if not shares or dst is None or d is None:
            continue
        shares = min(shares, int(d.shares))
        tokens = k.remove_shares(ctx, red.delegator, dst, shares)
        k.burn_tokens(ctx, k.pool_of(dst), tokens)
        burned += tokens
    return burned

