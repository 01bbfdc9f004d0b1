"""Key-value stores: the interface, an in-memory store, and the branch layer.

A `CacheStore` branches any store: reads fall through to the parent, writes
stay in the branch until `write()` pushes them down (or the branch is simply
dropped). Blocks and txs each run in their own branch, so a failed tx
discards its writes and FinalizeBlock never touches the durable store.
Iteration is always in byte order of the keys, merged across layers.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar


class KVStore(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def set(self, key: bytes, value: bytes) -> None: ...
    def delete(self, key: bytes) -> None: ...
    def iterate(
        self, start: bytes = b"", end: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Pairs with start <= key < end (end None = unbounded), in key order."""
        ...


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with prefix."""
    p = bytearray(prefix)
    while p:
        if p[-1] != 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return None


def _in_range(key: bytes, start: bytes, end: bytes | None) -> bool:
    return key >= start and (end is None or key < end)


class MemStore:
    """A sorted in-memory store (tests, simulations, genesis validation)."""

    def __init__(self, items: dict[bytes, bytes] | None = None) -> None:
        self._data: dict[bytes, bytes] = dict(items or {})
        self._keys: list[bytes] = sorted(self._data)

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        if key not in self._data:
            bisect.insort(self._keys, key)
        self._data[key] = value

    def delete(self, key: bytes) -> None:
        if key in self._data:
            del self._data[key]
            self._keys.pop(bisect.bisect_left(self._keys, key))

    def iterate(
        self, start: bytes = b"", end: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        lo = bisect.bisect_left(self._keys, start)
        hi = len(self._keys) if end is None else bisect.bisect_left(self._keys, end)
        keys = self._keys[lo:hi]
        for k in reversed(keys) if reverse else keys:
            yield k, self._data[k]

    def items(self) -> list[tuple[bytes, bytes]]:
        return [(k, self._data[k]) for k in self._keys]


class CacheStore:
    """A branch of a parent store; `write()` applies the branch to the parent."""

    def __init__(self, parent: KVStore) -> None:
        self.parent = parent
        self._dirty: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._dirty:
            return self._dirty[key]
        return self.parent.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        if not isinstance(key, bytes) or not isinstance(value, bytes):
            raise TypeError("store keys and values are bytes")
        self._dirty[key] = value

    def delete(self, key: bytes) -> None:
        self._dirty[key] = None

    def iterate(
        self, start: bytes = b"", end: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        mine = sorted((k for k in self._dirty if _in_range(k, start, end)), reverse=reverse)
        theirs = self.parent.iterate(start, end, reverse)
        i = 0
        nxt = next(theirs, None)
        before = operator.gt if reverse else operator.lt
        while nxt is not None or i < len(mine):
            if i < len(mine) and (nxt is None or not before(nxt[0], mine[i])):
                k = mine[i]
                i += 1
                if nxt is not None and nxt[0] == k:
                    nxt = next(theirs, None)
                v = self._dirty[k]
                if v is not None:
                    yield k, v
            else:
                assert nxt is not None
                yield nxt
                nxt = next(theirs, None)

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """This branch's writes in key order (None = deleted)."""
        return [(k, self._dirty[k]) for k in sorted(self._dirty)]

    def write(self) -> None:
        for k, v in self.changes():
            if v is None:
                self.parent.delete(k)
            else:
                self.parent.set(k, v)
        self._dirty.clear()

    def discard(self) -> None:
        self._dirty.clear()


P = TypeVar("P", bound=KVStore)


class PrefixStore(Generic[P]):
    """A view of the keys under one prefix (each module owns one).

    Generic in the parent's type so a holder can still reach the parent's own
    attributes (the context checks which gas meter its cached views charge).
    """

    def __init__(self, parent: P, prefix: bytes) -> None:
        self.parent = parent
        self.prefix = prefix

    def get(self, key: bytes) -> bytes | None:
        return self.parent.get(self.prefix + key)

    def set(self, key: bytes, value: bytes) -> None:
        self.parent.set(self.prefix + key, value)

    def delete(self, key: bytes) -> None:
        self.parent.delete(self.prefix + key)

    def iterate(
        self, start: bytes = b"", end: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        p = self.prefix
        pend = prefix_end(p) if end is None else p + end
        n = len(p)
        for k, v in self.parent.iterate(p + start, pend, reverse):
            yield k[n:], v
