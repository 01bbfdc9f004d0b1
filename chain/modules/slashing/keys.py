"""Store layout of the slashing module (one-byte prefixes inside its namespace).

Validators are keyed by consensus address: CometBFT's validator address,
sha256(ed25519 pubkey)[:20], shown as upper-case hex like CometBFT does.
"""

from __future__ import annotations

from chain.core.errors import ErrInvalidAddress

NAMESPACE = b"slashing/"
PARAMS = b"\x00"
SIGNING_INFO = b"\x01"  # SIGNING_INFO | cons_addr(20) -> ValidatorSigningInfo
MISSED = b"\x02"  # MISSED | cons_addr(20) | index(uint64 BE) -> b"\x01" (only set bits are stored)

CONS_ADDR_LEN = 20
MISSED_BIT = b"\x01"


def signing_info_key(cons_addr: bytes) -> bytes:
    return SIGNING_INFO + cons_addr


def missed_prefix(cons_addr: bytes) -> bytes:
    return MISSED + cons_addr


def missed_key(cons_addr: bytes, index: int) -> bytes:
    return MISSED + cons_addr + index.to_bytes(8, "big")


def cons_addr_hex(cons_addr: bytes) -> str:
    return cons_addr.hex().upper()


def parse_cons_addr(text: str) -> bytes:
    """A consensus address from hex (any case, optional 0x); raises ErrInvalidAddress."""
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise ErrInvalidAddress.wrap(f"consensus address {text!r} is not hex") from None
    if len(raw) != CONS_ADDR_LEN:
        raise ErrInvalidAddress.wrap(f"consensus address {text!r} is not {CONS_ADDR_LEN} bytes")
    return raw
