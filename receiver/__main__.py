"""``python -m receiver [--host H] [--port P] [--grpc-port G] [--data-dir D] [--checkpoint C] [--device DEV] [--batch-size B]``.

Settings come from ``GESCO_RECEIVER_*`` environment variables; the flags override them.
Exits with status 2 and a one-line message when the checkpoint is missing, the store URL is
malformed or the store cannot be reached.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch

from gesco.errors import CheckpointError
from receiver.settings import ReceiverSettings


def main(argv: list[str] | None = None) -> int:
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
    args = p.parse_args(argv)
    settings = ReceiverSettings(**{k: v for k, v in vars(args).items() if v is not None})
    from gesco_net.logs import configure_logging

    configure_logging("receiver", settings.log_level, settings.log_json)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    from gesco_net.auth import ApiKeys, ConfigError, read_keys, warn_if_exposed
    from receiver.service import ReceiverService, WorkerService
    from receiver.store import StoreConfigError, StoreUnavailableError

    try:
        if settings.role == "worker":
            worker = WorkerService(settings)
        else:
            service = ReceiverService(settings)
    except (CheckpointError, ConfigError, StoreConfigError, StoreUnavailableError) as e:
        print(f"receiver: cannot start: {e}", file=sys.stderr, flush=True)
        return 2
    if settings.role == "worker":
        worker.run()
        return 0
    warn_if_exposed("the receiver", settings.host, ApiKeys(read_keys(settings.api_keys, settings.api_keys_file)),
                    logging.getLogger("gesco.receiver"), settings.published_on)
    service.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
