"""Per-client token buckets (the sender's ``POST /transmit`` rate limit).

A bucket holds at most ``burst`` tokens and refills at ``rate`` tokens per second; each
request takes one. With ``tokens(t) = min(burst, tokens(t0) + rate * (t - t0))``, a
request finding fewer than one token is refused and told to retry after
``(1 - tokens) / rate`` seconds (HTTP 429 with ``Retry-After``, rounded up to whole
seconds as the header requires).

The table of buckets is bounded (``max_clients``, least recently used evicted), so a
flood of distinct client addresses cannot grow memory without bound; an evicted client
starts again with a full bucket, which only ever errs towards letting a request in.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """Token buckets keyed by client (an API-key identity or an IP address).

    Args:
        rate: refill rate, tokens (requests) per second; must be > 0.
        burst: bucket size, the most requests a client may make at once (>= 1).
        max_clients: most buckets kept (least recently used dropped beyond).
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(self, rate: float, burst: int, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of requests per second, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.rate = float(rate)
        self.burst = int(burst)
        self.max_clients = int(max_clients)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, time)
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """Take one token for ``key``: ``None`` when allowed, else seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = None
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


def retry_after_header(wait_s: float) -> str:
    """``Retry-After`` value (whole seconds, at least 1) for a wait of ``wait_s`` seconds."""
    return str(max(1, math.ceil(wait_s)))
