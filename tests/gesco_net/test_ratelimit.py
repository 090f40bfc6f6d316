"""Token buckets: burst, refill rate, Retry-After, per-client independence, bounded table."""

from __future__ import annotations

import pytest

from gesco_net.ratelimit import RateLimiter, retry_after_header


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


def test_peer_host_drops_the_port():
    from gesco_net.ratelimit import peer_host

    assert peer_host("ipv4:127.0.0.1:5000") == "127.0.0.1"
    assert peer_host("ipv6:[::1]:5000") == "::1"
    assert peer_host("unix:/tmp/s") == "unix:/tmp/s"


def test_rest_api_limit_covers_every_request_but_the_open_endpoints():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from gesco_net.auth import GuardConfig, HttpGuard

    app = FastAPI()

    @app.get("/results")
    def results() -> dict:
        return {}

    @app.get("/healthz")
    def healthz() -> dict:
        return {}

    app.add_middleware(HttpGuard, config=GuardConfig(rate_limiter=RateLimiter(1.0, 2, clock=Clock()),
                                                     rate_limit_all=True))
    with TestClient(app) as c:
        assert [c.get("/results").status_code for _ in range(3)] == [200, 200, 429]
        assert c.get("/results").headers["retry-after"] == "1"
        assert {c.get("/healthz").status_code for _ in range(5)} == {200}  # probes are never limited


def test_grpc_calls_beyond_the_limit_get_resource_exhausted():
    import grpc

    from gesco.wire import DeliverAck, ReceivedFrame
    from gesco_net.grpc_kit import make_server, set_serving, tolerant_unary
    from gesco_net.probes import grpc_health
    from gesco_net.ratelimit import grpc_rate_limit

    assert grpc_rate_limit(0, 10) == ()  # 0 = off
    server, health, port = make_server(
        "gesco.v1.Receiver", {"Deliver": tolerant_unary(lambda r, c: DeliverAck(id="ok"), ReceivedFrame, DeliverAck)},
        "127.0.0.1:0", interceptors=grpc_rate_limit(0.001, 2))
    server.start()
    set_serving(health, "gesco.v1.Receiver")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            call = ch.unary_unary("/gesco.v1.Receiver/Deliver", request_serializer=ReceivedFrame.SerializeToString,
                                  response_deserializer=DeliverAck.FromString)
            assert [call(ReceivedFrame(), timeout=10).id for _ in range(2)] == ["ok", "ok"]
            with pytest.raises(grpc.RpcError) as err:
                call(ReceivedFrame(), timeout=10)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "rate limit" in err.value.details()
        assert grpc_health(f"127.0.0.1:{port}", timeout=5) == "SERVING"  # health checks are not limited
    finally:
        server.stop(None)
