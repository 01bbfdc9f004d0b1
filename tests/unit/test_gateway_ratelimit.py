"""Per-key rate limits: the token bucket, and 429 with Retry-After over HTTP before anything is signed."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from gateway.dashboard.data import DashboardData
from gateway.ratelimit import RateLimiter, retry_after
from gateway.server import create_app
from tests.unit.test_gateway_service import CHAT, FakeChain, service


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_bucket_gives_its_burst_then_refills_at_the_rate_per_key() -> None:
    clock = Clock()
    rl = RateLimiter(60, 3, clock=clock)  # one call a second, three at once
    assert [rl.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.take("a") == pytest.approx(1.0)  # empty: one second to the next call
    assert rl.take("b") == 0.0  # another key has its own bucket
    clock.t += 0.5
    assert rl.take("a") == pytest.approx(0.5)
    clock.t += 0.5
    assert rl.take("a") == 0.0
    clock.t += 3600  # refills to the burst, never above
    assert [rl.take("a") for _ in range(4)][-1] > 0
    assert retry_after(0.2) == "1" and retry_after(1.01) == "2"
    assert not RateLimiter(0, 1).enabled and RateLimiter(0, 1).take("x") == 0.0
    with pytest.raises(ValueError):
        RateLimiter(10, 0)


def test_bounded_memory_drops_the_least_recently_used_keys() -> None:
    clock = Clock()
    rl = RateLimiter(60, 1, clock=clock, max_keys=2)
    rl.take("a")
    rl.take("b")
    rl.take("c")  # "a" is dropped and comes back full
    assert rl.take("a") == 0.0 and rl.take("c") > 0


def test_http_429_with_retry_after_in_openai_shape_and_nothing_signed(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = FakeChain()
    clock = Clock()
    app = create_app(service(chain), DashboardData(chain), api_keys=("sk-a", "sk-b"),
                     limiter=RateLimiter(60, 2, clock=clock))
    with TestClient(app, raise_server_exceptions=False) as http:
        a = {"Authorization": "Bearer sk-a"}
        assert [http.post("/v1/chat/completions", json=CHAT, headers=a).status_code for _ in range(2)] == [200, 200]
        r = http.post("/v1/chat/completions", json=CHAT, headers=a)
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "rate_limit_exceeded" and r.json()["error"]["type"] == "requests"
        sent = len(chain.sent)
        assert sent == 2  # the refused call signed nothing
        b = {"Authorization": "Bearer sk-b"}
        assert http.post("/v1/chat/completions", json=CHAT, headers=b).status_code == 200  # per key
        assert http.get("/v1/models", headers=a).status_code == 200  # only completions are limited
        clock.t += 1.0
        assert http.post("/v1/chat/completions", json=CHAT, headers=a).status_code == 200
        # a bad key is 401 before the limiter sees it
        assert http.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer x"}).status_code == 401
