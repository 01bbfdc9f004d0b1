"""StakingKeeper: the only code that reads or writes staking state.

Share math (integers only):
- a delegation to a validator with no shares gets `amount * SHARES_PER_TOKEN`
  shares; later ones `amount * total_shares // tokens` (floor: rounding
  favours the validator's existing delegators);
- removing `shares` pays `shares * tokens // total_shares` (floor); the dust
  stays in the validator's tokens;
- undelegating an amount of tokens removes `ceil(amount * total_shares /
  tokens)` shares (so it pays at least `amount`), or the whole delegation when
  what would be left is worth less than one token.

Pools: a BONDED validator's tokens are in module account `bonded_pool`; the
others' tokens and every unbonding delegation's balance are in
`not_bonded_pool`. Every status change and every token move between them
moves the coins too. Redelegation entries hold no coins: they only keep the
moved stake slashable for the source validator's earlier infractions.

Other modules use: get_validator, validator_by_cons_addr, bonded_validators,
total_bonded_tokens, delegations_of, tokens_from_shares, slash, jail, unjail,
split_reward (see docs/design/staking-slashing-gov.md).
"""

from __future__ import annotations

from polylink.staking.v1 import types_pb2

from chain.core.address import address_bytes, from_bech32, to_bech32
from chain.core.codec import decode, encode
from chain.core.coins import BOND_DENOM, Coins
from chain.core.consensus import ValidatorUpdate
from chain.core.context import Context
from chain.core.events import Event, index_keys
from chain.core.store import KVStore, PrefixStore
from chain.modules.staking import abci, keys
from chain.modules.staking.errors import (
    ErrInsufficientDelegation,
    ErrInvalidAmount,
    ErrInvalidConsPubKey,
    ErrInvalidExchangeRate,
    ErrMaxEntries,
    ErrNoDelegation,
    ErrNoValidator,
    ErrPubKeyTaken,
    ErrSelfRedelegation,
    ErrTinyAmount,
    ErrTransitiveRedelegation,
    ErrValidatorExists,
)
from chain.modules.staking.expected import AccountKeeper, BankKeeper
from chain.modules.staking.params import BONDED_POOL, NOT_BONDED_POOL, PPM, SHARES_PER_TOKEN, default_params
from chain.modules.staking.slash import slash_validator

Validator = types_pb2.Validator
Delegation = types_pb2.Delegation
UnbondingDelegation = types_pb2.UnbondingDelegation
Redelegation = types_pb2.Redelegation

CONS_PUBKEY_LEN = 32

BONDED = types_pb2.BONDED
UNBONDING = types_pb2.UNBONDING
UNBONDED = types_pb2.UNBONDED

index_keys("create_validator", "validator")
index_keys("delegate", "delegator", "validator")
index_keys("unbond", "delegator", "validator")
index_keys("redelegate", "delegator", "src_validator", "dst_validator")
index_keys("complete_unbonding", "delegator", "validator")
index_keys("slash", "validator")
index_keys("jail", "validator")


def cons_address(pubkey: bytes) -> bytes:
    """CometBFT's validator address of an ed25519 key: sha256(pubkey)[:20]."""
    return address_bytes(pubkey)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def bond_coins(amount: int) -> Coins:
    return Coins({BOND_DENOM: amount})


class StakingKeeper:
    def __init__(self, ak: AccountKeeper, bk: BankKeeper) -> None:
        self.ak = ak
        self.bk = bk

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    # --- params ----------------------------------------------------------
    def get_params(self, ctx: Context) -> types_pb2.Params:
        raw = self._kv(ctx).get(keys.PARAMS)
        return default_params() if raw is None else decode(types_pb2.Params, raw)

    def set_params(self, ctx: Context, p: types_pb2.Params) -> None:
        self._kv(ctx).set(keys.PARAMS, encode(p))

    # --- validators ------------------------------------------------------
    def get_validator(self, ctx: Context, operator: str) -> Validator | None:
        raw = self._kv(ctx).get(keys.validator_key(from_bech32(operator)))
        return None if raw is None else decode(Validator, raw)

    def must_validator(self, ctx: Context, operator: str) -> Validator:
        v = self.get_validator(ctx, operator)
        if v is None:
            raise ErrNoValidator.wrap(operator)
        return v

    def validator_by_cons_addr(self, ctx: Context, cons_addr: bytes) -> Validator | None:
        op = self._kv(ctx).get(keys.cons_key(cons_addr))
        return None if op is None else self.get_validator(ctx, to_bech32(op))

    def set_validator(self, ctx: Context, v: Validator) -> None:
        """Write an existing validator (its consensus key never changes)."""
        self._kv(ctx).set(keys.validator_key(from_bech32(v.operator_address)), encode(v))

    def add_validator(self, ctx: Context, v: Validator) -> None:
        """Write a new validator and its consensus-address index."""
        self.set_validator(ctx, v)
        self._kv(ctx).set(keys.cons_key(cons_address(v.consensus_pubkey)), from_bech32(v.operator_address))

    def validators(self, ctx: Context) -> list[Validator]:
        """Every validator, in operator-address byte order."""
        store = PrefixStore(self._kv(ctx), keys.VALIDATOR)
        return [decode(Validator, raw) for _, raw in store.iterate()]

    @staticmethod
    def power(v: Validator, power_reduction: int) -> int:
        """CometBFT voting power of the validator's tokens (whatever its status)."""
        return int(v.tokens) // power_reduction

    def bonded_validators(self, ctx: Context) -> list[Validator]:
        """BONDED validators by current power, highest first, then operator address bytes."""
        pr = self.get_params(ctx).power_reduction
        bonded = [v for v in self.validators(ctx) if v.status == BONDED]
        return sorted(bonded, key=lambda v: -self.power(v, pr))  # stable: ties keep key order

    def total_bonded_tokens(self, ctx: Context) -> int:
        return sum(int(v.tokens) for v in self.validators(ctx) if v.status == BONDED)

    def create_validator(
        self,
        ctx: Context,
        operator: str,
        consensus_pubkey: bytes,
        self_bond: int,
        commission_ppm: int,
        moniker: str,
        min_self_delegation: int,
    ) -> Validator:
        """A new UNBONDED validator with the operator's self-bond as its first delegation
        (it joins the bonded set at the next end_block if its power makes the cut)."""
        if self.get_validator(ctx, operator) is not None:
            raise ErrValidatorExists.wrap(operator)
        if len(consensus_pubkey) != CONS_PUBKEY_LEN:
            raise ErrInvalidConsPubKey.wrap(f"got {len(consensus_pubkey)} bytes")
        if self.validator_by_cons_addr(ctx, cons_address(consensus_pubkey)) is not None:
            raise ErrPubKeyTaken.wrap(consensus_pubkey.hex())
        v = Validator(
            operator_address=operator,
            consensus_pubkey=consensus_pubkey,
            tokens="0",
            delegator_shares="0",
            commission_ppm=commission_ppm,
            moniker=moniker,
            min_self_delegation=str(min_self_delegation),
            status=UNBONDED,
        )
        self.add_validator(ctx, v)
        self.delegate(ctx, operator, operator, self_bond)
        return self.must_validator(ctx, operator)

    # --- share math ------------------------------------------------------
    @staticmethod
    def tokens_from_shares(v: Validator, shares: int) -> int:
        """What `shares` of v are worth in tokens (floor)."""
        total = int(v.delegator_shares)
        return 0 if total == 0 else shares * int(v.tokens) // total

    @staticmethod
    def shares_from_tokens(v: Validator, amount: int) -> int:
        """Shares a delegation of `amount` tokens gets (floor); raises when v has shares but no tokens."""
        total, tokens = int(v.delegator_shares), int(v.tokens)
        if total == 0:
            return amount * SHARES_PER_TOKEN
        if tokens == 0:
            raise ErrInvalidExchangeRate.wrap(v.operator_address)
        return amount * total // tokens

    # --- delegations -----------------------------------------------------
    def get_delegation(self, ctx: Context, delegator: str, validator: str) -> Delegation | None:
        raw = self._kv(ctx).get(keys.delegation_key(from_bech32(delegator), from_bech32(validator)))
        return None if raw is None else decode(Delegation, raw)

    def set_delegation(self, ctx: Context, d: Delegation) -> None:
        kv = self._kv(ctx)
        dl, vl = from_bech32(d.delegator), from_bech32(d.validator)
        if int(d.shares) == 0:
            kv.delete(keys.delegation_key(dl, vl))
            kv.delete(keys.delegation_by_val_key(vl, dl))
        else:
            kv.set(keys.delegation_key(dl, vl), encode(d))
            kv.set(keys.delegation_by_val_key(vl, dl), b"")

    def delegations_of(self, ctx: Context, delegator: str) -> list[Delegation]:
        """The delegator's delegations, in validator-address byte order."""
        store = PrefixStore(self._kv(ctx), keys.DELEGATION + from_bech32(delegator))
        return [decode(Delegation, raw) for _, raw in store.iterate()]

    def delegations_to(self, ctx: Context, validator: str) -> list[Delegation]:
        """The validator's delegations, in delegator-address byte order."""
        kv = self._kv(ctx)
        vl = from_bech32(validator)
        out = []
        for dl, _ in PrefixStore(kv, keys.DELEGATION_BY_VAL + vl).iterate():
            raw = kv.get(keys.delegation_key(dl, vl))
            assert raw is not None, "delegation index points at nothing"
            out.append(decode(Delegation, raw))
        return out

    def all_delegations(self, ctx: Context) -> list[Delegation]:
        return [decode(Delegation, raw) for _, raw in PrefixStore(self._kv(ctx), keys.DELEGATION).iterate()]

    def self_delegation_tokens(self, ctx: Context, operator: str) -> int:
        """What the operator's delegation to its own validator is worth (0 if none)."""
        v = self.get_validator(ctx, operator)
        d = self.get_delegation(ctx, operator, operator)
        return 0 if v is None or d is None else self.tokens_from_shares(v, int(d.shares))

    # --- pools (module accounts holding the stake) --------------------
    @staticmethod
    def pool_of(v: Validator) -> str:
        """The module account holding v's tokens."""
        return BONDED_POOL if v.status == BONDED else NOT_BONDED_POOL

    def move_tokens(self, ctx: Context, src_pool: str, dst_pool: str, amount: int) -> None:
        if amount and src_pool != dst_pool:
            self.bk.send(ctx, self.ak.module_address(src_pool), self.ak.module_address(dst_pool), bond_coins(amount))

    def burn_tokens(self, ctx: Context, pool: str, amount: int) -> None:
        if amount:
            self.bk.burn(ctx, pool, bond_coins(amount))

    def pool_balance(self, ctx: Context, pool: str) -> int:
        return self.bk.get_balance(ctx, self.ak.module_address(pool), BOND_DENOM)

    def _add_shares(self, ctx: Context, v: Validator, delegator: str, amount: int) -> int:
        """Credit `amount` tokens (already in v's pool) to delegator's delegation; writes v."""
        shares = self.shares_from_tokens(v, amount)
        if shares == 0:
            raise ErrTinyAmount.wrap(f"{amount}{BOND_DENOM} to {v.operator_address}")
        v.tokens = str(int(v.tokens) + amount)
        v.delegator_shares = str(int(v.delegator_shares) + shares)
        self.set_validator(ctx, v)
        d = self.get_delegation(ctx, delegator, v.operator_address) or Delegation(
            delegator=delegator, validator=v.operator_address, shares="0"
        )
        d.shares = str(int(d.shares) + shares)
        self.set_delegation(ctx, d)
        return shares

    def delegate(self, ctx: Context, delegator: str, operator: str, amount: int) -> int:
        """Move `amount` upoly from delegator into operator's validator; returns the shares issued."""
        if amount <= 0:
            raise ErrInvalidAmount.wrap(str(amount))
        v = self.must_validator(ctx, operator)
        if self.shares_from_tokens(v, amount) == 0:  # checked before any coin moves
            raise ErrTinyAmount.wrap(f"{amount}{BOND_DENOM} to {operator}")
        self.bk.send_to_module(ctx, delegator, self.pool_of(v), bond_coins(amount))
        return self._add_shares(ctx, v, delegator, amount)

    def remove_shares(self, ctx: Context, delegator: str, v: Validator, shares: int) -> int:
        """Remove `shares` of delegator's delegation to v; returns the tokens they were worth
        (floor), which leave v's tokens but stay in v's pool (the caller moves or burns them).
        Writes v; jails v when its operator's own delegation falls below min_self_delegation."""
        d = self.get_delegation(ctx, delegator, v.operator_address)
        if d is None:
            raise ErrNoDelegation.wrap(f"{delegator} to {v.operator_address}")
        have = int(d.shares)
        if not 0 < shares <= have:
            raise ErrInsufficientDelegation.wrap(f"{shares} shares of {have}")
        tokens = self.tokens_from_shares(v, shares)
        v.tokens = str(int(v.tokens) - tokens)
        v.delegator_shares = str(int(v.delegator_shares) - shares)
        d.shares = str(have - shares)
        self.set_delegation(ctx, d)
        if (
            delegator == v.operator_address
            and not v.jailed
            and self.tokens_from_shares(v, have - shares) < int(v.min_self_delegation)
        ):
            v.jailed = True
            ctx.emit(Event.of("jail", validator=v.operator_address, reason="self_delegation_below_min"))
        self.set_validator(ctx, v)
        return tokens

    def shares_for_amount(self, ctx: Context, delegator: str, v: Validator, amount: int) -> int:
        """The shares of delegator's delegation to v that undelegating `amount` upoly removes
        (see the module docstring); raises when the delegation is worth less. Writes nothing."""
        if amount <= 0:
            raise ErrInvalidAmount.wrap(str(amount))
        d = self.get_delegation(ctx, delegator, v.operator_address)
        if d is None:
            raise ErrNoDelegation.wrap(f"{delegator} to {v.operator_address}")
        have = int(d.shares)
        worth = self.tokens_from_shares(v, have)
        if amount > worth:
            raise ErrInsufficientDelegation.wrap(f"{amount}{BOND_DENOM} > {worth}{BOND_DENOM}")
        shares = min(ceil_div(amount * int(v.delegator_shares), int(v.tokens)), have)
        if self.tokens_from_shares(v, have - shares) == 0:
            shares = have  # leave no delegation worth nothing behind
        return shares

    # --- unbonding delegations ---------------------------------------
    def get_unbonding_delegation(self, ctx: Context, delegator: str, validator: str) -> UnbondingDelegation | None:
        raw = self._kv(ctx).get(keys.unbonding_key(from_bech32(delegator), from_bech32(validator)))
        return None if raw is None else decode(UnbondingDelegation, raw)

    def set_unbonding_delegation(self, ctx: Context, ubd: UnbondingDelegation) -> None:
        """Write (or delete, when it has no entries) the record and its validator index;
        the maturity queue is kept by the callers that add or remove entries."""
        kv = self._kv(ctx)
        dl, vl = from_bech32(ubd.delegator), from_bech32(ubd.validator)
        if ubd.entries:
            kv.set(keys.unbonding_key(dl, vl), encode(ubd))
            kv.set(keys.unbonding_by_val_key(vl, dl), b"")
        else:
            kv.delete(keys.unbonding_key(dl, vl))
            kv.delete(keys.unbonding_by_val_key(vl, dl))

    def unbonding_delegations_of(self, ctx: Context, delegator: str) -> list[UnbondingDelegation]:
        store = PrefixStore(self._kv(ctx), keys.UNBONDING + from_bech32(delegator))
        return [decode(UnbondingDelegation, raw) for _, raw in store.iterate()]

    def unbonding_delegations_from(self, ctx: Context, validator: str) -> list[UnbondingDelegation]:
        kv = self._kv(ctx)
        vl = from_bech32(validator)
        out = []
        for dl, _ in PrefixStore(kv, keys.UNBONDING_BY_VAL + vl).iterate():
            raw = kv.get(keys.unbonding_key(dl, vl))
            assert raw is not None, "unbonding index points at nothing"
            out.append(decode(UnbondingDelegation, raw))
        return out

    def all_unbonding_delegations(self, ctx: Context) -> list[UnbondingDelegation]:
        store = PrefixStore(self._kv(ctx), keys.UNBONDING)
        return [decode(UnbondingDelegation, raw) for _, raw in store.iterate()]

    def undelegate(self, ctx: Context, delegator: str, operator: str, amount: int) -> tuple[int, int]:
        """Start unbonding `amount` upoly of delegator's delegation; returns (completion height,
        tokens that will be paid out). The tokens wait in not_bonded_pool until then."""
        params = self.get_params(ctx)
        v = self.must_validator(ctx, operator)
        completion = ctx.height + params.unbonding_blocks
        ubd = self.get_unbonding_delegation(ctx, delegator, operator) or UnbondingDelegation(
            delegator=delegator, validator=operator
        )
        merge = next(
            (e for e in ubd.entries if e.creation_height == ctx.height and e.completion_height == completion), None
        )
        # the amount is checked first, as the SDK's msg server validates it before the keeper
        # counts entries: an over-large undelegation fails as such whatever the entry count
        shares = self.shares_for_amount(ctx, delegator, v, amount)
        if self.tokens_from_shares(v, shares) == 0:
            raise ErrTinyAmount.wrap(f"{amount}{BOND_DENOM} from {operator}")
        if merge is None and len(ubd.entries) >= params.max_entries:
            raise ErrMaxEntries.wrap(f"{len(ubd.entries)} unbonding entries from {operator}")
        tokens = self.remove_shares(ctx, delegator, v, shares)
        if v.status == BONDED:
            self.move_tokens(ctx, BONDED_POOL, NOT_BONDED_POOL, tokens)
        if merge is not None:
            merge.initial_balance = str(int(merge.initial_balance) + tokens)
            merge.balance = str(int(merge.balance) + tokens)
        else:
            ubd.entries.add(
                creation_height=ctx.height,
                completion_height=completion,
                initial_balance=str(tokens),
                balance=str(tokens),
            )
        self.set_unbonding_delegation(ctx, ubd)
        self._kv(ctx).set(keys.unbonding_queue_key(completion, from_bech32(delegator), from_bech32(operator)), b"")
        return completion, tokens

    # --- redelegations ---------------------------------------------------
    def get_redelegation(self, ctx: Context, delegator: str, src: str, dst: str) -> Redelegation | None:
        raw = self._kv(ctx).get(keys.redelegation_key(from_bech32(delegator), from_bech32(src), from_bech32(dst)))
        return None if raw is None else decode(Redelegation, raw)

    def set_redelegation(self, ctx: Context, red: Redelegation) -> None:
        """Write (or delete, when it has no entries) the record and its indexes."""
        kv = self._kv(ctx)
        dl, sl, tl = from_bech32(red.delegator), from_bech32(red.src_validator), from_bech32(red.dst_validator)
        idx = [keys.redelegation_by_src_key(sl, dl, tl), keys.redelegation_by_dst_key(tl, dl, sl)]
        if red.entries:
            kv.set(keys.redelegation_key(dl, sl, tl), encode(red))
            for k in idx:
                kv.set(k, b"")
        else:
            kv.delete(keys.redelegation_key(dl, sl, tl))
            for k in idx:
                kv.delete(k)

    def redelegations_of(self, ctx: Context, delegator: str) -> list[Redelegation]:
        store = PrefixStore(self._kv(ctx), keys.REDELEGATION + from_bech32(delegator))
        return [decode(Redelegation, raw) for _, raw in store.iterate()]

    def redelegations_from(self, ctx: Context, src: str) -> list[Redelegation]:
        kv = self._kv(ctx)
        sl = from_bech32(src)
        out = []
        for rest, _ in PrefixStore(kv, keys.REDELEGATION_BY_SRC + sl).iterate():
            dl, tl = rest[: keys.ADDR_LEN], rest[keys.ADDR_LEN :]
            raw = kv.get(keys.redelegation_key(dl, sl, tl))
            assert raw is not None, "redelegation index points at nothing"
            out.append(decode(Redelegation, raw))
        return out

    def all_redelegations(self, ctx: Context) -> list[Redelegation]:
        return [decode(Redelegation, raw) for _, raw in PrefixStore(self._kv(ctx), keys.REDELEGATION).iterate()]

    def has_receiving_redelegation(self, ctx: Context, delegator: str, validator: str) -> bool:
        """Whether stake of delegator moved into `validator` is still maturing (then it may not
        move on: it must stay slashable for its first validator's infractions)."""
        prefix = keys.REDELEGATION_BY_DST + from_bech32(validator) + from_bech32(delegator)
        return next(PrefixStore(self._kv(ctx), prefix).iterate(), None) is not None

    def redelegate(self, ctx: Context, delegator: str, src: str, dst: str, amount: int) -> tuple[int, int]:
        """Move `amount` upoly of delegator's stake from src to dst at once; returns (completion
        height of the slashability record, 0 when src was not bonded; tokens moved)."""
        if src == dst:
            raise ErrSelfRedelegation.wrap(src)
        params = self.get_params(ctx)
        vs = self.must_validator(ctx, src)
        vd = self.must_validator(ctx, dst)
        if self.has_receiving_redelegation(ctx, delegator, src):
            raise ErrTransitiveRedelegation.wrap(f"{delegator} into {src}")
        if vs.status == BONDED:
            completion = ctx.height + params.unbonding_blocks
        elif vs.status == UNBONDING and vs.unbonding_completion_height > ctx.height:
            completion = vs.unbonding_completion_height
        else:
            completion = 0  # src's stake is not at risk any more: no record needed
        red = self.get_redelegation(ctx, delegator, src, dst) or Redelegation(
            delegator=delegator, src_validator=src, dst_validator=dst
        )
        merge = next(
            (e for e in red.entries if e.creation_height == ctx.height and e.completion_height == completion), None
        )
        src_shares = self.shares_for_amount(ctx, delegator, vs, amount)  # the amount first, as in undelegate
        tokens = self.tokens_from_shares(vs, src_shares)
        if tokens == 0 or self.shares_from_tokens(vd, tokens) == 0:  # raises on a bad dst rate
            raise ErrTinyAmount.wrap(f"{amount}{BOND_DENOM} from {src} to {dst}")
        if completion and merge is None and len(red.entries) >= params.max_entries:
            raise ErrMaxEntries.wrap(f"{len(red.entries)} redelegation entries from {src} to {dst}")
        self.remove_shares(ctx, delegator, vs, src_shares)
        shares = self._add_shares(ctx, vd, delegator, tokens)
        self.move_tokens(ctx, self.pool_of(vs), self.pool_of(vd), tokens)
        if completion:
            if merge is not None:
                merge.initial_balance = str(int(merge.initial_balance) + tokens)
                merge.shares_dst = str(int(merge.shares_dst) + shares)
            else:
                red.entries.add(
                    creation_height=ctx.height,
                    completion_height=completion,
                    initial_balance=str(tokens),
                    shares_dst=str(shares),
                )
            self.set_redelegation(ctx, red)
            q = keys.redelegation_queue_key(completion, from_bech32(delegator), from_bech32(src), from_bech32(dst))
            self._kv(ctx).set(q, b"")
        return completion, tokens

    # --- last powers (what CometBFT has) --------------------------------
    def last_powers(self, ctx: Context) -> dict[str, int]:
        """operator -> power CometBFT was last told, in operator-address byte order."""
        store = PrefixStore(self._kv(ctx), keys.LAST_POWER)
        return {to_bech32(op): int(raw) for op, raw in store.iterate()}

    def set_last_power(self, ctx: Context, operator: str, power: int) -> None:
        key = keys.last_power_key(from_bech32(operator))
        if power:
            self._kv(ctx).set(key, str(power).encode())
        else:
            self._kv(ctx).delete(key)

    # --- for slashing, gov and rewards ------------------------------------
    def _must_by_cons(self, ctx: Context, cons_addr: bytes) -> Validator:
        v = self.validator_by_cons_addr(ctx, cons_addr)
        if v is None:
            raise ErrNoValidator.wrap(f"consensus address {cons_addr.hex().upper()}")
        return v

    def jail(self, ctx: Context, cons_addr: bytes) -> None:
        """Mark the validator jailed; it leaves the bonded set at the next end_block."""
        v = self._must_by_cons(ctx, cons_addr)
        if not v.jailed:
            v.jailed = True
            self.set_validator(ctx, v)
            ctx.emit(Event.of("jail", validator=v.operator_address))

    def unjail(self, ctx: Context, cons_addr: bytes) -> None:
        """Clear the jailed flag (the slashing module checks when that is allowed)."""
        v = self._must_by_cons(ctx, cons_addr)
        if v.jailed:
            v.jailed = False
            self.set_validator(ctx, v)
            ctx.emit(Event.of("unjail", validator=v.operator_address))

    def slash(
        self, ctx: Context, cons_addr: bytes, infraction_height: int, power_at_infraction: int, fraction_ppm: int
    ) -> int:
        """Burn `power_at_infraction * power_reduction * fraction_ppm // 10**6` upoly of the
        validator's stake at `infraction_height`; returns the amount burned (see slash.py)."""
        return slash_validator(self, ctx, cons_addr, infraction_height, power_at_infraction, fraction_ppm)

    def split_reward(self, ctx: Context, operator: str, amount: int) -> tuple[int, dict[str, int], int]:
        """How `amount` of reward to operator's validator divides (nothing is moved):
        (commission, {delegator: amount}, remainder). commission = amount * commission_ppm
        // 10**6; the rest goes by shares, each rounded down; the remainder (dust, less than
        one upoly per delegator) is the caller's to send to the community pool. The parts
        add up to `amount` exactly."""
        if amount < 0:
            raise ErrInvalidAmount.wrap(str(amount))
        v = self.must_validator(ctx, operator)
        commission = amount * v.commission_ppm // PPM
        rest = amount - commission
        total = int(v.delegator_shares)
        out: dict[str, int] = {}
        if total:
            for d in self.delegations_to(ctx, operator):
                share = rest * int(d.shares) // total
                if share:
                    out[d.delegator] = share
        return commission, out, rest - sum(out.values())

    # --- per block -------------------------------------------------------
    def end_block(self, ctx: Context) -> list[ValidatorUpdate]:
        """Mature unbondings and redelegations, then apply the new bonded set (see abci.py)."""
        return abci.end_block(self, ctx)
