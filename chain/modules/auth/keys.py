"""Store layout of the auth module (one-byte prefixes inside its namespace)."""

NAMESPACE = b"auth/"
PARAMS = b"\x00"
ACCOUNT = b"\x01"  # ACCOUNT | address(20) -> Account
NEXT_ACCOUNT_NUMBER = b"\x02"  # -> uint64 big-endian


def account_key(addr: bytes) -> bytes:
    return ACCOUNT + addr
