"""Addresses: the first 20 bytes of sha256(pubkey), shown as bech32 with prefix `poly`."""

from __future__ import annotations

import functools
import hashlib

import bech32

from chain.core.errors import ErrInvalidAddress

HRP = "poly"
ADDR_LEN = 20


def address_bytes(pubkey: bytes) -> bytes:
    return hashlib.sha256(pubkey).digest()[:ADDR_LEN]


@functools.lru_cache(maxsize=1 << 16)
def to_bech32(addr: bytes) -> str:
    if len(addr) != ADDR_LEN:
        raise ErrInvalidAddress.wrap(f"address must be {ADDR_LEN} bytes, got {len(addr)}")
    data = bech32.convertbits(list(addr), 8, 5)
    assert data is not None
    return str(bech32.bech32_encode(HRP, data))


@functools.lru_cache(maxsize=1 << 16)
def from_bech32(text: str) -> bytes:
    """Parse a bech32 address; raises ErrInvalidAddress with the reason.

    Memoized: bech32 decoding is pure and was most of a transfer's CPU time.
    """
    if not isinstance(text, str) or text != text.lower():
        raise ErrInvalidAddress.wrap(f"{text!r} is not a lower-case bech32 address")
    hrp, data = bech32.bech32_decode(text)
    if hrp is None or data is None:
        raise ErrInvalidAddress.wrap(f"{text!r} is not valid bech32")
    if hrp != HRP:
        raise ErrInvalidAddress.wrap(f"{text!r} has prefix {hrp!r}, expected {HRP!r}")
    raw = bech32.convertbits(data, 5, 8, False)
    if raw is None or len(raw) != ADDR_LEN:
        raise ErrInvalidAddress.wrap(f"{text!r} does not hold {ADDR_LEN} bytes")
    return bytes(raw)


@functools.lru_cache(maxsize=1 << 16)
def address_of_pubkey(pubkey: bytes) -> str:
    return to_bech32(address_bytes(pubkey))


def module_address(name: str) -> str:
    """Deterministic address of a module account (no private key exists for it)."""
    return to_bech32(hashlib.sha256(b"module:" + name.encode()).digest()[:ADDR_LEN])
