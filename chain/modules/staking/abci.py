"""Per-block work of the staking module (end_block).

1. pay out unbonding delegation entries whose completion_height <= height
   (from not_bonded_pool to the delegator) and drop matured redelegation
   entries;
2. UNBONDING validators whose unbonding_completion_height <= height become
   UNBONDED;
3. the new bonded set: the top `max_validators` by power among validators that
   are not jailed and have power >= 1 (ties: lower consensus address first).
   Entering validators become BONDED (tokens not_bonded_pool -> bonded_pool);
   leaving ones become UNBONDING for unbonding_blocks (tokens back);
4. the result for CometBFT: the difference against the stored last powers
   (power 0 = removed), which then become the new last powers. At genesis
   (InitChain) the whole new set is returned instead: CometBFT takes it as the
   initial validator set, even when imported state already has last powers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polylink.staking.v1 import types_pb2

from chain.core.address import address_bytes, from_bech32, to_bech32
from chain.core.coins import BOND_DENOM, Coins
from chain.core.consensus import ValidatorUpdate
from chain.core.context import Context, ExecMode
from chain.core.events import Event
from chain.core.store import PrefixStore
from chain.modules.staking import keys
from chain.modules.staking.params import BONDED_POOL, NOT_BONDED_POOL

if TYPE_CHECKING:
    from chain.modules.staking.keeper import StakingKeeper

BONDED = types_pb2.BONDED
UNBONDING = types_pb2.UNBONDING
UNBONDED = types_pb2.UNBONDED
A = keys.ADDR_LEN


def end_block(k: StakingKeeper, ctx: Context) -> list[ValidatorUpdate]:
    mature_unbondings(k, ctx)
    mature_redelegations(k, ctx)
    mature_validators(k, ctx)
    return apply_validator_set(k, ctx)


def _due(ctx: Context, queue: bytes) -> list[bytes]:
    """Keys (height first) of `queue` entries with completion height <= the current one,
    collected before anything is written."""
    store = PrefixStore(ctx.kv(keys.NAMESPACE), queue)
    return [key for key, _ in store.iterate(b"", keys.height_bytes(ctx.height + 1))]


def mature_unbondings(k: StakingKeeper, ctx: Context) -> None:
    kv = ctx.kv(keys.NAMESPACE)
    for key in _due(ctx, keys.UNBONDING_QUEUE):
        kv.delete(keys.UNBONDING_QUEUE + key)
        dl, vl = key[8 : 8 + A], key[8 + A :]
        delegator, validator = to_bech32(dl), to_bech32(vl)
        ubd = k.get_unbonding_delegation(ctx, delegator, validator)
        if ubd is None:
            continue  # defensive: the record went with an earlier key
        keep = [e for e in ubd.entries if e.completion_height > ctx.height]
        paid = sum(int(e.balance) for e in ubd.entries if e.completion_height <= ctx.height)
        if len(keep) == len(ubd.entries):
            continue
        del ubd.entries[:]
        ubd.entries.extend(keep)
        k.set_unbonding_delegation(ctx, ubd)
        if paid:
            k.bk.send_from_module(ctx, NOT_BONDED_POOL, delegator, Coins({BOND_DENOM: paid}))
        ctx.emit(Event.of("complete_unbonding", delegator=delegator, validator=validator, amount=paid))


def mature_redelegations(k: StakingKeeper, ctx: Context) -> None:
    kv = ctx.kv(keys.NAMESPACE)
    for key in _due(ctx, keys.REDELEGATION_QUEUE):
        kv.delete(keys.REDELEGATION_QUEUE + key)
        dl, sl, tl = key[8 : 8 + A], key[8 + A : 8 + 2 * A], key[8 + 2 * A :]
        delegator, src, dst = to_bech32(dl), to_bech32(sl), to_bech32(tl)
        red = k.get_redelegation(ctx, delegator, src, dst)
        if red is None:
            continue
        keep = [e for e in red.entries if e.completion_height > ctx.height]
        if len(keep) == len(red.entries):
            continue
        del red.entries[:]
        red.entries.extend(keep)
        k.set_redelegation(ctx, red)
        ctx.emit(Event.of("complete_redelegation", delegator=delegator, src_validator=src, dst_validator=dst))


def mature_validators(k: StakingKeeper, ctx: Context) -> None:
    kv = ctx.kv(keys.NAMESPACE)
    for key in _due(ctx, keys.VALIDATOR_QUEUE):
        kv.delete(keys.VALIDATOR_QUEUE + key)
        v = k.get_validator(ctx, to_bech32(key[8:]))
        if v is None or v.status != UNBONDING or v.unbonding_completion_height > ctx.height:
            continue
        v.status = UNBONDED
        v.unbonding_completion_height = 0
        k.set_validator(ctx, v)
        ctx.emit(Event.of("complete_unbonding_validator", validator=v.operator_address))


def new_bonded_set(k: StakingKeeper, ctx: Context) -> list[tuple[types_pb2.Validator, int]]:
    """(validator, power) of the next bonded set, by power desc then consensus address."""
    params = k.get_params(ctx)
    pr = params.power_reduction
    candidates = [(v, k.power(v, pr)) for v in k.validators(ctx) if not v.jailed]
    candidates = [(v, p) for v, p in candidates if p >= 1]
    candidates.sort(key=lambda vp: (-vp[1], address_bytes(vp[0].consensus_pubkey)))
    return candidates[: params.max_validators]


def apply_validator_set(k: StakingKeeper, ctx: Context) -> list[ValidatorUpdate]:
    params = k.get_params(ctx)
    new = new_bonded_set(k, ctx)
    new_ops = {v.operator_address for v, _ in new}
    # status changes and the coins that go with them, in operator-address order
    for v in k.validators(ctx):
        if v.operator_address in new_ops and v.status != BONDED:
            if v.status == UNBONDING:
                ctx.kv(keys.NAMESPACE).delete(
                    keys.validator_queue_key(v.unbonding_completion_height, from_bech32(v.operator_address))
                )
            k.move_tokens(ctx, NOT_BONDED_POOL, BONDED_POOL, int(v.tokens))
            v.status = BONDED
            v.unbonding_completion_height = 0
            k.set_validator(ctx, v)
        elif v.operator_address not in new_ops and v.status == BONDED:
            k.move_tokens(ctx, BONDED_POOL, NOT_BONDED_POOL, int(v.tokens))
            v.status = UNBONDING
            v.unbonding_completion_height = ctx.height + params.unbonding_blocks
            k.set_validator(ctx, v)
            ctx.kv(keys.NAMESPACE).set(
                keys.validator_queue_key(v.unbonding_completion_height, from_bech32(v.operator_address)), b""
            )
            ctx.emit(Event.of("begin_unbonding_validator", validator=v.operator_address))
    old = k.last_powers(ctx)
    new_powers = {v.operator_address: p for v, p in new}
    pubkeys = {v.operator_address: bytes(v.consensus_pubkey) for v, _ in new}
    updates: list[ValidatorUpdate] = []
    for op in sorted(set(old) | set(new_powers), key=from_bech32):
        before, after = old.get(op, 0), new_powers.get(op, 0)
        if before != after:
            k.set_last_power(ctx, op, after)
        if before != after or ctx.mode == ExecMode.GENESIS:
            if op not in pubkeys:
                gone = k.get_validator(ctx, op)
                assert gone is not None, f"last power of unknown validator {op}"
                pubkeys[op] = bytes(gone.consensus_pubkey)
            if after or ctx.mode != ExecMode.GENESIS:
                updates.append(ValidatorUpdate(pubkeys[op], after))
    return updates
