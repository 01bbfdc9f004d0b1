"""An ed25519 signing key and the account address it controls."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from chain.core.address import address_of_pubkey

SEED_LEN = 32


class Signer:
    """Holds one ed25519 private key; `sign` is the only use made of it.

    The 32-byte seed is the whole secret (what `keys add --recover` takes).
    """

    __slots__ = ("_key", "address", "pub_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_LEN:
            raise ValueError(f"an ed25519 seed is {SEED_LEN} bytes, got {len(seed)}")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.pub_key: bytes = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.address: str = address_of_pubkey(self.pub_key)

    @staticmethod
    def generate() -> Signer:
        """A fresh random key (the OS's CSPRNG, through `cryptography`)."""
        seed = Ed25519PrivateKey.generate().private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )
        return Signer(seed)

    @staticmethod
    def from_hex(seed_hex: str) -> Signer:
        """From a 64-character hex seed (an optional 0x prefix is accepted)."""
        text = seed_hex.strip().lower().removeprefix("0x")
        try:
            seed = bytes.fromhex(text)
        except ValueError:
            raise ValueError("the seed must be hex") from None
        return Signer(seed)

    def seed(self) -> bytes:
        """The raw 32-byte private seed (handle with care)."""
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign(self, data: bytes) -> bytes:
        """A 64-byte ed25519 signature over `data`."""
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"Signer({self.address})"
