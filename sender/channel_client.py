"""The sender's gRPC client of the channel service (``Channel.Transmit``)."""

from __future__ import annotations

from gesco.wire import SemanticFrame, TransmitAck
from gesco_net import auth, gesco_pb2_grpc, tls
from gesco_net.probes import grpc_health_on
from sender.settings import SenderSettings


class ChannelClient:
    """gRPC client of ``Channel.Transmit`` with the settings' deadline.

    Args:
        api_key: sent as ``authorization: Bearer`` metadata (channel with keys on).
        tls_ca: CA of the channel's TLS certificate (``None``: plaintext).
        tls_cert, tls_key: this client's certificate for a channel that requires one (mutual TLS).
        reconnect_backoff_ms, max_reconnect_backoff_ms: reconnection to a restarted channel
            (:func:`gesco_net.grpc_kit.channel_options`).
    """

    def __init__(self, address: str, timeout_s: float, max_message_bytes: int, api_key: str | None = None,
                 tls_ca=None, reconnect_backoff_ms: int | None = None, max_reconnect_backoff_ms: int | None = None,
                 tls_cert=None, tls_key=None) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.api_key = api_key
        self._channel = tls.client_channel(address, max_message_bytes, tls_ca, reconnect_backoff_ms,
                                           max_reconnect_backoff_ms, client_cert=tls_cert, client_key=tls_key)
        self._stub = gesco_pb2_grpc.ChannelStub(self._channel)

    def transmit(self, frame: SemanticFrame, owner: str | None = None) -> TransmitAck:
        """Send ``frame``; ``owner`` (the client key's identity) travels as metadata to the receiver."""
        return self._stub.Transmit(frame, timeout=self.timeout_s, metadata=auth.bearer_metadata(self.api_key, owner))

    def health(self, timeout: float = 1.0) -> str:
        """The channel's gRPC health status over this client's connection (TLS included)."""
        return grpc_health_on(self._channel, timeout=timeout)

    def close(self) -> None:
        self._channel.close()


def channel_client_for(settings: SenderSettings) -> ChannelClient:
    """The client of the channel at ``settings.channel_address`` with the settings' deadline,
    message limit, API key, TLS / mutual TLS and reconnection back-off."""
    return ChannelClient(
        settings.channel_address, settings.channel_timeout_s, settings.max_message_bytes,
        api_key=auth.read_secret(settings.channel_api_key, settings.channel_api_key_file), tls_ca=settings.channel_tls_ca,
        reconnect_backoff_ms=settings.reconnect_backoff_ms, max_reconnect_backoff_ms=settings.max_reconnect_backoff_ms,
        tls_cert=settings.channel_tls_cert, tls_key=settings.channel_tls_key,
    )
