"""Settings of the channel service (environment variables ``GESCO_CHANNEL_<FIELD>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gesco.wire import gesco_pb2 as pb
from gesco.wire.bounds import grpc_message_limit
from gesco.wire.limits import DEFAULT_MAX_FRAME_ELEMENTS, FrameLimits
from gesco_net.grpc_kit import (
    DEFAULT_MAX_CONCURRENT_CALLS,
    DEFAULT_MAX_RECONNECT_BACKOFF_MS,
    DEFAULT_RECONNECT_BACKOFF_MS,
)


class ChannelSettings(BaseSettings):
    """Where the channel listens, where the receiver is, where the budget log goes."""

    model_config = SettingsConfigDict(env_prefix="GESCO_CHANNEL_")

    host: str = Field("127.0.0.1", description="Interface of the gRPC server ('0.0.0.0' for all).")
    port: int = Field(8001, ge=0, le=65535, description="gRPC port (0 = any free port).")
    receiver_address: str = Field("127.0.0.1:8003", description="host:port of the receiver's gRPC server, or a gRPC "
                                  "target naming several replicas: dns:///receiver:8003 (every address the name "
                                  "resolves to), ipv4:10.0.0.1:8003,10.0.0.2:8003.")
    receiver_balancing: Literal["round_robin", "pick_first"] = Field(
        "round_robin", description="How calls spread over the receiver replicas (gRPC load-balancing policy).")
    receiver_attempts: int = Field(3, ge=1, le=5, description="Calls of Receiver.Deliver per frame: a call answered "
                                   "UNAVAILABLE (a replica stopping, the store restarting) is retried on the next "
                                   "replica this many times in all (1 = no retry).")
    receiver_timeout_s: float = Field(10.0, gt=0, description="Deadline of Receiver.Deliver, in seconds.")
    budget_log: Path = Field(Path("gesco-data/budget.jsonl"), description="Bit-budget log (JSON lines), appended to.")
    reconnect_backoff_ms: int = Field(
        DEFAULT_RECONNECT_BACKOFF_MS, ge=1, description="First wait before reconnecting to a restarted receiver, ms."
    )
    max_reconnect_backoff_ms: int = Field(
        DEFAULT_MAX_RECONNECT_BACKOFF_MS, ge=1, description="Longest wait between reconnection attempts, ms."
    )
    max_frame_elements: int = Field(
        DEFAULT_MAX_FRAME_ELEMENTS, ge=1, description="Most map elements N * H * W a frame may declare "
        "(checked before the payload is decoded)."
    )
    height: int = Field(0, ge=0, le=4096, description="Height frames must declare (the receiver model's); 0 = any.")
    width: int = Field(0, ge=0, le=4096, description="Width frames must declare; 0 = any.")
    max_workers: int = Field(8, ge=1, description="gRPC worker threads.")
    max_message_bytes: int | None = Field(
        None, ge=1024, description="Largest gRPC message, in bytes (unset: the largest valid frame under "
        "max_frame_elements, with a 25% margin: gesco.wire.bounds.grpc_message_limit)."
    )
    max_concurrent_calls: int = Field(
        DEFAULT_MAX_CONCURRENT_CALLS, ge=1, description="Calls handled at once; one more gets RESOURCE_EXHAUSTED."
    )
    torch_threads: int = Field(1, ge=0, description="torch intra-op threads (0 = torch's default).")
    # access control, TLS, metrics (docs/security.md)
    grpc_api_keys: str = Field("", description="Comma-separated keys the sender must send on Channel.Transmit.")
    grpc_api_keys_file: Path | None = Field(None, description="File of gRPC keys, one per line.")
    receiver_api_key: str | None = Field(None, description="Key this channel sends to the receiver's gRPC server.")
    receiver_api_key_file: Path | None = Field(None, description="File holding receiver_api_key.")
    tls_cert: Path | None = Field(None, description="Certificate (PEM) of the gRPC TLS server, with tls_key.")
    tls_key: Path | None = Field(None, description="Private key (PEM) of the gRPC TLS server.")
    grpc_client_ca: Path | None = Field(None, description="CA (PEM) whose client certificates the gRPC server "
                                        "requires (mutual TLS, with tls_cert); unset: no client certificate needed.")
    receiver_tls_cert: Path | None = Field(None, description="Client certificate (PEM) presented to the receiver "
                                           "(mutual TLS), with receiver_tls_key and receiver_tls_ca.")
    receiver_tls_key: Path | None = Field(None, description="Private key (PEM) of receiver_tls_cert.")
    receiver_tls_ca: Path | None = Field(None, description="CA certificate (PEM) of the receiver's TLS server: "
                                         "set it to talk TLS to the receiver.")
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Port of the Prometheus /metrics HTTP "
                                     "server (unset: none).")
    metrics_host: str = Field("127.0.0.1", description="Interface of the metrics server.")
    grpc_rate_limit_per_s: float = Field(200.0, ge=0, description="gRPC calls per second per caller (key identity, "
                                         "else IP address); beyond it RESOURCE_EXHAUSTED; 0 = no limit.")
    grpc_rate_limit_burst: int = Field(400, ge=1, description="gRPC calls a caller may make at once.")
    published_on: str = Field("", description="Address the container runtime publishes this service's ports on "
                              "('none': not published); loopback or 'none' silences the 0.0.0.0-without-keys warning.")
    log_json: bool = Field(False, description="Log one JSON object per line, with the job id (docs/security.md).")
    log_level: str = Field("INFO", description="Python logging level.")

    def server_message_bytes(self) -> int:
        """gRPC message limit of the server (receives ``SemanticFrame``)."""
        return self.max_message_bytes or grpc_message_limit(pb.SemanticFrame.DESCRIPTOR, self.max_frame_elements)

    def receiver_message_bytes(self) -> int:
        """gRPC message limit of the client to the receiver (sends ``ReceivedFrame``)."""
        return self.max_message_bytes or grpc_message_limit(pb.ReceivedFrame.DESCRIPTOR, self.max_frame_elements)

    def frame_limits(self) -> FrameLimits:
        """The declared-size limits of incoming frames."""
        resolution = (self.height, self.width) if self.height and self.width else None
        return FrameLimits(max_elements=self.max_frame_elements, resolution=resolution)
