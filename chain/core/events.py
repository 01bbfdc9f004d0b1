"""Typed events, emitted by handlers and returned to CometBFT in tx results."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    type: str
    attributes: tuple[tuple[str, str], ...]

    @staticmethod
    def of(type_: str, **attrs: object) -> Event:
        """Attributes keep their keyword order (deterministic); values become strings."""
        return Event(type_, tuple((k, str(v)) for k, v in attrs.items()))


# (event type) -> attribute keys CometBFT should index (searchable with
# tx_search / subscribe). Indexing every attribute costs CometBFT a lot of CPU
# and disk per tx; modules declare the keys users actually search by. The
# flag never enters consensus (only code, data and gas reach the block hash).
_INDEXED: dict[str, frozenset[str]] = {}


def index_keys(event_type: str, *keys: str) -> None:
    """Declare which attributes of `event_type` are indexed (called at import by modules)."""
    _INDEXED[event_type] = _INDEXED.get(event_type, frozenset()) | frozenset(keys)


def is_indexed(event_type: str, key: str) -> bool:
    return key in _INDEXED.get(event_type, frozenset())


@dataclass
class EventManager:
    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def extend(self, events: list[Event]) -> None:
        self.events.extend(events)
