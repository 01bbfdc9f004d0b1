"""Store layout of the rewards module (one-byte prefixes inside its namespace)."""

from __future__ import annotations

NAMESPACE = b"rewards/"
PARAMS = b"\x00"
TOTALS = b"\x01"  # -> Totals
INITIAL_SUPPLY = b"\x02"  # -> decimal string: the bond denom's supply before any emission
