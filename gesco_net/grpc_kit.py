"""gRPC plumbing shared by the channel and the receiver.

Handlers are registered with a *tolerant* request deserializer: grpcio would answer a
request that does not parse with ``INTERNAL`` ("Exception deserializing request!");
here the handler parses the bytes itself and answers ``INVALID_ARGUMENT`` naming the
message type; a message with unknown fields or a field over its bound
(:func:`gesco.wire.bounds.check_message_bounds`, run right after parsing, before the
handler logs or stores anything) and a :class:`~gesco.errors.GescoInputError` raised
while handling (an inconsistent frame) also become ``INVALID_ARGUMENT`` with their
message. The server keeps serving either way. Every status detail goes through
:func:`abort`, which caps it (:func:`gesco_net.capped.cap_text`), so the status code
is the cause's, never ``RESOURCE_EXHAUSTED`` for an over-long detail.

Servers cap their message size (sized by :func:`gesco.wire.bounds.grpc_message_limit`
from the hop's frame limits) and the number of calls in progress
(``maximum_concurrent_rpcs``: one more is refused with ``RESOURCE_EXHAUSTED`` before its
message is read).

Every service also registers the standard health service (``grpc.health.v1.Health``),
so ``grpc_health_probe`` and :func:`gesco_net.probes.grpc_health` work.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from concurrent import futures

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gesco.errors import GescoInputError, MissingExtraError
from gesco.wire import gesco_pb2
from gesco.wire.bounds import FieldBound, check_message_bounds
from gesco_net.capped import cap_text

log = logging.getLogger(__name__)

#: default limit on one gRPC message of the sender's client (the servers size theirs from
#: their frame limits: :func:`gesco.wire.bounds.grpc_message_limit`)
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: default cap on the calls a server handles at once (running + waiting for a worker)
DEFAULT_MAX_CONCURRENT_CALLS = 16

#: full gRPC names of the two gesco services
CHANNEL_SERVICE = gesco_pb2.DESCRIPTOR.services_by_name["Channel"].full_name
RECEIVER_SERVICE = gesco_pb2.DESCRIPTOR.services_by_name["Receiver"].full_name

Handler = Callable[[Message, grpc.ServicerContext], Message]


#: reconnect backoff of the clients (sender -> channel, channel -> receiver), ms: gRPC's
#: own defaults (1 s, growing 1.6x to 120 s) leave a client refusing calls for seconds
#: after its server came back; these bound the wait to about half a second
DEFAULT_RECONNECT_BACKOFF_MS = 100
DEFAULT_MAX_RECONNECT_BACKOFF_MS = 500


def channel_options(
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    reconnect_backoff_ms: int | None = None,
    max_reconnect_backoff_ms: int | None = None,
) -> list[tuple[str, int]]:
    """gRPC channel / server options with both message-size limits set.

    Args:
        max_message_bytes: largest message, both directions.
        reconnect_backoff_ms, max_reconnect_backoff_ms: a client's first and longest
            wait between reconnection attempts (``grpc.initial_reconnect_backoff_ms``,
            ``grpc.min_reconnect_backoff_ms``, ``grpc.max_reconnect_backoff_ms``);
            ``None`` keeps gRPC's default.
    """
    options = [
        ("grpc.max_send_message_length", int(max_message_bytes)),
        ("grpc.max_receive_message_length", int(max_message_bytes)),
    ]
    if reconnect_backoff_ms is not None:
        options += [("grpc.initial_reconnect_backoff_ms", int(reconnect_backoff_ms)),
                    ("grpc.min_reconnect_backoff_ms", int(reconnect_backoff_ms))]
    if max_reconnect_backoff_ms is not None:
        options.append(("grpc.max_reconnect_backoff_ms", int(max_reconnect_backoff_ms)))
    return options


def balanced_service_config(service: str, method: str, max_attempts: int = 3, policy: str = "round_robin") -> str:
    """A gRPC service config (JSON, the ``grpc.service_config`` channel option): spread the
    calls over every address the target resolves to (``round_robin``; ``pick_first`` keeps
    one), and retry ``service/method`` on ``UNAVAILABLE`` up to ``max_attempts`` calls in all
    (0.1 s backoff doubling to 1 s). Only for idempotent methods: ``Receiver.Deliver`` is
    (a repeated id with the same frame is acknowledged as already stored).

    With ``dns:///receiver:8003`` gRPC resolves every replica's address, connects to each,
    drops one that stops answering and takes it back once it answers again.
    """
    config: dict = {"loadBalancingConfig": [{policy: {}}]}
    if max_attempts > 1:
        config["methodConfig"] = [{
            "name": [{"service": service, "method": method}],
            "retryPolicy": {"maxAttempts": int(min(max_attempts, 5)), "initialBackoff": "0.1s", "maxBackoff": "1s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
        }]
    return json.dumps(config)


def server_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    """:func:`channel_options` plus ``grpc.so_reuseport = 0``.

    grpcio sets ``SO_REUSEPORT`` on its listening sockets by default, so a second server
    (a second ``gesco up``) could bind a port that one already serves and the kernel
    would split the connections between them. With the option off, binding a taken port
    fails (:func:`make_server` raises ``OSError``).
    """
    return channel_options(max_message_bytes) + [("grpc.so_reuseport", 0)]


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> None:
    """``context.abort`` with the details capped (:func:`gesco_net.capped.cap_text`).

    gRPC sends the details as a header; one longer than the peer's metadata limit (8 KiB
    by default) turns the call into ``RESOURCE_EXHAUSTED`` whatever ``code`` was.
    """
    context.abort(code, cap_text(details))


def tolerant_unary(handler: Handler, request_type: type[Message], response_type: type[Message],
                   bounds: Mapping[str, FieldBound] | None = None) -> grpc.RpcMethodHandler:
    """A unary method handler that maps bad input to ``INVALID_ARGUMENT``.

    Args:
        handler: ``(request message, context) -> response message``; may raise
            :class:`GescoInputError` (-> ``INVALID_ARGUMENT``), :class:`MissingExtraError`
            (a needed optional extra is not installed -> ``FAILED_PRECONDITION``) or call ``context.abort``.
        request_type, response_type: the protobuf message classes.
        bounds: field bounds checked on every request before ``handler`` runs
            (:func:`gesco.wire.bounds.check_message_bounds`; a hop's ``FrameLimits.bounds``).
    """
    name = request_type.DESCRIPTOR.name

    def call(data: bytes, context: grpc.ServicerContext) -> Message:
        try:
            request = request_type.FromString(data)
        except DecodeError as e:
            log.info("malformed %s (%d bytes): %s", name, len(data), e)
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"malformed {name}: the bytes do not parse ({e})")
        try:
            if bounds is not None:
                check_message_bounds(request, bounds)
            return handler(request, context)
        except GescoInputError as e:
            log.info("invalid %s: %s", name, e)
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"invalid {name}: {e}")
        except MissingExtraError as e:
            log.warning("cannot serve %s: %s", name, e)
            abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(e))

    return grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=lambda b: b, response_serializer=response_type.SerializeToString
    )


def make_server(
    service: str,
    methods: dict[str, grpc.RpcMethodHandler],
    address: str,
    max_workers: int = 8,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_concurrent_calls: int | None = DEFAULT_MAX_CONCURRENT_CALLS,
    interceptors: tuple[grpc.ServerInterceptor, ...] = (),
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[grpc.Server, health.HealthServicer, int]:
    """Build (not start) a server for one gesco service plus health checking.

    Args:
        service: full service name (:data:`CHANNEL_SERVICE` or :data:`RECEIVER_SERVICE`).
        methods: method name -> handler (:func:`tolerant_unary`).
        address: ``host:port`` to bind (port 0 picks a free port).
        max_message_bytes: largest message, both directions.
        max_concurrent_calls: calls handled at once (running or waiting for one of the
            ``max_workers`` threads); one more gets ``RESOURCE_EXHAUSTED`` (``None``: no cap).
        interceptors: server interceptors, outermost first (metrics, API keys:
            :mod:`gesco_net.metrics`, :mod:`gesco_net.auth`).
        credentials: TLS credentials (:func:`gesco_net.tls.server_credentials`);
            ``None`` serves plaintext.
    Returns:
        ``(server, health servicer, bound port)``; the health status of ``""`` and of
        ``service`` is ``NOT_SERVING`` until :func:`set_serving` is called.
    Raises:
        OSError: the address cannot be bound (in use: port reuse is off, :func:`server_options`).
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=service.rsplit(".", 1)[-1].lower()),
        options=server_options(max_message_bytes),
        interceptors=interceptors,
        maximum_concurrent_rpcs=max_concurrent_calls,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, methods),))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", service):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError as e:  # grpcio raises RuntimeError when it cannot bind
        raise OSError(f"cannot bind gRPC server to {address}: {e}") from None
    if port == 0:
        raise OSError(f"cannot bind gRPC server to {address}")
    return server, health_servicer, port


def set_serving(health_servicer: health.HealthServicer, service: str, serving: bool = True) -> None:
    """Report ``SERVING`` (or ``NOT_SERVING``) for ``""`` and ``service``."""
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", service):
        health_servicer.set(name, status)
