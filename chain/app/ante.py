"""The ante handler: everything a tx must pass before its messages run.

Order: chain id, size, memo, timeout, gas limit vs block max gas, fee floor,
base and size gas, signer account and sequence, signature, fee deduction,
sequence increment. It runs in its own branch: if any step fails, nothing
(not even the fee) is charged.
"""

from __future__ import annotations

from chain.core.coins import BOND_DENOM, Coins
from chain.core.context import Context, ExecMode
from chain.core.errors import (
    ErrInsufficientFee,
    ErrInsufficientFunds,
    ErrInvalidGasLimit,
    ErrInvalidSequence,
    ErrMemoTooLarge,
    ErrTxTimeout,
    ErrTxTooLarge,
    ErrWrongChainID,
)
from chain.core.events import Event
from chain.core.tx import DecodedTx
from chain.modules.auth.keeper import AccountKeeper
from chain.modules.bank.errors import ErrInsufficientFunds as ErrBankInsufficientFunds
from chain.modules.bank.keeper import BankKeeper

FEE_COLLECTOR = "fee_collector"


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


def ante(
    ctx: Context,
    tx: DecodedTx,
    tx_key: bytes,
    ak: AccountKeeper,
    bk: BankKeeper,
    sigs: SigCache,
    max_block_gas: int,
) -> None:
    params = ak.get_params(ctx)
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
    if ctx.mode is not ExecMode.RECHECK and tx_key not in sigs:
        tx.verify_signature()
        sigs.add(tx_key)
    if not fee.is_zero():
        try:
            bk.send_to_module(ctx, tx.signer, FEE_COLLECTOR, fee)
        except Exception as e:  # noqa: BLE001 - re-tagged with the ante's own code
            if getattr(e, "kind", None) is ErrBankInsufficientFunds:
                raise ErrInsufficientFunds.wrap(str(e)) from None
            raise
    if not acc.pub_key:
        acc.pub_key = tx.auth.pub_key
    acc.sequence += 1
    ak.set_account(ctx, acc)
    ctx.emit(Event.of("tx", fee=fee, acc_seq=f"{tx.signer}/{tx.auth.sequence}"))
