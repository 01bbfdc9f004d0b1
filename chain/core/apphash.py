"""The app hash: an incremental multiset hash over every (key, value) in state.

H(state) = sha256( sum over entries of XOF(len(k) || k || v)  mod 2^16384 )

This is AdHash (Bellare-Micciancio) with a 2048-byte element hash, large
enough that finding two states with the same sum is out of reach. It commits
to the whole state (not its history): the same state gives the same hash in
every process and after export -> import, and a block's update costs one
element hash per changed key instead of a pass over the whole state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

ELEMENT_BYTES = 2048
MODULUS = 1 << (8 * ELEMENT_BYTES)


def element(key: bytes, value: bytes) -> int:
    h = hashlib.shake_256(len(key).to_bytes(4, "big") + key + value).digest(ELEMENT_BYTES)
    return int.from_bytes(h, "big")


class StateAccumulator:
    """The running sum; `apply` folds in a block's changes given the old values."""

    def __init__(self, acc: int = 0) -> None:
        self.acc = acc % MODULUS

    @staticmethod
    def of_items(items: Iterable[tuple[bytes, bytes]]) -> StateAccumulator:
        s = StateAccumulator()
        for k, v in items:
            s.acc = (s.acc + element(k, v)) % MODULUS
        return s

    def apply(self, changes: Iterable[tuple[bytes, bytes | None, bytes | None]]) -> StateAccumulator:
        """New accumulator after (key, old value or None, new value or None) changes."""
        acc = self.acc
        for k, old, new in changes:
            if old == new:
                continue
            if old is not None:
                acc -= element(k, old)
            if new is not None:
                acc += element(k, new)
        return StateAccumulator(acc)

    def to_bytes(self) -> bytes:
        return self.acc.to_bytes(ELEMENT_BYTES, "big")

    @staticmethod
    def from_bytes(b: bytes) -> StateAccumulator:
        return StateAccumulator(int.from_bytes(b, "big"))

    def app_hash(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()
