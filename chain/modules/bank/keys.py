"""Store layout of the bank module (one-byte prefixes inside its namespace)."""

NAMESPACE = b"bank/"
PARAMS = b"\x00"
BALANCE = b"\x01"  # BALANCE | address(20) | denom -> amount (decimal ASCII)
SUPPLY = b"\x02"  # SUPPLY | denom -> amount (decimal ASCII)
BURNED = b"\x03"  # BURNED | denom -> amount burned since the chain began (decimal ASCII)


def balance_key(addr: bytes, denom: str) -> bytes:
    return BALANCE + addr + denom.encode()


def supply_key(denom: str) -> bytes:
    return SUPPLY + denom.encode()
