"""One handler per staking message: stateless check, stateful check, writes, event, response."""

from __future__ import annotations

from polylink.base.v1 import coin_pb2
from polylink.staking.v1 import tx_pb2

from chain.core.address import from_bech32
from chain.core.coins import BOND_DENOM, parse_amount
from chain.core.context import Context
from chain.core.errors import ChainError
from chain.core.events import Event
from chain.modules.staking.errors import (
    ErrBadDenom,
    ErrCommissionChangeTooLarge,
    ErrCommissionTooHigh,
    ErrInvalidAmount,
    ErrInvalidConsPubKey,
    ErrInvalidMinSelfDelegation,
    ErrInvalidMoniker,
    ErrSelfBondBelowMin,
    ErrSelfRedelegation,
)
from chain.modules.staking.keeper import CONS_PUBKEY_LEN, StakingKeeper
from chain.modules.staking.params import PPM

MONIKER_MAX = 70


def bond_amount(c: coin_pb2.Coin, what: str) -> int:
    """A positive amount of the bond denom."""
    if c.denom != BOND_DENOM:
        raise ErrBadDenom.wrap(f"{what}: {c.denom!r}, expected {BOND_DENOM!r}")
    try:
        amount = parse_amount(c.amount)
    except ChainError:  # not a canonical integer
        raise ErrInvalidAmount.wrap(f"{what}: {c.amount!r}") from None
    if amount == 0:
        raise ErrInvalidAmount.wrap(f"{what} is zero")
    return amount


def _check_moniker(moniker: str) -> None:
    if not 1 <= len(moniker) <= MONIKER_MAX:
        raise ErrInvalidMoniker.wrap(f"{len(moniker)} characters")


def _check_commission(ppm: int) -> None:
    if ppm > PPM:
        raise ErrCommissionTooHigh.wrap(f"{ppm} ppm")


def validate_create_validator(msg: tx_pb2.MsgCreateValidator) -> None:
    from_bech32(msg.operator_address)
    if len(msg.consensus_pubkey) != CONS_PUBKEY_LEN:
        raise ErrInvalidConsPubKey.wrap(f"got {len(msg.consensus_pubkey)} bytes")
    self_bond = bond_amount(msg.self_bond, "self_bond")
    _check_commission(msg.commission_ppm)
    _check_moniker(msg.moniker)
    try:
        min_self = parse_amount(msg.min_self_delegation)
    except ChainError:
        raise ErrInvalidMinSelfDelegation.wrap(repr(msg.min_self_delegation)) from None
    if min_self == 0:
        raise ErrInvalidMinSelfDelegation.wrap("0")
    if self_bond < min_self:
        raise ErrSelfBondBelowMin.wrap(f"{self_bond} < {min_self}")


def validate_edit_validator(msg: tx_pb2.MsgEditValidator) -> None:
    from_bech32(msg.operator_address)
    if msg.moniker:
        _check_moniker(msg.moniker)
    if msg.commission_set:
        _check_commission(msg.commission_ppm)


def validate_delegate(msg: tx_pb2.MsgDelegate | tx_pb2.MsgUndelegate) -> None:
    from_bech32(msg.delegator_address)
    from_bech32(msg.validator_address)
    bond_amount(msg.amount, "amount")


validate_undelegate = validate_delegate


def validate_redelegate(msg: tx_pb2.MsgRedelegate) -> None:
    from_bech32(msg.delegator_address)
    from_bech32(msg.src_validator_address)
    from_bech32(msg.dst_validator_address)
    if msg.src_validator_address == msg.dst_validator_address:
        raise ErrSelfRedelegation.wrap(msg.src_validator_address)
    bond_amount(msg.amount, "amount")


def _coin(amount: int) -> coin_pb2.Coin:
    return coin_pb2.Coin(denom=BOND_DENOM, amount=str(amount))


class MsgServer:
    def __init__(self, k: StakingKeeper) -> None:
        self.k = k

    def _message(self, ctx: Context, action: str, sender: str) -> None:
        ctx.emit(Event.of("message", module="staking", action=action, sender=sender))

    def create_validator(
        self, ctx: Context, msg: tx_pb2.MsgCreateValidator
    ) -> tx_pb2.MsgCreateValidatorResponse:
        amount = bond_amount(msg.self_bond, "self_bond")
        v = self.k.create_validator(
            ctx,
            msg.operator_address,
            msg.consensus_pubkey,
            amount,
            msg.commission_ppm,
            msg.moniker,
            int(msg.min_self_delegation),
        )
        ctx.emit(
            Event.of(
                "create_validator",
                validator=v.operator_address,
                consensus_pubkey=v.consensus_pubkey.hex(),
                amount=f"{amount}{BOND_DENOM}",
            )
        )
        self._message(ctx, "create_validator", msg.operator_address)
        return tx_pb2.MsgCreateValidatorResponse()

    def edit_validator(self, ctx: Context, msg: tx_pb2.MsgEditValidator) -> tx_pb2.MsgEditValidatorResponse:
        v = self.k.must_validator(ctx, msg.operator_address)
        if msg.commission_set:
            limit = self.k.get_params(ctx).max_commission_change_ppm
            if msg.commission_ppm > v.commission_ppm + limit:
                raise ErrCommissionChangeTooLarge.wrap(
                    f"{v.commission_ppm} -> {msg.commission_ppm} ppm, at most +{limit} per edit"
                )
            v.commission_ppm = msg.commission_ppm
        if msg.moniker:
            v.moniker = msg.moniker
        self.k.set_validator(ctx, v)
        ctx.emit(
            Event.of("edit_validator", validator=v.operator_address, commission_ppm=v.commission_ppm, moniker=v.moniker)
        )
        self._message(ctx, "edit_validator", msg.operator_address)
        return tx_pb2.MsgEditValidatorResponse()

    def delegate(self, ctx: Context, msg: tx_pb2.MsgDelegate) -> tx_pb2.MsgDelegateResponse:
        amount = bond_amount(msg.amount, "amount")
        shares = self.k.delegate(ctx, msg.delegator_address, msg.validator_address, amount)
        ctx.emit(
            Event.of(
                "delegate",
                delegator=msg.delegator_address,
                validator=msg.validator_address,
                amount=f"{amount}{BOND_DENOM}",
                shares=shares,
            )
        )
        self._message(ctx, "delegate", msg.delegator_address)
        return tx_pb2.MsgDelegateResponse(shares=str(shares))

    def undelegate(self, ctx: Context, msg: tx_pb2.MsgUndelegate) -> tx_pb2.MsgUndelegateResponse:
        amount = bond_amount(msg.amount, "amount")
        completion, tokens = self.k.undelegate(ctx, msg.delegator_address, msg.validator_address, amount)
        ctx.emit(
            Event.of(
                "unbond",
                delegator=msg.delegator_address,
                validator=msg.validator_address,
                amount=f"{tokens}{BOND_DENOM}",
                completion_height=completion,
            )
        )
        self._message(ctx, "undelegate", msg.delegator_address)
        return tx_pb2.MsgUndelegateResponse(completion_height=completion, amount=_coin(tokens))

    def redelegate(self, ctx: Context, msg: tx_pb2.MsgRedelegate) -> tx_pb2.MsgRedelegateResponse:
        amount = bond_amount(msg.amount, "amount")
        completion, tokens = self.k.redelegate(
            ctx, msg.delegator_address, msg.src_validator_address, msg.dst_validator_address, amount
        )
        ctx.emit(
            Event.of(
                "redelegate",
                delegator=msg.delegator_address,
                src_validator=msg.src_validator_address,
                dst_validator=msg.dst_validator_address,
                amount=f"{tokens}{BOND_DENOM}",
                completion_height=completion,
            )
        )
        self._message(ctx, "redelegate", msg.delegator_address)
        return tx_pb2.MsgRedelegateResponse(completion_height=completion, amount=_coin(tokens))
