"""``python -m receiver [--host H] [--port P] [--grpc-port G] [--data-dir D] [--checkpoint C] [--device DEV] [--batch-size B]``.

Settings come from ``GESCO_RECEIVER_*`` environment variables; the flags override them.
Exits with status 2 and a one-line message when the checkpoint is missing, the store URL is
malformed or the store cannot be reached. Start-up (logging, errors, the open-port warning)
is :func:`gesco_net.startup.run_service`'s.
"""

from __future__ import annotations

import argparse
import sys

from gesco.errors import CheckpointError
from gesco_net.auth import ConfigError
from gesco_net.startup import ServiceStart, run_service
from receiver.settings import ReceiverSettings
from receiver.store import StoreConfigError, StoreUnavailableError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m receiver", description="gesco receiver service (gRPC ingest + REST)")
    p.add_argument("--host")
    p.add_argument("--port", type=int, help="REST port")
    p.add_argument("--grpc-port", type=int)
    p.add_argument("--data-dir")
    p.add_argument("--checkpoint")
    p.add_argument("--device")
    p.add_argument("--batch-size", dest="max_batch", type=int)
    p.add_argument("--role", choices=["all", "receiver", "worker"],
                   help="all: ingest + REST + worker; receiver: ingest + REST; worker: claim and sample only")
    p.add_argument("--store", help="job store URL: empty = SQLite in the data directory, or postgresql://...")
    return p


def build(settings: ReceiverSettings):
    """The service of ``settings.role``: a ``WorkerService`` (sampling only) or a ``ReceiverService``."""
    from receiver.service import ReceiverService, WorkerService  # the model's stack: after logging is set up

    return WorkerService(settings) if settings.role == "worker" else ReceiverService(settings)


def serve(service, settings: ReceiverSettings) -> None:
    service.run()


def main(argv: list[str] | None = None) -> int:
    return run_service(ServiceStart("receiver", parser(), ReceiverSettings, build, serve,
                                    keys=("api_keys", "api_keys_file"),
                                    keys_when=lambda settings: settings.role != "worker",
                                    errors=(CheckpointError, ConfigError, StoreConfigError, StoreUnavailableError)), argv)


if __name__ == "__main__":
    sys.exit(main())
