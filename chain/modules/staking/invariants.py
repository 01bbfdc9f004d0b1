"""staking invariants: pools match the state, shares add up, CometBFT's powers match the state.

Checked on committed state (after end_block), when the last powers are fresh.
"""

from __future__ import annotations

from polylink.staking.v1 import types_pb2

from chain.app.module import Invariant
from chain.core.context import Context
from chain.modules.staking.keeper import StakingKeeper
from chain.modules.staking.params import BONDED_POOL, NOT_BONDED_POOL


def pools(k: StakingKeeper) -> Invariant:
    """bonded_pool == BONDED validators' tokens; not_bonded_pool == the other validators'
    tokens + unbonding delegations' balances."""

    def check(ctx: Context) -> str | None:
        bonded = not_bonded = 0
        for v in k.validators(ctx):
            if v.status == types_pb2.BONDED:
                bonded += int(v.tokens)
            else:
                not_bonded += int(v.tokens)
        not_bonded += sum(int(e.balance) for u in k.all_unbonding_delegations(ctx) for e in u.entries)
        have_b, have_nb = k.pool_balance(ctx, BONDED_POOL), k.pool_balance(ctx, NOT_BONDED_POOL)
        if (have_b, have_nb) != (bonded, not_bonded):
            return f"pools hold bonded {have_b}, not bonded {have_nb}; state says {bonded}, {not_bonded}"
        return None

    return check


def shares(k: StakingKeeper) -> Invariant:
    """Every validator's delegator_shares is the sum of its delegations' shares; nothing negative."""

    def check(ctx: Context) -> str | None:
        total: dict[str, int] = {}
        for d in k.all_delegations(ctx):
            if int(d.shares) <= 0:
                return f"delegation {d.delegator} -> {d.validator} has {d.shares} shares"
            total[d.validator] = total.get(d.validator, 0) + int(d.shares)
        for v in k.validators(ctx):
            if int(v.tokens) < 0 or total.get(v.operator_address, 0) != int(v.delegator_shares):
                return (f"validator {v.operator_address}: tokens {v.tokens}, delegator_shares "
                        f"{v.delegator_shares}, delegations hold {total.get(v.operator_address, 0)}")
        return None

    return check


def powers(k: StakingKeeper) -> Invariant:
    """The stored last powers (what CometBFT has) are exactly the BONDED validators, each with
    the power its tokens give, none jailed, at most max_validators of them."""

    def check(ctx: Context) -> str | None:
        params = k.get_params(ctx)
        last = k.last_powers(ctx)
        bonded = {v.operator_address: v for v in k.validators(ctx) if v.status == types_pb2.BONDED}
        if set(last) != set(bonded):
            return f"last powers {sorted(last)} != BONDED validators {sorted(bonded)}"
        if len(last) > params.max_validators:
            return f"{len(last)} bonded validators > max_validators {params.max_validators}"
        for op, v in bonded.items():
            if v.jailed or last[op] != k.power(v, params.power_reduction):
                return f"validator {op}: last power {last[op]}, tokens {v.tokens}, jailed {v.jailed}"
        return None

    return check
