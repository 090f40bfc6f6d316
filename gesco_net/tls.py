"""TLS for the services: gRPC credentials, uvicorn's ssl options, a client SSL context.

Certificates are PEM files (``gesco certs`` makes a self-signed CA and a server
certificate signed by it, :mod:`gesco_net.commands.certs`). A server is given its
certificate and key (``GESCO_*_TLS_CERT`` / ``..._TLS_KEY``); a client is given the CA
that signed it (``GESCO_SENDER_CHANNEL_TLS_CA``, ``GESCO_CHANNEL_RECEIVER_TLS_CA``) and
then refuses a server whose certificate does not chain to that CA or does not name the
host it dialled. Without these settings everything is plaintext, as before.

**Mutual TLS** between the services (optional): a gRPC server given a client CA
(``GESCO_CHANNEL_GRPC_CLIENT_CA``, ``GESCO_RECEIVER_GRPC_CLIENT_CA``) refuses, during the
handshake, every client without a certificate signed by it; the clients present theirs
(``GESCO_SENDER_CHANNEL_TLS_CERT`` / ``_KEY``, ``GESCO_CHANNEL_RECEIVER_TLS_CERT`` / ``_KEY``).
``gesco certs`` issues its certificate for both server and client use, so one certificate
can serve a service in both roles.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from gesco_net.auth import ConfigError
from gesco_net.grpc_kit import channel_options


def _read(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the {what} {path}: {e}") from None


def check_pair(cert: Path | str | None, key: Path | str | None, what: str) -> bool:
    """Whether a certificate / key pair is configured (``True``) or not (``False``).

    Raises:
        ConfigError: only one of the two is set, or a file cannot be read.
    """
    if bool(cert) != bool(key):
        raise ConfigError(f"{what}: set both the TLS certificate and its key, or neither")
    if cert:
        _read(cert, "TLS certificate")
        _read(key, "TLS key")
    return bool(cert)


def server_credentials(cert: Path | str, key: Path | str, client_ca: Path | str | None = None) -> grpc.ServerCredentials:
    """gRPC server credentials from a PEM certificate (chain) and its private key.

    ``client_ca``: require every client to present a certificate signed by this CA (mutual TLS).
    """
    pair = [(_read(key, "TLS key"), _read(cert, "TLS certificate"))]
    if client_ca is None:
        return grpc.ssl_server_credentials(pair)
    return grpc.ssl_server_credentials(pair, root_certificates=_read(client_ca, "client CA"), require_client_auth=True)


def client_channel(address: str, max_message_bytes: int, ca: Path | str | None = None,
                   reconnect_backoff_ms: int | None = None, max_reconnect_backoff_ms: int | None = None,
                   service_config: str | None = None, client_cert: Path | str | None = None,
                   client_key: Path | str | None = None) -> grpc.Channel:
    """A gRPC channel to ``address``: TLS trusting ``ca`` when given, plaintext otherwise.

    ``client_cert`` / ``client_key``: this client's certificate for a server that requires one
    (mutual TLS; needs ``ca``).

    ``reconnect_backoff_ms`` / ``max_reconnect_backoff_ms``: see :func:`gesco_net.grpc_kit.channel_options`;
    ``service_config``: load balancing and retries (:func:`gesco_net.grpc_kit.balanced_service_config`).
    """
    options = channel_options(max_message_bytes, reconnect_backoff_ms, max_reconnect_backoff_ms)
    if service_config is not None:
        options += [("grpc.service_config", service_config), ("grpc.enable_retries", 1)]
    with_cert = check_pair(client_cert, client_key, "gRPC client certificate")
    if ca is None:
        if with_cert:
            raise ConfigError("a client certificate is sent over TLS only: set the server's CA too")
        return grpc.insecure_channel(address, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(ca, "TLS CA"),
        private_key=_read(client_key, "TLS key") if with_cert else None,
        certificate_chain=_read(client_cert, "TLS certificate") if with_cert else None,
    )
    return grpc.secure_channel(address, credentials, options=options)


def uvicorn_ssl(cert: Path | str | None, key: Path | str | None) -> dict[str, str]:
    """uvicorn's ``ssl_certfile`` / ``ssl_keyfile`` options (empty: plain HTTP)."""
    if not check_pair(cert, key, "HTTP server"):
        return {}
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def client_ssl_context(ca: Path | str) -> ssl.SSLContext:
    """An SSL context for HTTPS clients that trusts ``ca`` (and verifies host names)."""
    context = ssl.create_default_context(cafile=str(ca))
    return context
