"""One handler per bank message: stateless check, stateful check, writes, event, response."""

from __future__ import annotations

from polylink.bank.v1 import tx_pb2

from chain.core.address import from_bech32
from chain.core.coins import Coins
from chain.core.context import Context
from chain.core.events import Event
from chain.modules.bank.errors import (
    ErrBlockedRecipient,
    ErrEmptyAmount,
    ErrInputOutputMismatch,
    ErrMultipleInputs,
    ErrNoOutputs,
    ErrSendDisabled,
    ErrTooManyOutputs,
)
from chain.modules.bank.keeper import BankKeeper


def validate_send(msg: tx_pb2.MsgSend) -> None:
    from_bech32(msg.from_address)
    from_bech32(msg.to_address)
    if Coins.from_proto(msg.amount).is_zero():
        raise ErrEmptyAmount.wrap("MsgSend.amount")


def validate_multi_send(msg: tx_pb2.MsgMultiSend) -> None:
    if len(msg.inputs) != 1:
        raise ErrMultipleInputs.wrap(f"got {len(msg.inputs)} inputs")
    if not msg.outputs:
        raise ErrNoOutputs.wrap("MsgMultiSend.outputs")
    from_bech32(msg.inputs[0].address)
    total = Coins()
    for o in msg.outputs:
        from_bech32(o.address)
        c = Coins.from_proto(o.coins)
        if c.is_zero():
            raise ErrEmptyAmount.wrap(f"output to {o.address}")
        total = total + c
    if total != Coins.from_proto(msg.inputs[0].coins):
        raise ErrInputOutputMismatch.wrap(f"inputs {Coins.from_proto(msg.inputs[0].coins)}, outputs {total}")


class MsgServer:
    def __init__(self, k: BankKeeper) -> None:
        self.k = k

    def _check_recipient(self, address: str) -> None:
        if self.k.ak.is_module_address(address):
            raise ErrBlockedRecipient.wrap(f"{address} is a module account")

    def send(self, ctx: Context, msg: tx_pb2.MsgSend) -> tx_pb2.MsgSendResponse:
        if not self.k.get_params(ctx).send_enabled:
            raise ErrSendDisabled.wrap()
        self._check_recipient(msg.to_address)
        self.k.send(ctx, msg.from_address, msg.to_address, Coins.from_proto(msg.amount))
        ctx.emit(Event.of("message", module="bank", action="send", sender=msg.from_address))
        return tx_pb2.MsgSendResponse()

    def multi_send(self, ctx: Context, msg: tx_pb2.MsgMultiSend) -> tx_pb2.MsgMultiSendResponse:
        params = self.k.get_params(ctx)
        if not params.send_enabled:
            raise ErrSendDisabled.wrap()
        if len(msg.outputs) > params.max_multisend_outputs:
            raise ErrTooManyOutputs.wrap(f"{len(msg.outputs)} > {params.max_multisend_outputs}")
        sender = msg.inputs[0].address
        for o in msg.outputs:
            self._check_recipient(o.address)
            self.k.send(ctx, sender, o.address, Coins.from_proto(o.coins))
        ctx.emit(Event.of("message", module="bank", action="multi_send", sender=sender))
        return tx_pb2.MsgMultiSendResponse()
