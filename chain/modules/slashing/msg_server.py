"""One handler per slashing message: stateless check, stateful check, writes, event, response."""

from __future__ import annotations

from polylink.slashing.v1 import tx_pb2

from chain.core.address import from_bech32
from chain.core.context import Context
from chain.core.events import Event
from chain.modules.slashing.errors import (
    ErrJailPeriodNotOver,
    ErrNoValidator,
    ErrSelfDelegationTooLow,
    ErrValidatorNotJailed,
    ErrValidatorTombstoned,
)
from chain.modules.slashing.keeper import SlashingKeeper, cons_addr_of


def validate_unjail(msg: tx_pb2.MsgUnjail) -> None:
    from_bech32(msg.validator_address)


class MsgServer:
    def __init__(self, k: SlashingKeeper) -> None:
        self.k = k

    def unjail(self, ctx: Context, msg: tx_pb2.MsgUnjail) -> tx_pb2.MsgUnjailResponse:
        op = msg.validator_address
        v = self.k.staking.get_validator(ctx, op)
        if v is None:
            raise ErrNoValidator.wrap(op)
        if not v.jailed:
            raise ErrValidatorNotJailed.wrap(op)
        # no signing info: jailed by staking itself (never voted), no jail period to wait
        info = self.k.get_signing_info(ctx, cons_addr_of(v))
        if info is not None and info.tombstoned:
            raise ErrValidatorTombstoned.wrap(op)
        if info is not None and ctx.height < info.jailed_until_height:
            raise ErrJailPeriodNotOver.wrap(f"{op} is jailed until height {info.jailed_until_height}")
        own, need = self.k.self_delegation(ctx, v), int(v.min_self_delegation)
        if own == 0 or own < need:
            raise ErrSelfDelegationTooLow.wrap(f"{op} has self-delegation {own}, needs {max(need, 1)}")
        self.k.unjail(ctx, v)
        ctx.emit(Event.of("message", module="slashing", action="unjail", sender=op))
        return tx_pb2.MsgUnjailResponse()
