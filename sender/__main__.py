"""``python -m sender [--host H] [--port P] [--channel HOST:PORT] [--receiver-url URL] [--segmenter PATH]``.

Settings come from ``GESCO_SENDER_*`` environment variables; the flags override them.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch
import uvicorn

from gesco.errors import GescoError
from gesco_net.auth import ApiKeys, read_keys, warn_if_exposed
from gesco_net.logs import configure_logging, uvicorn_log_options
from gesco_net.runner import run_uvicorn
from gesco_net.slow_requests import uvicorn_timeouts
from gesco_net.tls import uvicorn_ssl
from sender.app import create_app
from sender.settings import SenderSettings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sender", description="gesco sender service (HTTP)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--channel", dest="channel_address", help="channel gRPC host:port")
    p.add_argument("--receiver-url", help="receiver REST base URL, for result links")
    p.add_argument("--segmenter", help="segmenter checkpoint (default: the shipped one)")
    args = p.parse_args(argv)
    settings = SenderSettings(**{k: v for k, v in vars(args).items() if v is not None})
    configure_logging("sender", settings.log_level, settings.log_json)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    try:
        app = create_app(settings)
        ssl = uvicorn_ssl(settings.tls_cert, settings.tls_key)
    except GescoError as e:  # an unusable key file, a short key, half a TLS pair
        print(f"sender: cannot start: {e}", file=sys.stderr, flush=True)
        return 2
    warn_if_exposed("the sender", settings.host, ApiKeys(read_keys(settings.api_keys, settings.api_keys_file)),
                    logging.getLogger("gesco.sender"), settings.published_on)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                            **ssl, **uvicorn_log_options(settings.log_json),
                            **uvicorn_timeouts(settings.header_timeout_s, settings.body_timeout_s))
    run_uvicorn(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
