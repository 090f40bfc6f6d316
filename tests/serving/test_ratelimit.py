"""Token buckets: burst, refill rate, Retry-After, per-client independence, bounded table."""

from __future__ import annotations

import pytest

from gesco.serving.ratelimit import RateLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_refill_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    wait = limiter.take("a")
    assert wait == pytest.approx(0.5)  # one token takes 1 / rate seconds
    clock.t += 0.25
    assert limiter.take("a") == pytest.approx(0.25)  # a refused request does not reset the refill
    clock.t += 0.25
    assert limiter.take("a") is None
    clock.t += 100
    assert [limiter.take("a") for _ in range(4)][:3] == [None, None, None]  # refills to the burst, no more


def test_clients_are_independent_and_the_table_is_bounded():
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=3, clock=clock)
    assert limiter.take("a") is None and limiter.take("a") is not None
    assert limiter.take("b") is None
    for name in "cdef":
        limiter.take(name)
    assert len(limiter._buckets) == 3
    assert limiter.take("a") is None  # evicted: starts with a full bucket


def test_bad_settings_and_header():
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(rate=float("inf"), burst=1)
    with pytest.raises(ValueError):
        RateLimiter(rate=1, burst=0)
    assert retry_after_header(0.01) == "1" and retry_after_header(2.2) == "3"
