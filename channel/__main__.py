"""``python -m channel [--host H] [--port P] [--receiver HOST:PORT] [--budget-log FILE]``.

Settings come from ``GESCO_CHANNEL_*`` environment variables; the flags override them.
SIGINT / SIGTERM stop the server cleanly (running calls get 5 s to finish). Start-up
(logging, errors, the open-port warning) is :func:`gesco_net.startup.run_service`'s.
"""

from __future__ import annotations

import argparse
import sys

from channel.server import ChannelServer, create_server
from channel.settings import ChannelSettings
from gesco_net.startup import ServiceStart, run_service, stop_on_signals


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m channel", description="gesco channel service (gRPC)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--receiver", dest="receiver_address", help="receiver gRPC host:port")
    p.add_argument("--budget-log", dest="budget_log")
    return p


def serve(server: ChannelServer, settings: ChannelSettings) -> None:
    server.start()
    stop = stop_on_signals()
    print(f"channel: gRPC on {server.address}", flush=True)
    stop.wait()
    server.stop(grace=5.0)


def main(argv: list[str] | None = None) -> int:
    return run_service(ServiceStart("channel", parser(), ChannelSettings, create_server, serve,
                                    keys=("grpc_api_keys", "grpc_api_keys_file")), argv)


if __name__ == "__main__":
    sys.exit(main())
