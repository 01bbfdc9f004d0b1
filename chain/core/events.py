"""Typed events, emitted by handlers and returned to CometBFT in tx results."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    type: str
    attributes: tuple[tuple[str, str], ...]

    @staticmethod
    def of(type_: str, **attrs: object) -> "Event":
        """Attributes keep their keyword order (deterministic); values become strings."""
        return Event(type_, tuple((k, str(v)) for k, v in attrs.items()))


@dataclass
class EventManager:
    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def extend(self, events: list[Event]) -> None:
        self.events.extend(events)
