"""SlashingKeeper: liveness windows, signing infos, and the only code that slashes or jails.

Per block (`begin_block`), in this order:
1. every entry of the decided last commit (`ctx.header.votes`) moves its
   validator's sliding window one slot; a validator that missed more than
   `max_missed(params)` blocks of a full window is slashed for downtime at
   infraction height `height - 2` (the block whose validator set signed
   `height - 1`) with the vote's power, jailed until `height +
   downtime_jail_blocks`, and its window restarts;
2. every `ctx.header.misbehavior` of a known, not yet tombstoned validator no
   older than `max_evidence_age_blocks` slashes `slash_fraction_double_sign`
   at the evidence height with the evidence's power, jails forever and
   tombstones (so the same validator is never slashed twice for it).
Staking does the arithmetic of a slash (`StakingKeeper.slash`); this module
decides when, how much and why.
"""

from __future__ import annotations

from polylink.slashing.v1 import types_pb2

from chain.core.address import address_bytes
from chain.core.codec import decode, encode
from chain.core.consensus import Evidence, Vote
from chain.core.context import Context
from chain.core.events import Event, index_keys
from chain.core.store import KVStore, PrefixStore
from chain.modules.slashing import keys
from chain.modules.slashing.errors import ErrInvalidFraction, ErrNoValidator
from chain.modules.slashing.expected import StakingKeeper, Validator
from chain.modules.slashing.params import PPM, default_params, max_missed

# jailed_until_height of a tombstoned validator: no height ever reaches it
FOREVER = 2**63 - 1
# CometBFT's misbehavior kinds, and the reason each is slashed for
EVIDENCE_REASONS = {"duplicate_vote": "double_sign", "light_client_attack": "light_client_attack"}
REASON_DOWNTIME = "downtime"
# a validator update returned at height h takes effect at h+2 (CometBFT's ValidatorUpdateDelay + 1)
VALIDATOR_UPDATE_DELAY = 2

index_keys("slash", "validator", "reason")
index_keys("liveness", "validator")
index_keys("jail_period", "validator", "reason")


class SlashingKeeper:
    def __init__(self, staking: StakingKeeper) -> None:
        self.staking = staking

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    # --- params ----------------------------------------------------------
    def get_params(self, ctx: Context) -> types_pb2.Params:
        raw = self._kv(ctx).get(keys.PARAMS)
        return default_params() if raw is None else decode(types_pb2.Params, raw)

    def set_params(self, ctx: Context, p: types_pb2.Params) -> None:
        """Store params (validated by the caller). A new window size restarts every window:
        the bitmap slots of the old size mean nothing under the new one."""
        old = self.get_params(ctx)
        self._kv(ctx).set(keys.PARAMS, encode(p))
        if old.signed_blocks_window != p.signed_blocks_window:
            for addr, info in self.iterate_signing_infos(ctx):
                self._restart_window(ctx, addr, info)
                self.set_signing_info(ctx, addr, info)

    # --- signing infos ---------------------------------------------------
    def get_signing_info(self, ctx: Context, cons_addr: bytes) -> types_pb2.ValidatorSigningInfo | None:
        raw = self._kv(ctx).get(keys.signing_info_key(cons_addr))
        return None if raw is None else decode(types_pb2.ValidatorSigningInfo, raw)

    def set_signing_info(self, ctx: Context, cons_addr: bytes, info: types_pb2.ValidatorSigningInfo) -> None:
        self._kv(ctx).set(keys.signing_info_key(cons_addr), encode(info))

    def _signing_info_or_new(self, ctx: Context, cons_addr: bytes) -> types_pb2.ValidatorSigningInfo:
        info = self.get_signing_info(ctx, cons_addr)
        if info is None:
            info = types_pb2.ValidatorSigningInfo(address=keys.cons_addr_hex(cons_addr), start_height=ctx.height)
        return info

    def iterate_signing_infos(self, ctx: Context) -> list[tuple[bytes, types_pb2.ValidatorSigningInfo]]:
        """Every signing info, by consensus address."""
        store = PrefixStore(self._kv(ctx), keys.SIGNING_INFO)
        return [(k, decode(types_pb2.ValidatorSigningInfo, v)) for k, v in store.iterate()]

    # --- missed-block bitmap ---------------------------------------------
    def is_missed(self, ctx: Context, cons_addr: bytes, index: int) -> bool:
        return self._kv(ctx).get(keys.missed_key(cons_addr, index)) is not None

    def set_missed(self, ctx: Context, cons_addr: bytes, index: int, missed: bool) -> None:
        key = keys.missed_key(cons_addr, index)
        if missed:
            self._kv(ctx).set(key, keys.MISSED_BIT)
        else:
            self._kv(ctx).delete(key)

    def missed_indices(self, ctx: Context, cons_addr: bytes) -> list[int]:
        """The set bits of a validator's bitmap, ascending."""
        store = PrefixStore(self._kv(ctx), keys.missed_prefix(cons_addr))
        return [int.from_bytes(k, "big") for k, _ in store.iterate()]

    def iterate_missed(self, ctx: Context) -> list[tuple[bytes, list[int]]]:
        """(consensus address, set bits ascending) for every validator with a set bit, by address."""
        out: dict[bytes, list[int]] = {}
        n = keys.CONS_ADDR_LEN
        for k, _ in PrefixStore(self._kv(ctx), keys.MISSED).iterate():
            out.setdefault(k[:n], []).append(int.from_bytes(k[n:], "big"))
        return list(out.items())

    def _restart_window(self, ctx: Context, cons_addr: bytes, info: types_pb2.ValidatorSigningInfo) -> None:
        """Forget every miss: a new window starts at this height (caller stores `info`)."""
        for index in self.missed_indices(ctx, cons_addr):
            self.set_missed(ctx, cons_addr, index, False)
        info.start_height = ctx.height
        info.index_offset = 0
        info.missed_blocks_counter = 0

    # --- per block -------------------------------------------------------
    def begin_block(self, ctx: Context) -> None:
        params = self.get_params(ctx)
        for vote in ctx.header.votes:
            self.handle_vote(ctx, vote, params)
        for ev in ctx.header.misbehavior:
            self.handle_evidence(ctx, ev, params)

    def handle_vote(self, ctx: Context, vote: Vote, params: types_pb2.Params) -> None:
        """Move one validator's window by one block; punish downtime."""
        v = self.staking.validator_by_cons_addr(ctx, vote.address)
        if v is None:
            return  # gone from staking: nothing left to punish or to track
        addr = vote.address
        info = self._signing_info_or_new(ctx, addr)
        window = params.signed_blocks_window
        index = info.index_offset % window
        info.index_offset += 1
        was_missed = self.is_missed(ctx, addr, index)
        missed = not vote.signed
        if missed != was_missed:
            self.set_missed(ctx, addr, index, missed)
            info.missed_blocks_counter += 1 if missed else -1
        if missed:
            ctx.emit(
                Event.of(
                    "liveness",
                    validator=v.operator_address,
                    missed_blocks=info.missed_blocks_counter,
                    height=ctx.height,
                )
            )
        downtime = (
            ctx.height - info.start_height >= window
            and info.missed_blocks_counter > max_missed(params)
            and not v.jailed
        )
        if downtime:
            until = ctx.height + params.downtime_jail_blocks
            info.jailed_until_height = until
            self._restart_window(ctx, addr, info)
            self.set_signing_info(ctx, addr, info)
            infraction = max(ctx.height - VALIDATOR_UPDATE_DELAY, 0)
            fraction = params.slash_fraction_downtime_ppm
            self._punish(ctx, addr, v, infraction, vote.power, fraction, REASON_DOWNTIME, until)
            return
        self.set_signing_info(ctx, addr, info)

    def handle_evidence(self, ctx: Context, ev: Evidence, params: types_pb2.Params) -> None:
        """Slash, jail forever and tombstone a validator CometBFT proved misbehaving."""
        reason = EVIDENCE_REASONS.get(ev.kind)
        if reason is None:
            return  # not a kind CometBFT 0.38 reports; nothing proven
        if ctx.height - ev.height > params.max_evidence_age_blocks:
            return  # too old: its stake may have legitimately left since
        v = self.staking.validator_by_cons_addr(ctx, ev.address)
        if v is None:
            return
        info = self._signing_info_or_new(ctx, ev.address)
        if info.tombstoned:
            return  # already punished for double signing, once is the rule
        info.tombstoned = True
        info.jailed_until_height = FOREVER
        self.set_signing_info(ctx, ev.address, info)
        self._punish(ctx, ev.address, v, ev.height, ev.power, params.slash_fraction_double_sign_ppm, reason, FOREVER)

    def _punish(
        self,
        ctx: Context,
        cons_addr: bytes,
        v: Validator,
        infraction_height: int,
        power: int,
        fraction_ppm: int,
        reason: str,
        jailed_until: int,
    ) -> int:
        amount = self.staking.slash(ctx, cons_addr, infraction_height, power, fraction_ppm)
        if not v.jailed:
            self.staking.jail(ctx, cons_addr)
        self._emit_slash(ctx, v, power, reason, amount, jailed_until)
        return amount

    @staticmethod
    def _emit_slash(ctx: Context, v: Validator, power: int, reason: str, amount: int, jailed_until: int) -> None:
        ctx.emit(
            Event.of(
                "slash",
                validator=v.operator_address,
                power=power,
                reason=reason,
                amount=amount,  # upoly, a plain integer like staking's own `slash` event
                jailed_until=jailed_until,
            )
        )

    # --- entry points for other modules (TIQE) and MsgUnjail ---------------
    def _validator(self, ctx: Context, cons_addr: bytes) -> Validator:
        v = self.staking.validator_by_cons_addr(ctx, cons_addr)
        if v is None:
            raise ErrNoValidator.wrap(f"consensus address {keys.cons_addr_hex(cons_addr)}")
        return v

    def slash(self, ctx: Context, cons_addr: bytes, fraction_ppm: int, reason: str) -> int:
        """Slash `fraction_ppm` of the validator's current power, as of the current height;
        returns the amount burned. Does not jail (see `jail`). Raises ErrNoValidator."""
        if not 0 <= fraction_ppm <= PPM:
            raise ErrInvalidFraction.wrap(str(fraction_ppm))
        v = self._validator(ctx, cons_addr)
        power = int(v.tokens) // self.staking.get_params(ctx).power_reduction
        amount = self.staking.slash(ctx, cons_addr, ctx.height, power, fraction_ppm)
        info = self.get_signing_info(ctx, cons_addr)
        self._emit_slash(ctx, v, power, reason, amount, info.jailed_until_height if info else 0)
        return amount

    def jail(self, ctx: Context, cons_addr: bytes, until_height: int, reason: str) -> None:
        """Jail the validator (if it is not already) and keep it jailed until at least
        `until_height` (a later existing release height wins); emits `jail_period` with the
        reason (staking emits `jail` when the flag flips). Raises ErrNoValidator."""
        v = self._validator(ctx, cons_addr)
        info = self._signing_info_or_new(ctx, cons_addr)
        info.jailed_until_height = max(info.jailed_until_height, until_height)
        self.set_signing_info(ctx, cons_addr, info)
        if not v.jailed:
            self.staking.jail(ctx, cons_addr)  # staking emits `jail`
        ctx.emit(
            Event.of("jail_period", validator=v.operator_address, reason=reason, jailed_until=info.jailed_until_height)
        )

    def self_delegation(self, ctx: Context, v: Validator) -> int:
        """Tokens the operator has delegated to its own validator (floor per delegation)."""
        op = v.operator_address
        return sum(
            self.staking.tokens_from_shares(v, int(d.shares))
            for d in self.staking.delegations_of(ctx, op)
            if d.validator == op
        )

    def unjail(self, ctx: Context, v: Validator) -> None:
        """Release a jailed validator (checks are MsgUnjail's); its liveness window restarts
        now, so the blocks it could not sign while jailed never count against it."""
        addr = cons_addr_of(v)
        self.staking.unjail(ctx, addr)
        info = self.get_signing_info(ctx, addr)
        if info is not None:
            self._restart_window(ctx, addr, info)
            self.set_signing_info(ctx, addr, info)


def cons_addr_of(v: Validator) -> bytes:
    """A validator's consensus address (CometBFT's validator address)."""
    return address_bytes(bytes(v.consensus_pubkey))
