"""Settings of the sender service (environment variables ``GESCO_SENDER_<FIELD>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gesco.data.aspect import DEFAULT_ASPECT
from gesco.link import DEFAULT_JPEG_QUALITY, DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_PIXELS
from gesco.segment.domain import DEFAULT_DOMAIN_THRESHOLD
from gesco_net.grpc_kit import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_RECONNECT_BACKOFF_MS,
    DEFAULT_RECONNECT_BACKOFF_MS,
)
from gesco_net.slow_requests import DEFAULT_BODY_TIMEOUT_S, DEFAULT_HEADER_TIMEOUT_S


class SenderSettings(BaseSettings):
    """Where the sender listens, where the channel and the receiver are, what it accepts."""

    model_config = SettingsConfigDict(env_prefix="GESCO_SENDER_")

    host: str = Field("127.0.0.1", description="Interface of the HTTP server ('0.0.0.0' for all).")
    port: int = Field(8000, ge=0, le=65535, description="HTTP port.")
    channel_address: str = Field("127.0.0.1:8001", description="host:port of the channel's gRPC server.")
    channel_timeout_s: float = Field(30.0, gt=0, description="Deadline of Channel.Transmit (includes the receiver's ack).")
    receiver_url: str = Field(
        "http://127.0.0.1:8002", description="Base URL of the receiver's REST API as clients reach it (for result links)."
    )
    class_space: str = Field("cityscapes", description="Class space of the receiver's model.")
    height: int = Field(64, ge=8, le=4096, description="Height of the receiver model's images; uploads are resized to it.")
    width: int = Field(128, ge=8, le=4096, description="Width of the receiver model's images.")
    segmenter: str | None = Field(
        None, description="Segmenter checkpoint used when no label map is uploaded (default: the shipped one)."
    )
    aspect: Literal["crop", "letterbox", "stretch"] = Field(
        DEFAULT_ASPECT, description="How an upload of another aspect ratio than the model's is fitted: 'crop' "
        "(centre crop), 'letterbox' (scaled to fit, black bars / label 0) or 'stretch'; reported in every reply.",
    )
    domain_threshold: float = Field(
        DEFAULT_DOMAIN_THRESHOLD, ge=0.0, le=1.0, description="A segmented upload whose mean segmenter confidence "
        "(max-softmax) is below this is flagged out of domain in the reply and the result (still transmitted).",
    )
    derive_edges: bool = Field(
        True, description="An upload without an instance map gets one derived from its label map (connected "
        "components of the thing classes) so that an instance-edge map is sent; false sends none. The reply and "
        "the result say which ('upload.edges': uploaded / derived / none).",
    )
    instance_ids: Literal["full", "8bit"] = Field(
        "full", description="How an uploaded instance map is read before its edge map is made: 'full' ids, or "
        "'8bit' as the authors' data loader (ids clipped to 255, so touching instances of thing classes get no edge "
        "between them), which their imported weights expect. `gesco up` sets it from the checkpoint's card.",
    )
    load_segmenter: bool = Field(True, description="Load the segmenter at start-up (otherwise uploads need a label map).")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest accepted file, in bytes (HTTP 413 above).")
    max_image_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=64, description="Largest accepted image, in pixels (HTTP 413 above).")
    max_decoded_bytes: int = Field(
        DEFAULT_MAX_DECODED_BYTES, ge=1024, description="Largest decoded size of one uploaded file, in bytes "
        "(pixels x stored channels x bytes per sample + the 8-bit copy; from the header, before decoding; HTTP 413 above)."
    )
    max_concurrent_encodes: int = Field(2, ge=1, description="Most uploads decoded / segmented / encoded at once.")
    encode_wait_s: float = Field(10.0, gt=0, description="How long an upload waits for an encode slot before 503.")
    retry_after_s: int = Field(5, ge=1, description="Retry-After of the 503 replies (sender busy, receiver queue full).")
    reconnect_backoff_ms: int = Field(
        DEFAULT_RECONNECT_BACKOFF_MS, ge=1, description="First wait before reconnecting to a restarted channel, ms."
    )
    max_reconnect_backoff_ms: int = Field(
        DEFAULT_MAX_RECONNECT_BACKOFF_MS, ge=1, description="Longest wait between reconnection attempts, ms."
    )
    jpeg_quality: int = Field(DEFAULT_JPEG_QUALITY, ge=1, le=100, description="JPEG quality of the budget's JPEG reference.")
    max_message_bytes: int = Field(DEFAULT_MAX_MESSAGE_BYTES, ge=1024, description="Largest gRPC message, in bytes.")
    torch_threads: int = Field(1, ge=0, description="torch intra-op threads (0 = torch's default).")
    # access control, TLS, limits (docs/security.md)
    api_keys: str = Field("", description="Comma-separated API keys clients must send as 'Authorization: Bearer <key>' "
                          "(empty, with api_keys_file unset: no key needed).")
    api_keys_file: Path | None = Field(None, description="File of API keys, one per line (e.g. a Docker secret).")
    channel_api_key: str | None = Field(None, description="Key this sender sends to the channel's gRPC server.")
    channel_api_key_file: Path | None = Field(None, description="File holding channel_api_key.")
    channel_tls_ca: Path | None = Field(None, description="CA certificate (PEM) of the channel's TLS server: "
                                        "set it to talk TLS to the channel.")
    channel_tls_cert: Path | None = Field(None, description="Client certificate (PEM) presented to the channel "
                                          "(mutual TLS), with channel_tls_key and channel_tls_ca.")
    channel_tls_key: Path | None = Field(None, description="Private key (PEM) of channel_tls_cert.")
    tls_cert: Path | None = Field(None, description="Certificate (PEM) of this HTTPS server (with tls_key).")
    tls_key: Path | None = Field(None, description="Private key (PEM) of this HTTPS server.")
    allowed_origins: str = Field("", description="Comma-separated browser origins allowed to POST besides this "
                                 "service's own loopback origin and the receiver_url's origin.")
    rate_limit_per_s: float = Field(10.0, ge=0, description="POST /transmit requests per second per client "
                                    "(API key, else IP address); 0 = no limit.")
    rate_limit_burst: int = Field(20, ge=1, description="Requests a client may make at once before the rate applies.")
    header_timeout_s: float = Field(
        DEFAULT_HEADER_TIMEOUT_S, gt=0, description="Deadline for a request's headers (slow clients get 408 "
        "and are disconnected; gesco_net.slow_requests)."
    )
    body_timeout_s: float = Field(
        DEFAULT_BODY_TIMEOUT_S, gt=0, description="Deadline for a request's body once its headers are in."
    )
    published_on: str = Field("", description="Address the container runtime publishes this service's ports on "
                              "('none': not published); loopback or 'none' silences the 0.0.0.0-without-keys warning.")
    log_json: bool = Field(False, description="Log one JSON object per line, with the job id (docs/security.md).")
    log_level: str = Field("INFO", description="Python logging level.")
