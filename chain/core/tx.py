"""The tx envelope: sign bytes, decoding and stateless checks shared by app and client.

Wire form: `polylink.tx.v1.Tx` = SignDoc fields (chain_id, body_bytes,
auth_info_bytes) + an ed25519 signature over the SignDoc's deterministic
encoding. The tx hash (CometBFT's) is sha256 of the wire bytes.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import VerifyKey
from polylink.tx.v1 import tx_pb2

from chain.core.address import address_of_pubkey
from chain.core.codec import decode, encode
from chain.core.errors import ErrInvalidPubKey, ErrInvalidSignature, ErrNoMessages, ErrTxDecode

PUBKEY_LEN = 32
SIGNATURE_LEN = 64


def sign_bytes(chain_id: str, body_bytes: bytes, auth_info_bytes: bytes) -> bytes:
    return encode(tx_pb2.SignDoc(chain_id=chain_id, body_bytes=body_bytes, auth_info_bytes=auth_info_bytes))


def tx_hash(tx_bytes: bytes) -> str:
    """CometBFT's tx hash, upper-case hex."""
    return hashlib.sha256(tx_bytes).hexdigest().upper()


@dataclass(frozen=True)
class DecodedTx:
    raw: tx_pb2.Tx
    body: tx_pb2.TxBody
    auth: tx_pb2.AuthInfo
    signer: str  # bech32 address of auth.pub_key
    size: int

    def verify_signature(self) -> None:
        """ed25519 (RFC 8032) through libsodium, which verifies in ~60 us here against
        ~140 us through OpenSSL: it is the largest single cost of CheckTx. Keys and
        signing stay on `cryptography`; every node runs this same verifier, so
        libsodium's stricter edge-case checks (small-order keys, non-canonical
        encodings) are applied identically everywhere."""
        try:
            VerifyKey(self.auth.pub_key).verify(
                sign_bytes(self.raw.chain_id, self.raw.body_bytes, self.raw.auth_info_bytes),
                self.raw.signature,
            )
        except (BadSignatureError, NaclValueError):
            raise ErrInvalidSignature.wrap(f"signer {self.signer}") from None


@functools.lru_cache(maxsize=8192)
def decode_tx(tx_bytes: bytes) -> DecodedTx:
    """Parse the envelope and check what needs no state; raises registered errors.

    Memoized by the bytes (a pure function; callers never mutate the result):
    a node decodes each tx in CheckTx, every ReCheck, PrepareProposal,
    ProcessProposal and FinalizeBlock.
    """
    raw = decode(tx_pb2.Tx, tx_bytes, "Tx")
    body = decode(tx_pb2.TxBody, raw.body_bytes, "TxBody")
    auth = decode(tx_pb2.AuthInfo, raw.auth_info_bytes, "AuthInfo")
    if len(auth.pub_key) != PUBKEY_LEN:
        raise ErrInvalidPubKey.wrap(f"ed25519 public key must be {PUBKEY_LEN} bytes")
    if len(raw.signature) != SIGNATURE_LEN:
        raise ErrTxDecode.wrap(f"signature must be {SIGNATURE_LEN} bytes")
    if not body.messages:
        raise ErrNoMessages.wrap()
    return DecodedTx(raw, body, auth, address_of_pubkey(auth.pub_key), len(tx_bytes))
