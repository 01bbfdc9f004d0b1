"""Per-key rate limits: a token bucket per API key (or per client address when no keys are configured).

A bucket holds up to ``burst`` calls and refills at ``per_minute / 60`` calls
a second. A call that finds it empty is refused with 429 and a
``Retry-After`` header (whole seconds until one call's worth has refilled),
before anything is signed. ``per_minute = 0`` turns the limit off. Buckets
are in memory (a restarted gateway starts every key full) and bounded: the
least recently used are dropped past ``max_keys``.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000
    ) -> None:
        if per_minute < 0 or burst < 1:
            raise ValueError("per_minute must be >= 0 and burst >= 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """0.0 when the call may go ahead (one token taken), else the seconds until it may."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait


def retry_after(wait_s: float) -> str:
    """The Retry-After header's value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
