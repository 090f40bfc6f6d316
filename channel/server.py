"""The channel's gRPC server: ``Channel.Transmit`` plus health checking."""

from __future__ import annotations

import logging
import threading
import time

import grpc

from channel.budget_log import BudgetLog
from channel.settings import ChannelSettings
from gesco.link import apply_channel, budget_record
from gesco.wire import ACK_ACCEPTED, DeliverAck, SemanticFrame, TransmitAck
from gesco_net import auth, gesco_pb2_grpc, tls
from gesco_net.grpc_kit import (
    CHANNEL_SERVICE,
    RECEIVER_SERVICE,
    abort,
    balanced_service_config,
    make_server,
    set_serving,
    tolerant_unary,
)
from gesco_net.logs import job_context
from gesco_net.metrics import GrpcMetricsInterceptor, ServiceMetrics, start_metrics_server
from gesco_net.ratelimit import grpc_rate_limit

log = logging.getLogger("gesco.channel")


class ChannelService:
    """What ``Channel.Transmit`` does (see the package docstring).

    Args:
        settings: the service settings.
        receiver: a ``ReceiverStub`` (or anything with ``Deliver(request, timeout=)``).
        budget_log: where accepted transmissions are logged.
        metrics: stage latencies and bits (a fresh registry by default).
        receiver_key: API key sent to the receiver (its gRPC server with keys on).
    """

    def __init__(self, settings: ChannelSettings, receiver: gesco_pb2_grpc.ReceiverStub, budget_log: BudgetLog,
                 metrics: ServiceMetrics | None = None, receiver_key: str | None = None) -> None:
        self.settings = settings
        self.receiver = receiver
        self.budget_log = budget_log
        self.metrics = metrics or ServiceMetrics("channel")
        self.receiver_key = receiver_key
        self.limits = settings.frame_limits()

    def transmit(self, frame: SemanticFrame, context: grpc.ServicerContext) -> TransmitAck:
        with job_context(frame.id or None):  # log lines of this call carry the job id
            return self._transmit(frame, context)

    def _transmit(self, frame: SemanticFrame, context: grpc.ServicerContext) -> TransmitAck:
        owner = auth.owner_from_metadata(context)  # the sender's client, passed on to the receiver
        # GescoInputError (bad frame, corrupt payload, bad PSNR / preset) -> INVALID_ARGUMENT
        t0 = time.perf_counter()
        received = apply_channel(frame, limits=self.limits)
        self.metrics.stage_seconds.labels("channel").observe(time.perf_counter() - t0)
        timeout = self.settings.receiver_timeout_s
        remaining = context.time_remaining()
        if remaining is not None:
            timeout = max(0.001, min(timeout, remaining))
        try:
            t0 = time.perf_counter()
            ack: DeliverAck = self.receiver.Deliver(received, timeout=timeout,
                                                    metadata=auth.bearer_metadata(self.receiver_key, owner))
            self.metrics.stage_seconds.labels("deliver").observe(time.perf_counter() - t0)
        except grpc.RpcError as e:
            code, detail = e.code(), e.details()
            where = f"receiver at {self.settings.receiver_address}"
            log.warning("frame %s not delivered: %s %s", frame.id, code.name, detail)
            if code == grpc.StatusCode.UNAVAILABLE:
                abort(context, grpc.StatusCode.UNAVAILABLE, f"{where} is unavailable: {detail}")
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, f"{where} did not acknowledge within {timeout:.1f} s")
            if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.RESOURCE_EXHAUSTED,
                        grpc.StatusCode.PERMISSION_DENIED):
                abort(context, code, f"{where} refused the frame: {detail}")
            abort(context, grpc.StatusCode.UNAVAILABLE, f"{where} failed ({code.name}): {detail}")
        if ack.status != ACK_ACCEPTED:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"receiver rejected the frame: {ack.message}")
        record = budget_record(frame, received.report)
        # one line per id: a retry of a transmission the receiver had stored already
        # ("already stored") writes the line if the first attempt did not get to it
        if not self.budget_log.append_once(record):
            log.info("frame %s: repeated transmission, the budget log has its line already", frame.id)
            return TransmitAck(id=frame.id, status=ACK_ACCEPTED, message="delivered (repeated)", report=received.report)
        self.metrics.count_transmission(record["payload_bits"], record["header_bits"], record["channel_uses"])
        log.info(
            "frame %s: %d + %d bits, %d channel uses, PSNR %.1f dB (measured %.2f), %s",
            frame.id, record["payload_bits"], record["header_bits"], record["channel_uses"],
            record["psnr_db"], received.report.measured_snr_db, record["channel"],
        )
        return TransmitAck(id=frame.id, status=ACK_ACCEPTED, message="delivered", report=received.report)


class ChannelServer:
    """The running gRPC server (built by :func:`create_server`).

    Attributes:
        port: the bound port (useful with ``settings.port = 0``).
        address: ``host:port``.
    """

    def __init__(self, settings: ChannelSettings, receiver_channel: grpc.Channel | None = None) -> None:
        self.settings = settings
        keys = auth.ApiKeys(auth.read_keys(settings.grpc_api_keys, settings.grpc_api_keys_file))
        tls_on = tls.check_pair(settings.tls_cert, settings.tls_key, "channel gRPC server")
        self._own_channel = receiver_channel is None
        self._receiver_channel = receiver_channel or tls.client_channel(
            settings.receiver_address, settings.receiver_message_bytes(), settings.receiver_tls_ca,
            settings.reconnect_backoff_ms, settings.max_reconnect_backoff_ms,
            client_cert=settings.receiver_tls_cert, client_key=settings.receiver_tls_key,
            service_config=balanced_service_config(RECEIVER_SERVICE, "Deliver", settings.receiver_attempts,
                                                   settings.receiver_balancing),
        )
        self.metrics = ServiceMetrics("channel")
        self.service = ChannelService(
            settings, gesco_pb2_grpc.ReceiverStub(self._receiver_channel), BudgetLog(settings.budget_log),
            metrics=self.metrics,
            receiver_key=auth.read_secret(settings.receiver_api_key, settings.receiver_api_key_file),
        )
        methods = {"Transmit": tolerant_unary(self.service.transmit, SemanticFrame, TransmitAck,
                                              bounds=self.service.limits.bounds)}
        self.server, self.health, self.port = make_server(
            CHANNEL_SERVICE,
            methods,
            f"{settings.host}:{settings.port}",
            max_workers=settings.max_workers,
            max_message_bytes=settings.server_message_bytes(),
            max_concurrent_calls=settings.max_concurrent_calls,
            interceptors=(GrpcMetricsInterceptor(self.metrics), auth.GrpcKeyInterceptor(keys),
                          *grpc_rate_limit(settings.grpc_rate_limit_per_s, settings.grpc_rate_limit_burst, keys)),
            credentials=(tls.server_credentials(settings.tls_cert, settings.tls_key, settings.grpc_client_ca)
                         if tls_on else None),
        )
        self.address = f"{settings.host}:{self.port}"
        self.metrics_server = None
        self.metrics_port: int | None = None
        self._stopped = threading.Event()

    def start(self) -> ChannelServer:
        if self.settings.metrics_port is not None:
            self.metrics_server, _thread = start_metrics_server(self.metrics, self.settings.metrics_port,
                                                                self.settings.metrics_host)
            self.metrics_port = self.metrics_server.server_port
            log.info("channel metrics on http://%s:%d/metrics", self.settings.metrics_host, self.metrics_port)
        self.server.start()
        set_serving(self.health, CHANNEL_SERVICE, True)
        log.info("channel listening on %s, forwarding to %s, budget log %s",
                 self.address, self.settings.receiver_address, self.settings.budget_log)
        return self

    def stop(self, grace: float | None = 5.0) -> None:
        """Refuse new calls, let running ones finish for ``grace`` seconds, close the client."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        set_serving(self.health, CHANNEL_SERVICE, False)
        self.server.stop(grace).wait()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        if self._own_channel:
            self._receiver_channel.close()

    def wait(self) -> None:
        self.server.wait_for_termination()


def create_server(settings: ChannelSettings, receiver_channel: grpc.Channel | None = None) -> ChannelServer:
    """Build the channel server (not started).

    Args:
        settings: :class:`ChannelSettings`.
        receiver_channel: gRPC channel to the receiver (default: one to
            ``settings.receiver_address``); tests pass their own to inject faults.
    """
    return ChannelServer(settings, receiver_channel)
