"""Prometheus metrics of the services (``prometheus-client``).

Each service builds one :class:`ServiceMetrics` with its own registry (so that several
apps in one process, as in the tests, do not collide) and exposes it:

* the sender and the receiver at ``GET /metrics`` on their HTTP port (:func:`install_http`);
* the channel, which only speaks gRPC, on a small HTTP server of its own
  (``GESCO_CHANNEL_METRICS_PORT``, :func:`start_metrics_server`).

Metric families (``docs/security.md`` lists them with their labels):

* ``gesco_http_requests_total{method, route, status}``: HTTP requests by route template
  (unmatched paths are counted as route ``"unmatched"``, so that scanning random
  URLs cannot create unbounded label values);
* ``gesco_grpc_requests_total{method, code}``: gRPC calls by final status code;
* ``gesco_stage_seconds{stage}``: a histogram of each stage's latency (sender: decode,
  resize, segment, encode, reference, channel; channel: channel, deliver; receiver:
  queue_wait, fds, sampling, png, total);
* ``gesco_bits_sent_total{part}``: payload and header bits of accepted transmissions
  (sender and channel), ``gesco_channel_uses_total``;
* ``gesco_jobs{status}``: jobs in the receiver's store by status (``status="queued"``
  is the queue length).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import grpc

#: histogram buckets of stage latencies, seconds (1 ms .. 10 min)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                 300.0, 600.0)


class ServiceMetrics:
    """The metric families of one service, in a registry of their own.

    Args:
        service: name, for the ``gesco_service_info`` metric.
    """

    def __init__(self, service: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, Info

        from gesco import __version__

        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        Info("gesco_service", "Which gesco service this is.", registry=self.registry).info(
            {"service": service, "version": __version__})
        self.http_requests = Counter("gesco_http_requests", "HTTP requests by method, route template and status.",
                                     ["method", "route", "status"], registry=self.registry)
        self.grpc_requests = Counter("gesco_grpc_requests", "gRPC calls by method and final status code.",
                                     ["method", "code"], registry=self.registry)
        self.stage_seconds = Histogram("gesco_stage_seconds", "Latency of each processing stage, in seconds.",
                                       ["stage"], buckets=STAGE_BUCKETS, registry=self.registry)
        self.bits_sent = Counter("gesco_bits_sent", "Bits of accepted transmissions (payload and header).",
                                 ["part"], registry=self.registry)
        self.channel_uses = Counter("gesco_channel_uses", "Real channel symbols of accepted transmissions.",
                                    registry=self.registry)

    def observe_stages(self, timings: Mapping[str, float | None], names: Mapping[str, str]) -> None:
        """Observe ``timings[key]`` (seconds) as stage ``names[key]``; absent or ``None`` values are skipped."""
        for key, stage in names.items():
            value = timings.get(key)
            if isinstance(value, (int, float)) and value >= 0:
                self.stage_seconds.labels(stage).observe(float(value))

    def count_transmission(self, payload_bits: int, header_bits: int, channel_uses: int) -> None:
        """An accepted transmission: its bits and channel uses."""
        self.bits_sent.labels("payload").inc(int(payload_bits))
        self.bits_sent.labels("header").inc(int(header_bits))
        self.channel_uses.inc(int(channel_uses))

    def job_gauge(self, counts: Callable[[], Mapping[str, int]]) -> None:
        """``gesco_jobs{status}`` read from ``counts()`` at each scrape (the receiver's store)."""
        from prometheus_client.core import GaugeMetricFamily

        class _Jobs:
            def describe(self):
                return [GaugeMetricFamily("gesco_jobs", "Jobs in the store by status (queued = queue length).",
                                          labels=["status"])]

            def collect(self):
                family = GaugeMetricFamily("gesco_jobs", "Jobs in the store by status (queued = queue length).",
                                           labels=["status"])
                for status, n in counts().items():
                    family.add_metric([status], n)
                yield family

        self.registry.register(_Jobs())

    def exposition(self) -> tuple[bytes, str]:
        """The text format of every metric and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


#: HTTP methods counted under their own name; any other method name is counted as ``other``
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """ASGI middleware counting responses in ``gesco_http_requests_total`` (install it outermost)."""

    def __init__(self, app, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"  # clients cannot add series
            self.metrics.http_requests.labels(method, path, str(status[0])).inc()


def install_http(app, metrics: ServiceMetrics) -> None:
    """Add ``GET /metrics`` and the request counter to a FastAPI app."""
    from fastapi import Response

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    app.add_middleware(HttpMetrics, metrics=metrics)


class GrpcMetricsInterceptor(grpc.ServerInterceptor):
    """Counts unary gRPC calls by method and final status code (install it first)."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner, method, counter = handler.unary_unary, handler_call_details.method, self.metrics.grpc_requests

        def counted(request, context):
            try:
                reply = inner(request, context)
            except BaseException:
                code = context.code() or grpc.StatusCode.UNKNOWN
                counter.labels(method, code.name).inc()
                raise
            counter.labels(method, (context.code() or grpc.StatusCode.OK).name).inc()
            return reply

        return grpc.unary_unary_rpc_method_handler(counted, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


def start_metrics_server(metrics: ServiceMetrics, port: int, host: str = "127.0.0.1"):
    """Serve ``/metrics`` on ``host:port`` from a background thread; returns ``(server, thread)``.

    Raises:
        OSError: the port cannot be bound.
    """
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=metrics.registry)


class StageTimer:
    """``with timer("stage"): ...`` observes the block's wall time in ``gesco_stage_seconds``."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def __call__(self, stage: str):
        return _Timed(self.metrics, stage)


class _Timed:
    def __init__(self, metrics: ServiceMetrics, stage: str) -> None:
        self.metrics, self.stage = metrics, stage

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.metrics.stage_seconds.labels(self.stage).observe(time.perf_counter() - self.t0)
