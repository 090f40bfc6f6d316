"""``python -m sender [--host H] [--port P] [--channel HOST:PORT] [--receiver-url URL] [--segmenter PATH]``.

Settings come from ``GESCO_SENDER_*`` environment variables; the flags override them.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch
import uvicorn

from gesco.serving.runner import run_uvicorn
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
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s sender %(levelname)s %(message)s")
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                            log_level=settings.log_level.lower())
    run_uvicorn(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
