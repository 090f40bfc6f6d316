"""The receiver process: model, job store, worker, gRPC ingest and REST app, wired together."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from gesco.serving.runner import run_uvicorn
from gesco.serving.grpc_kit import RECEIVER_SERVICE, make_server, set_serving, tolerant_unary
from gesco.wire import DeliverAck, ReceivedFrame

from receiver.app import create_app
from receiver.generation import Generator, describe, load_generator
from receiver.ingest import Ingest
from receiver.settings import ReceiverSettings
from receiver.store import JobStore
from receiver.worker import Worker

log = logging.getLogger("gesco.receiver")


class ReceiverService:
    """Everything the receiver runs; :meth:`start` / :meth:`stop` around the REST server.

    Args:
        settings: :class:`ReceiverSettings`.
        generator: the diffusion pipeline; ``None`` loads ``settings.checkpoint`` (the
            shipped model by default) and raises :class:`gesco.errors.CheckpointError`
            when it is missing: the receiver never runs on random weights.

    Attributes:
        app: the FastAPI app (serve it with uvicorn).
        grpc_port: the bound gRPC port.
    """

    def __init__(self, settings: ReceiverSettings, generator: Generator | None = None) -> None:
        self.settings = settings
        self.generator = generator if generator is not None else load_generator(settings.checkpoint, settings.device)
        self.store = JobStore(settings.data_dir, fsync=settings.fsync)
        requeued, failed = self.store.recover(settings.max_attempts)
        if requeued or failed:
            log.warning("recovered after a restart: %d job(s) requeued, %d failed after too many attempts", requeued, failed)
        self.worker = Worker(self.store, self.generator, settings.max_batch, settings.fds_kernel, settings.poll_s)
        self.ingest = Ingest(self.store, self.generator, on_queued=self.worker.notify)
        self.server, self.health, self.grpc_port = make_server(
            RECEIVER_SERVICE,
            {"Deliver": tolerant_unary(self.ingest.deliver, ReceivedFrame, DeliverAck)},
            f"{settings.host}:{settings.grpc_port}",
            max_workers=settings.grpc_workers,
            max_message_bytes=settings.max_message_bytes,
        )
        self.app: FastAPI = create_app(
            self.store, describe(self.generator), settings.max_batch, worker_alive=lambda: self.worker.alive,
            sender_url=settings.sender_url,
            progress=self.worker.progress,
        )
        self._started = False

    def start(self) -> "ReceiverService":
        """Start the worker and the gRPC server (the REST app is served separately)."""
        self.worker.start()
        self.server.start()
        set_serving(self.health, RECEIVER_SERVICE, True)
        self._started = True
        log.info("receiver: gRPC on %s:%d, data in %s, model %s", self.settings.host, self.grpc_port,
                 self.settings.data_dir, describe(self.generator))
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting frames, let running calls finish, stop the worker after its batch."""
        if not self._started:
            self.store.close()
            return
        self._started = False
        set_serving(self.health, RECEIVER_SERVICE, False)
        self.server.stop(grace).wait()
        self.worker.stop(timeout=None)
        self.store.close()

    def uvicorn_config(self, **kwargs) -> uvicorn.Config:
        return uvicorn.Config(self.app, host=self.settings.host, port=self.settings.port,
                              log_level=self.settings.log_level.lower(), **kwargs)

    def run(self) -> None:
        """Start, serve REST until SIGINT / SIGTERM, stop."""
        self.start()
        try:
            run_uvicorn(self.uvicorn_config())
        finally:
            self.stop()
