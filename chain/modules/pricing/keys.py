"""Store layout of the pricing module (one-byte prefixes inside its namespace).

Model ids use only `[A-Za-z0-9._:/-]` (never 0x00), so `model_id | 0x00` is
prefix-free. History keys carry the inverted height, so a model's history
iterates newest first; the BY_HEIGHT index iterates oldest first for pruning.
"""

from __future__ import annotations

NAMESPACE = b"pricing/"
PARAMS = b"\x00"
PRICE = b"\x01"  # PRICE | model_id -> ModelPrice (models whose price ever moved)
ABOVE_BASE = b"\x02"  # ABOVE_BASE | model_id -> b"" (models priced above their base: stepped every block)
DEMAND = b"\x03"  # DEMAND | model_id -> tokens requested in the current block (8 BE; gone by its end)
HISTORY = b"\x04"  # HISTORY | model_id | 0x00 | inverted height(8) -> PricePoint
BY_HEIGHT = b"\x05"  # BY_HEIGHT | height(8) | model_id -> b"" (what to prune once it leaves the window)

SEP = b"\x00"
PRESENT = b""
MAX_U64 = 2**64 - 1


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def price_key(model_id: str) -> bytes:
    return PRICE + model_id.encode()


def above_base_key(model_id: str) -> bytes:
    return ABOVE_BASE + model_id.encode()


def demand_key(model_id: str) -> bytes:
    return DEMAND + model_id.encode()


def history_prefix(model_id: str) -> bytes:
    return HISTORY + model_id.encode() + SEP


def history_key(model_id: str, height: int) -> bytes:
    return history_prefix(model_id) + u64(MAX_U64 - height)


def by_height_key(height: int, model_id: str) -> bytes:
    return BY_HEIGHT + u64(height) + model_id.encode()
