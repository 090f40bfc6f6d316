"""Cross-origin access for the receiver's result viewer.

The viewer page is served by the receiver (``GET /viewer`` on ``receiver_url``) and POSTs
uploads to this sender: a cross-origin request. A multipart POST without custom headers
needs no preflight, but the browser only lets the page read the reply (the job id, or
the 4xx reason) when the sender answers with ``Access-Control-Allow-Origin``. The sender
allows exactly the origin of its ``receiver_url`` (the receiver as clients reach it) and,
when that is a loopback name, its other loopback spellings (``localhost``,
``127.0.0.1``, ``[::1]``) with the same port; no credentials, only ``POST`` / ``GET``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def viewer_origins(receiver_url: str) -> list[str]:
    """Origins allowed to read the sender's replies: the receiver's, with its loopback aliases."""
    parts = urlsplit(receiver_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"receiver_url must be an http(s) URL, got {receiver_url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    hosts = LOOPBACK_HOSTS if host in LOOPBACK_HOSTS else (host,)
    return [f"{parts.scheme}://{h}{port}" for h in hosts]


def allow_viewer(app: FastAPI, receiver_url: str) -> None:
    """Let the receiver's viewer page read the replies of ``POST /transmit``."""
    app.add_middleware(CORSMiddleware, allow_origins=viewer_origins(receiver_url), allow_methods=["GET", "POST"],
                       allow_headers=["authorization"], allow_credentials=False)
