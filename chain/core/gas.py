"""The deterministic gas meter and the gas-charging store wrapper."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from chain.core.errors import ErrOutOfGas
from chain.core.store import KVStore


@dataclass(frozen=True)
class GasSchedule:
    """Gas prices of store operations (from the auth module's params)."""

    read_flat: int = 1000
    read_per_byte: int = 3
    write_flat: int = 2000
    write_per_byte: int = 30
    iter_next_flat: int = 30
    delete: int = 1000


class GasMeter:
    """Counts gas; raises ErrOutOfGas once consumption passes the limit."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.consumed = 0

    def consume(self, amount: int, what: str) -> None:
        self.consumed += amount
        if self.limit is not None and self.consumed > self.limit:
            raise ErrOutOfGas.wrap(f"{what}: gas wanted {self.limit}, used {self.consumed}")

    def used(self) -> int:
        """Gas used as reported in the tx result (capped at the limit)."""
        return self.consumed if self.limit is None else min(self.consumed, self.limit)


class GasKVStore:
    """Charges the meter for every operation on the wrapped store."""

    def __init__(self, parent: KVStore, meter: GasMeter, schedule: GasSchedule) -> None:
        self.parent = parent
        self.meter = meter
        self.s = schedule

    def get(self, key: bytes) -> bytes | None:
        v = self.parent.get(key)
        self.meter.consume(self.s.read_flat + self.s.read_per_byte * (len(key) + len(v or b"")), "read")
        return v

    def set(self, key: bytes, value: bytes) -> None:
        self.meter.consume(self.s.write_flat + self.s.write_per_byte * (len(key) + len(value)), "write")
        self.parent.set(key, value)

    def delete(self, key: bytes) -> None:
        self.meter.consume(self.s.delete, "delete")
        self.parent.delete(key)

    def iterate(
        self, start: bytes = b"", end: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        for k, v in self.parent.iterate(start, end, reverse):
            self.meter.consume(self.s.iter_next_flat + self.s.read_per_byte * (len(k) + len(v)), "iterate")
            yield k, v
