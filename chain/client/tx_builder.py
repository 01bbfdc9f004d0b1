"""Build, sign and encode a tx: the client's half of the envelope in `chain.core.tx`.

Pure (no I/O): given messages, a signer, its sequence, the fee and the gas
limit, produce the wire bytes the chain's ante handler will accept.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message
from polylink.base.v1 import coin_pb2
from polylink.tx.v1 import tx_pb2

from chain.client.signer import Signer
from chain.core.codec import encode, pack_any
from chain.core.coins import BOND_DENOM
from chain.core.tx import sign_bytes

DEFAULT_GAS = 200_000
DEFAULT_MIN_GAS_PRICE_PPM = 10_000
PPM = 1_000_000


def min_fee(gas_limit: int, min_gas_price_ppm: int) -> int:
    """The smallest fee (upoly) the chain accepts: ceil(gas_limit * price_ppm / 10^6).

    Mirrors the ante rule fee * 10^6 >= gas_limit * min_gas_price_ppm, in integers.
    """
    if gas_limit < 0 or min_gas_price_ppm < 0:
        raise ValueError("gas limit and gas price must be non-negative")
    return -(-gas_limit * min_gas_price_ppm // PPM)


def build_tx(
    msgs: Sequence[Message],
    signer: Signer,
    *,
    chain_id: str,
    sequence: int,
    fee: int,
    gas_limit: int = DEFAULT_GAS,
    memo: str = "",
    timeout_height: int = 0,
    fee_denom: str = BOND_DENOM,
) -> bytes:
    """Pack `msgs` as Any, sign the (chain_id, body, auth) sign-doc, return the Tx's wire bytes.

    `msgs` are protobuf messages (e.g. `MsgSend`); each is packed with
    type_url "/<full name>" and its deterministic encoding.
    """
    if not msgs:
        raise ValueError("a tx needs at least one message")
    if fee < 0 or gas_limit <= 0 or sequence < 0 or timeout_height < 0:
        raise ValueError("fee, sequence and timeout_height must be >= 0 and gas_limit > 0")
    body = tx_pb2.TxBody(
        messages=[pack_any(m) for m in msgs], memo=memo, timeout_height=timeout_height
    )
    auth = tx_pb2.AuthInfo(
        pub_key=signer.pub_key,
        sequence=sequence,
        fee=coin_pb2.Coin(denom=fee_denom, amount=str(fee)),
        gas_limit=gas_limit,
    )
    body_bytes = encode(body)
    auth_bytes = encode(auth)
    signature = signer.sign(sign_bytes(chain_id, body_bytes, auth_bytes))
    return encode(
        tx_pb2.Tx(
            chain_id=chain_id,
            body_bytes=body_bytes,
            auth_info_bytes=auth_bytes,
            signature=signature,
        )
    )
