"""``python -m channel [--host H] [--port P] [--receiver HOST:PORT] [--budget-log FILE]``.

Settings come from ``GESCO_CHANNEL_*`` environment variables; the flags override them.
SIGINT / SIGTERM stop the server cleanly (running calls get 5 s to finish).
"""

from __future__ import annotations

import argparse
import logging
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
    from gesco_net.logs import configure_logging

    configure_logging("channel", settings.log_level, settings.log_json)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    from gesco.errors import GescoError
    from gesco_net.auth import ApiKeys, read_keys, warn_if_exposed

    try:
        server = create_server(settings)
    except GescoError as e:  # an unusable key file, a short key, half a TLS pair
        print(f"channel: cannot start: {e}", file=sys.stderr, flush=True)
        return 2
    warn_if_exposed("the channel", settings.host, ApiKeys(read_keys(settings.grpc_api_keys, settings.grpc_api_keys_file)),
                    logging.getLogger("gesco.channel"), settings.published_on)
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"channel: gRPC on {server.address}", flush=True)
    stop.wait()
    server.stop(grace=5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
