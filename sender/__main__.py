"""``python -m sender [--host H] [--port P] [--channel HOST:PORT] [--receiver-url URL] [--segmenter PATH]``.

Settings come from ``GESCO_SENDER_*`` environment variables; the flags override them.
Start-up (logging, errors, the open-port warning) is :func:`gesco_net.startup.run_service`'s.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from gesco_net.logs import uvicorn_log_options
from gesco_net.runner import run_uvicorn
from gesco_net.slow_requests import uvicorn_timeouts
from gesco_net.startup import ServiceStart, run_service
from gesco_net.tls import uvicorn_ssl
from sender.app import create_app
from sender.settings import SenderSettings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sender", description="gesco sender service (HTTP)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--channel", dest="channel_address", help="channel gRPC host:port")
    p.add_argument("--receiver-url", help="receiver REST base URL, for result links")
    p.add_argument("--segmenter", help="segmenter checkpoint (default: the shipped one)")
    return p


def build(settings: SenderSettings) -> tuple:
    """The app and uvicorn's TLS options (an unusable key file, a short key, half a TLS pair raise here)."""
    return create_app(settings), uvicorn_ssl(settings.tls_cert, settings.tls_key)


def serve(built: tuple, settings: SenderSettings) -> None:
    app, ssl = built
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                            **ssl, **uvicorn_log_options(settings.log_json),
                            **uvicorn_timeouts(settings.header_timeout_s, settings.body_timeout_s))
    run_uvicorn(config)


def main(argv: list[str] | None = None) -> int:
    return run_service(ServiceStart("sender", parser(), SenderSettings, build, serve,
                                    keys=("api_keys", "api_keys_file")), argv)


if __name__ == "__main__":
    sys.exit(main())
