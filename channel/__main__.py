"""``python -m channel [--host H] [--port P] [--receiver HOST:PORT] [--budget-log FILE]``.

Settings come from ``GESCO_CHANNEL_*`` environment variables; the flags override them.
SIGINT / SIGTERM stop the server cleanly (running calls get 5 s to finish).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import torch

from channel.server import create_server
from channel.settings import ChannelSettings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m channel", description="gesco channel service (gRPC)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--receiver", dest="receiver_address", help="receiver gRPC host:port")
    p.add_argument("--budget-log", dest="budget_log")
    args = p.parse_args(argv)
    settings = ChannelSettings(**{k: v for k, v in vars(args).items() if v is not None})
    from gesco.serving.logs import configure_logging

    configure_logging("channel", settings.log_level, settings.log_json)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    server = create_server(settings).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"channel: gRPC on {server.address}", flush=True)
    stop.wait()
    server.stop(grace=5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
