"""staking genesis: validate, init and export (init and export mirror each other).

The pools' coins live in bank: init checks that the bonded_pool and
not_bonded_pool balances (bank's genesis runs first) match the validators and
unbonding delegations it loads.
"""

from __future__ import annotations

from polylink.staking.v1 import genesis_pb2, types_pb2

from chain.core.address import address_bytes, from_bech32
from chain.core.coins import parse_amount
from chain.core.context import Context
from chain.core.errors import ChainError
from chain.modules.staking import keys
from chain.modules.staking.errors import ErrInvalidGenesis
from chain.modules.staking.keeper import CONS_PUBKEY_LEN, StakingKeeper
from chain.modules.staking.params import BONDED_POOL, NOT_BONDED_POOL, PPM, default_params, validate_params


def default_genesis() -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(params=default_params())


def _amount(s: str, what: str) -> int:
    try:
        return parse_amount(s)
    except ChainError:
        raise ErrInvalidGenesis.wrap(f"{what}: {s!r} is not a non-negative integer") from None


def _addr(s: str, what: str) -> bytes:
    try:
        return from_bech32(s)
    except ChainError as e:
        raise ErrInvalidGenesis.wrap(f"{what}: {e.log}") from None


def validate_genesis(gs: genesis_pb2.GenesisState) -> None:
    validate_params(gs.params)
    vals: dict[str, types_pb2.Validator] = {}
    cons: set[bytes] = set()
    for v in gs.validators:
        what = f"validator {v.operator_address}"
        _addr(v.operator_address, what)
        if v.operator_address in vals:
            raise ErrInvalidGenesis.wrap(f"duplicate {what}")
        if len(v.consensus_pubkey) != CONS_PUBKEY_LEN:
            raise ErrInvalidGenesis.wrap(f"{what}: consensus_pubkey must be {CONS_PUBKEY_LEN} bytes")
        c = address_bytes(v.consensus_pubkey)
        if c in cons:
            raise ErrInvalidGenesis.wrap(f"{what}: consensus_pubkey used twice")
        cons.add(c)
        if v.status == types_pb2.UNSPECIFIED:
            raise ErrInvalidGenesis.wrap(f"{what}: status unset")
        if (v.status == types_pb2.UNBONDING) != (v.unbonding_completion_height > 0):
            raise ErrInvalidGenesis.wrap(f"{what}: unbonding_completion_height is set iff UNBONDING")
        if v.commission_ppm > PPM:
            raise ErrInvalidGenesis.wrap(f"{what}: commission_ppm > {PPM}")
        _amount(v.tokens, f"{what} tokens")
        _amount(v.delegator_shares, f"{what} delegator_shares")
        if _amount(v.min_self_delegation, f"{what} min_self_delegation") == 0:
            raise ErrInvalidGenesis.wrap(f"{what}: min_self_delegation is 0")
        vals[v.operator_address] = v
    shares: dict[str, int] = {}
    seen: set[tuple[str, str]] = set()
    for d in gs.delegations:
        what = f"delegation {d.delegator} -> {d.validator}"
        _addr(d.delegator, what)
        if d.validator not in vals:
            raise ErrInvalidGenesis.wrap(f"{what}: unknown validator")
        if (d.delegator, d.validator) in seen:
            raise ErrInvalidGenesis.wrap(f"duplicate {what}")
        seen.add((d.delegator, d.validator))
        n = _amount(d.shares, f"{what} shares")
        if n == 0:
            raise ErrInvalidGenesis.wrap(f"{what}: zero shares")
        shares[d.validator] = shares.get(d.validator, 0) + n
    for op, v in vals.items():
        if shares.get(op, 0) != int(v.delegator_shares):
            raise ErrInvalidGenesis.wrap(f"validator {op}: delegations hold {shares.get(op, 0)} shares, "
                                         f"delegator_shares is {v.delegator_shares}")
    seen = set()
    for u in gs.unbonding_delegations:
        what = f"unbonding delegation {u.delegator} <- {u.validator}"
        _addr(u.delegator, what)
        if u.validator not in vals:
            raise ErrInvalidGenesis.wrap(f"{what}: unknown validator")
        if (u.delegator, u.validator) in seen:
            raise ErrInvalidGenesis.wrap(f"duplicate {what}")
        seen.add((u.delegator, u.validator))
        if not u.entries or len(u.entries) > gs.params.max_entries:
            raise ErrInvalidGenesis.wrap(f"{what}: 1..max_entries entries")
        for e in u.entries:
            if _amount(e.balance, what) > _amount(e.initial_balance, what) or e.completion_height <= 0:
                raise ErrInvalidGenesis.wrap(f"{what}: bad entry")
    seen3: set[tuple[str, str, str]] = set()
    for r in gs.redelegations:
        what = f"redelegation {r.delegator}: {r.src_validator} -> {r.dst_validator}"
        _addr(r.delegator, what)
        if r.src_validator not in vals or r.dst_validator not in vals or r.src_validator == r.dst_validator:
            raise ErrInvalidGenesis.wrap(f"{what}: bad validators")
        if (r.delegator, r.src_validator, r.dst_validator) in seen3:
            raise ErrInvalidGenesis.wrap(f"duplicate {what}")
        seen3.add((r.delegator, r.src_validator, r.dst_validator))
        if not r.entries or len(r.entries) > gs.params.max_entries:
            raise ErrInvalidGenesis.wrap(f"{what}: 1..max_entries entries")
        for re in r.entries:
            _amount(re.initial_balance, what)
            _amount(re.shares_dst, what)
            if re.completion_height <= 0:
                raise ErrInvalidGenesis.wrap(f"{what}: bad entry")
    powered: set[str] = set()
    for lp in gs.last_validator_powers:
        v_ = vals.get(lp.operator_address)
        if v_ is None or v_.status != types_pb2.BONDED or lp.power <= 0 or lp.operator_address in powered:
            raise ErrInvalidGenesis.wrap(f"last power of {lp.operator_address}: not a BONDED validator, "
                                         "duplicate or not positive")
        powered.add(lp.operator_address)
    bonded = {op for op, v in vals.items() if v.status == types_pb2.BONDED}
    if bonded != powered:
        raise ErrInvalidGenesis.wrap("the BONDED validators and the last validator powers differ")


def init_genesis(k: StakingKeeper, ctx: Context, gs: genesis_pb2.GenesisState) -> None:
    k.set_params(ctx, gs.params)
    kv = ctx.kv(keys.NAMESPACE)
    for v in sorted(gs.validators, key=lambda v: from_bech32(v.operator_address)):
        k.add_validator(ctx, v)
        if v.status == types_pb2.UNBONDING:
            kv.set(keys.validator_queue_key(v.unbonding_completion_height, from_bech32(v.operator_address)), b"")
    for d in sorted(gs.delegations, key=lambda d: (from_bech32(d.delegator), from_bech32(d.validator))):
        k.set_delegation(ctx, d)
    for u in sorted(gs.unbonding_delegations, key=lambda u: (from_bech32(u.delegator), from_bech32(u.validator))):
        k.set_unbonding_delegation(ctx, u)
        for e in u.entries:
            kv.set(keys.unbonding_queue_key(e.completion_height, from_bech32(u.delegator),
                                            from_bech32(u.validator)), b"")
    for r in sorted(gs.redelegations, key=lambda r: tuple(
        from_bech32(a) for a in (r.delegator, r.src_validator, r.dst_validator)
    )):
        k.set_redelegation(ctx, r)
        for re in r.entries:
            kv.set(keys.redelegation_queue_key(re.completion_height, from_bech32(r.delegator),
                                               from_bech32(r.src_validator), from_bech32(r.dst_validator)), b"")
    for lp in gs.last_validator_powers:
        k.set_last_power(ctx, lp.operator_address, lp.power)
    bonded = sum(int(v.tokens) for v in gs.validators if v.status == types_pb2.BONDED)
    not_bonded = sum(int(v.tokens) for v in gs.validators if v.status != types_pb2.BONDED) + sum(
        int(e.balance) for u in gs.unbonding_delegations for e in u.entries
    )
    for pool, want in ((BONDED_POOL, bonded), (NOT_BONDED_POOL, not_bonded)):
        have = k.pool_balance(ctx, pool)
        if have != want:
            raise ErrInvalidGenesis.wrap(f"{pool} holds {have}, the staking state needs {want}")


def export_genesis(k: StakingKeeper, ctx: Context) -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(
        params=k.get_params(ctx),
        validators=k.validators(ctx),
        delegations=k.all_delegations(ctx),
        unbonding_delegations=k.all_unbonding_delegations(ctx),
        redelegations=k.all_redelegations(ctx),
        last_validator_powers=[
            types_pb2.LastValidatorPower(operator_address=op, power=p) for op, p in k.last_powers(ctx).items()
        ],
    )
