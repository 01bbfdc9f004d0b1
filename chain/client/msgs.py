"""Constructors for the messages clients send, with the checks a client can do up front.

Addresses are checked with `chain.core.address.from_bech32` and amounts with
`chain.core.coins`, so a bad address or amount fails here, with the chain's
own registered error, before anything is signed.
"""

from __future__ import annotations

from collections.abc import Sequence

from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.bank.v1 import types_pb2 as bank_types
from polylink.base.v1 import coin_pb2

from chain.core.address import from_bech32
from chain.core.coins import Coins, ErrInvalidCoins


def coins_of(amount: Coins | str) -> Coins:
    """Coins from a Coins or the CLI syntax ("100upoly,5uabc"); must be non-zero."""
    coins = Coins.parse(amount) if isinstance(amount, str) else amount
    if coins.is_zero():
        raise ErrInvalidCoins.wrap(f"amount {amount!s} is zero")
    return coins


def coin_list(coins: Coins) -> list[coin_pb2.Coin]:
    return [coin_pb2.Coin(denom=d, amount=str(a)) for d, a in coins.items()]


def msg_send(from_address: str, to_address: str, amount: Coins | str) -> bank_tx.MsgSend:
    from_bech32(from_address)
    from_bech32(to_address)
    return bank_tx.MsgSend(
        from_address=from_address,
        to_address=to_address,
        amount=coin_list(coins_of(amount)),
    )


def msg_multi_send(
    from_address: str, outputs: Sequence[tuple[str, Coins | str]]
) -> bank_tx.MsgMultiSend:
    """One input (the signer, paying the sum) and one output per (address, amount)."""
    from_bech32(from_address)
    if not outputs:
        raise ErrInvalidCoins.wrap("multi-send needs at least one output")
    total = Coins()
    outs: list[bank_types.Output] = []
    for addr, amount in outputs:
        from_bech32(addr)
        coins = coins_of(amount)
        total = total + coins
        outs.append(bank_types.Output(address=addr, coins=coin_list(coins)))
    return bank_tx.MsgMultiSend(
        inputs=[bank_types.Input(address=from_address, coins=coin_list(total))],
        outputs=outs,
    )
