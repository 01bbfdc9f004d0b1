"""The execution context handed to every handler: store branch, block, gas, events."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from chain.core.consensus import Evidence, Vote
from chain.core.events import Event, EventManager
from chain.core.gas import GasKVStore, GasMeter, GasSchedule
from chain.core.store import CacheStore, KVStore, PrefixStore


class ExecMode(enum.Enum):
    GENESIS = "genesis"
    CHECK = "check"
    RECHECK = "recheck"
    SIMULATE = "simulate"
    FINALIZE = "finalize"
    QUERY = "query"


@dataclass(frozen=True)
class BlockHeader:
    """What a handler may know about the block: the only source of time and randomness."""

    chain_id: str
    height: int
    time_ns: int = 0
    hash: bytes = b""
    proposer: bytes = b""
    votes: tuple[Vote, ...] = ()  # the decided last commit (who signed block height-1)
    misbehavior: tuple[Evidence, ...] = ()


@dataclass
class Context:
    store: KVStore
    header: BlockHeader
    mode: ExecMode
    gas: GasMeter = field(default_factory=lambda: GasMeter(None))
    gas_schedule: GasSchedule = field(default_factory=GasSchedule)
    events: EventManager = field(default_factory=EventManager)
    _views: dict[bytes, PrefixStore[GasKVStore]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def kv(self, namespace: bytes) -> KVStore:
        """A module's gas-metered view of its own namespace (built once per context)."""
        v = self._views.get(namespace)
        if v is None or v.parent.meter is not self.gas or v.parent.s is not self.gas_schedule:
            v = self._views[namespace] = PrefixStore(GasKVStore(self.store, self.gas, self.gas_schedule), namespace)
        return v

    def branch(self) -> tuple[Context, CacheStore]:
        """A child context writing to a new branch; `cache.write()` keeps its writes."""
        cache = CacheStore(self.store)
        return Context(cache, self.header, self.mode, self.gas, self.gas_schedule, EventManager()), cache

    def emit(self, event: Event) -> None:
        self.events.emit(event)

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def chain_id(self) -> str:
        return self.header.chain_id
