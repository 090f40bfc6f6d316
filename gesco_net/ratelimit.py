"""Per-client token buckets: the sender's ``POST /transmit``, the receiver's REST API and
both gRPC servers (:class:`GrpcRateLimitInterceptor`).

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

import grpc


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


def peer_host(peer: str) -> str:
    """The address part of a gRPC peer string (``"ipv4:127.0.0.1:5000"`` -> ``"127.0.0.1"``)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":  # "ipv6:[::1]:5000"
        return rest.rsplit(":", 1)[0].strip("[]")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    return peer  # unix sockets and the like: one client


class GrpcRateLimitInterceptor(grpc.ServerInterceptor):
    """Token buckets on a gRPC server's calls (health checks exempt): ``RESOURCE_EXHAUSTED`` past the limit.

    The client is the caller's API-key identity (metadata ``authorization``, keys on) or the
    peer's IP address. The callers of the channel and the receiver are services (the sender,
    the channel), so the limit caps what one caller process may push, not one end user.

    Args:
        limiter: the buckets.
        identify: bearer token (or ``None``) -> identity, or ``None`` (keys off / unknown).
    """

    def __init__(self, limiter: RateLimiter, identify: Callable[[str | None], str | None] = lambda _t: None) -> None:
        self.limiter = limiter
        self.identify = identify

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or handler.unary_unary is None or method.startswith("/grpc.health."):
            return handler
        md = dict(handler_call_details.invocation_metadata or ())
        token = md.get("authorization")
        identity = self.identify(token.split(" ", 1)[-1] if token else None)
        inner, limiter = handler.unary_unary, self.limiter

        def limited(request, context):
            wait = limiter.take(identity or peer_host(context.peer() or ""))
            if wait is not None:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"rate limit of {limiter.rate:g} calls per second (bursts of {limiter.burst}) "
                              f"reached; retry after {wait:.2f} s")
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(limited, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


def grpc_rate_limit(per_s: float, burst: int, keys=None) -> tuple[GrpcRateLimitInterceptor, ...]:
    """The interceptors of a gRPC server's rate limit: none when ``per_s`` is 0.

    ``keys``: the server's :class:`gesco_net.auth.ApiKeys` (callers keyed by identity when enabled).
    """
    if per_s <= 0:
        return ()
    identify = keys.identify if keys is not None and keys.enabled else (lambda _t: None)
    return (GrpcRateLimitInterceptor(RateLimiter(per_s, burst), identify),)
