"""The ante handler: everything a tx must pass before its messages run.

Order: chain id, size, memo, timeout, gas limit vs block max gas, fee floor,
base and size gas, signer account and sequence, signature, fee deduction,
sequence increment. It runs in its own branch: if any step fails, nothing
(not even the fee) is charged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from polylink.auth.v1 import types_pb2 as auth_types

from chain.core.coins import BOND_DENOM, Coins
from chain.core.context import Context
from chain.core.errors import (
    ChainError,
    ErrInsufficientFee,
    ErrInsufficientFunds,
    ErrInvalidGasLimit,
    ErrInvalidSequence,
    ErrMemoTooLarge,
    ErrTxTimeout,
    ErrTxTooLarge,
    ErrWrongChainID,
)
from chain.core.events import Event, index_keys
from chain.core.tx import DecodedTx
from chain.modules.auth.keeper import AccountKeeper
from chain.modules.bank.errors import ErrInsufficientFunds as ErrBankInsufficientFunds
from chain.modules.bank.keeper import BankKeeper

FEE_COLLECTOR = "fee_collector"
index_keys("tx", "acc_seq")


class SigCache:
    """Signatures already verified on this node, by tx hash.

    Verification is a pure function of the tx bytes, so skipping a repeat
    check cannot change any result; it only saves CPU between CheckTx and
    FinalizeBlock.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._seen: dict[bytes, None] = {}

    def __contains__(self, h: bytes) -> bool:
        return h in self._seen

    def add(self, h: bytes) -> None:
        if len(self._seen) >= self.size:
            self._seen.pop(next(iter(self._seen)))
        self._seen[h] = None


@contextlib.contextmanager
def _fee_error() -> Iterator[None]:
    """Bank's insufficient-funds error, re-tagged with the ante's own code (tx/6)."""
    try:
        yield
    except ChainError as e:
        if e.kind is ErrBankInsufficientFunds:
            raise ErrInsufficientFunds.wrap(e.detail) from None
        raise


def ante(
    ctx: Context,
    tx: DecodedTx,
    tx_key: bytes,
    params: auth_types.Params,
    ak: AccountKeeper,
    bk: BankKeeper,
    sigs: SigCache,
    max_block_gas: int,
) -> None:
    if tx.raw.chain_id != ctx.chain_id:
        raise ErrWrongChainID.wrap(f"tx for {tx.raw.chain_id!r}, this chain is {ctx.chain_id!r}")
    if tx.size > params.max_tx_bytes:
        raise ErrTxTooLarge.wrap(f"{tx.size} > {params.max_tx_bytes} bytes")
    if len(tx.body.memo) > params.max_memo_characters:
        raise ErrMemoTooLarge.wrap(f"{len(tx.body.memo)} > {params.max_memo_characters} characters")
    if tx.body.timeout_height and ctx.height > tx.body.timeout_height:
        raise ErrTxTimeout.wrap(f"timeout height {tx.body.timeout_height} < block height {ctx.height}")
    gas_limit = tx.auth.gas_limit
    if gas_limit == 0:
        raise ErrInvalidGasLimit.wrap("gas limit is 0")
    if max_block_gas > 0 and gas_limit > max_block_gas:
        raise ErrInvalidGasLimit.wrap(f"gas limit {gas_limit} > block max gas {max_block_gas}")
    fee = Coins.from_proto([tx.auth.fee], strict=False) if tx.auth.HasField("fee") else Coins()
    if any(d != BOND_DENOM for d, _ in fee.items()):
        raise ErrInsufficientFee.wrap(f"fees are paid in {BOND_DENOM}")
    need = -(-gas_limit * params.min_gas_price_ppm // 1_000_000)  # ceil
    if fee.amount_of(BOND_DENOM) < need:
        raise ErrInsufficientFee.wrap(f"fee {fee} < required {need}{BOND_DENOM} for {gas_limit} gas")

    ctx.gas.consume(params.tx_base_gas + params.tx_size_cost_per_byte * tx.size, "tx size")
    acc = ak.ensure_account(ctx, tx.signer)
    if acc.sequence != tx.auth.sequence:
        raise ErrInvalidSequence.wrap(f"account sequence mismatch, expected {acc.sequence}, got {tx.auth.sequence}")
    ctx.gas.consume(params.sig_verify_cost, "signature")
    if tx_key not in sigs:
        tx.verify_signature()
        sigs.add(tx_key)
    if not fee.is_zero():
        with _fee_error():
            bk.send_to_module(ctx, tx.signer, FEE_COLLECTOR, fee)
    if not acc.pub_key:
        acc.pub_key = tx.auth.pub_key
    acc.sequence += 1
    ak.set_account(ctx, acc)
    ctx.emit(Event.of("tx", fee=fee, acc_seq=f"{tx.signer}/{tx.auth.sequence}"))


def recheck(ctx: Context, tx: DecodedTx, ak: AccountKeeper, bk: BankKeeper) -> None:
    """ReCheck: keep the mempool's view current after a Commit, as cheaply as possible.

    CometBFT re-runs CheckTx over the whole mempool after every block, holding
    its mempool lock; under load that is most of the app's work. A tx that
    passed CheckTx already passed every stateless and signature check, so only
    two things can have changed: its sequence and the signer's means to pay
    the fee. Check both and apply both (the next tx of the same signer builds
    on them); write nothing on failure. Mempool-only: consensus never runs this.
    """
    acc = ak.get_account(ctx, tx.signer)
    if acc is None or acc.sequence != tx.auth.sequence:
        have = acc.sequence if acc else 0
        raise ErrInvalidSequence.wrap(f"account sequence mismatch, expected {have}, got {tx.auth.sequence}")
    fee = Coins.from_proto([tx.auth.fee], strict=False) if tx.auth.HasField("fee") else Coins()
    if not fee.is_zero():
        with _fee_error():
            bk.sub_coins(ctx, tx.signer, fee)
    acc.sequence += 1
    ak.set_account(ctx, acc)
