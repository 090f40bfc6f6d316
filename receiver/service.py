"""The receiver process: model, job store, worker, gRPC ingest and REST app, wired together.

Its role (``GESCO_RECEIVER_ROLE``) says which parts run: ``all`` (one process, ``gesco up``'s
default), ``receiver`` (gRPC ingest + REST + viewer, no worker: stateless, any number of
replicas on one shared store) or ``worker`` (:class:`WorkerService`: claims and samples
jobs, no server).
"""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from gesco.wire import DeliverAck, ReceivedFrame
from gesco.wire.bounds import grpc_message_limit
from gesco_net import auth, tls
from gesco_net.grpc_kit import RECEIVER_SERVICE, make_server, set_serving, tolerant_unary
from gesco_net.logs import uvicorn_log_options
from gesco_net.metrics import GrpcMetricsInterceptor, ServiceMetrics
from gesco_net.ratelimit import grpc_rate_limit
from gesco_net.readiness import NotReady, directory_writable
from gesco_net.runner import run_uvicorn
from gesco_net.slow_requests import uvicorn_timeouts
from gesco_net.startup import stop_on_signals
from receiver.app import create_app
from receiver.generation import Generator, describe, load_generator
from receiver.ingest import Ingest
from receiver.settings import ReceiverSettings
from receiver.store import BaseJobStore
from receiver.stores import open_store
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
        if settings.role == "worker":
            raise ValueError("role 'worker' runs WorkerService, not ReceiverService")
        self.settings = settings
        self.generator = generator if generator is not None else load_generator(
            settings.checkpoint, settings.device, settings.sky_finishing_sigma, settings.mean_temperature)
        self.store = open_receiver_store(settings)
        self.metrics = ServiceMetrics("receiver")
        self.worker: Worker | None = None
        if settings.role == "all":
            self.worker = make_worker(settings, self.store, self.generator, self.metrics)
        grpc_keys = auth.ApiKeys(auth.read_keys(settings.grpc_api_keys, settings.grpc_api_keys_file))
        self.tls = tls.check_pair(settings.tls_cert, settings.tls_key, "receiver")
        self.ingest = Ingest(self.store, self.generator, on_queued=self.worker.notify if self.worker else lambda: None,
                             max_queued=settings.max_queue,
                             max_frame_elements=settings.max_frame_elements)
        self.server, self.health, self.grpc_port = make_server(
            RECEIVER_SERVICE,
            {"Deliver": tolerant_unary(self.ingest.deliver, ReceivedFrame, DeliverAck, bounds=self.ingest.limits.bounds)},
            f"{settings.host}:{settings.grpc_port}",
            max_workers=settings.grpc_workers,
            max_message_bytes=settings.max_message_bytes
            or grpc_message_limit(ReceivedFrame.DESCRIPTOR, self.ingest.limits.max_elements),
            max_concurrent_calls=settings.max_concurrent_calls,
            interceptors=(GrpcMetricsInterceptor(self.metrics), auth.GrpcKeyInterceptor(grpc_keys),
                          *grpc_rate_limit(settings.grpc_rate_limit_per_s, settings.grpc_rate_limit_burst, grpc_keys)),
            credentials=(tls.server_credentials(settings.tls_cert, settings.tls_key, settings.grpc_client_ca)
                         if self.tls else None),
        )
        self.app: FastAPI = create_app(
            self.store, describe(self.generator), settings.max_batch, worker_alive=self._worker_alive,
            sender_url=settings.sender_url,
            progress=self.worker.progress if self.worker else None,
            keys=auth.ApiKeys(auth.read_keys(settings.api_keys, settings.api_keys_file)),
            public_url=self.public_url(), allowed_origins=settings.allowed_origins, metrics=self.metrics,
            rate_limiter=(auth.RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
                          if settings.rate_limit_per_s > 0 else None),
            ready_checks={"model": self._model_ready, "store": self._store_ready,
                          "worker": self._worker_ready, "grpc": self._grpc_ready},
        )
        self._started = False

    def public_url(self) -> str:
        """Base of result links: the setting, else this server on a loopback address (never a Host header)."""
        if self.settings.public_url:
            return self.settings.public_url
        host = self.settings.host
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
        return f"{'https' if self.tls else 'http'}://{host}:{self.settings.port}"

    def _model_ready(self) -> str:
        info = describe(self.generator)
        return f"loaded ({info.get('class_space')}, {info.get('resolution')}, {info.get('device')})"

    def _worker_alive(self) -> bool:
        return self.worker is None or self.worker.alive  # role receiver: the workers are other processes

    def _store_ready(self) -> str:
        directory_writable(self.store.data_dir)
        return f"{self.store.describe()}, {sum(self.store.counts().values())} jobs"  # StoreUnavailableError: 503

    def _worker_ready(self) -> str:
        if self.worker is None:
            return f"none in this process (role receiver), {self.store.counts()['queued']} queued for receiver-workers"
        if not self.worker.alive:
            raise NotReady("the worker thread is not running")
        return f"running, {self.store.counts()['queued']} queued"

    def _grpc_ready(self) -> str:
        if not self._started:
            raise NotReady("the gRPC server is not started")
        return f"serving on port {self.grpc_port}"

    def start(self) -> ReceiverService:
        """Start the worker (role all) and the gRPC server (the REST app is served separately)."""
        if self.worker is not None:
            self.worker.start()
        self.server.start()
        set_serving(self.health, RECEIVER_SERVICE, True)
        self._started = True
        log.info("receiver (role %s): gRPC on %s:%d, store %s, files in %s, model %s", self.settings.role,
                 self.settings.host, self.grpc_port, self.store.describe(), self.settings.data_dir,
                 describe(self.generator))
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting frames, let running calls finish, stop the worker after its batch."""
        if not self._started:
            self.store.close()
            return
        self._started = False
        set_serving(self.health, RECEIVER_SERVICE, False)
        self.server.stop(grace).wait()
        if self.worker is not None:
            self.worker.stop(timeout=None)
        self.store.close()

    def uvicorn_config(self, **kwargs) -> uvicorn.Config:
        options = {**tls.uvicorn_ssl(self.settings.tls_cert, self.settings.tls_key),
                   **uvicorn_log_options(self.settings.log_json),
                   **uvicorn_timeouts(self.settings.header_timeout_s, self.settings.body_timeout_s), **kwargs}
        return uvicorn.Config(self.app, host=self.settings.host, port=self.settings.port,
                              log_level=self.settings.log_level.lower(), **options)

    def run(self) -> None:
        """Start, serve REST until SIGINT / SIGTERM, stop."""
        self.start()
        try:
            run_uvicorn(self.uvicorn_config())
        finally:
            self.stop()


def open_receiver_store(settings: ReceiverSettings) -> BaseJobStore:
    """The store of ``settings.store`` (with the password of ``store_password_file``, else ``store_password``).

    Raises:
        StoreConfigError: a malformed store URL. StoreUnavailableError: Postgres unreachable.
    """
    url = settings.store
    password = (settings.store_password_file.read_text().strip() if settings.store_password_file is not None
                else settings.store_password)
    if url and password:
        from receiver.store_postgres import with_password

        url = with_password(url, password)
    return open_store(url, settings.data_dir, fsync=settings.fsync, busy_timeout_s=settings.db_busy_timeout_s)


def make_worker(settings: ReceiverSettings, store: BaseJobStore, generator: Generator,
                metrics: ServiceMetrics) -> Worker:
    """The worker of ``settings`` (batching, leases, expiry), reporting its stage timings to ``metrics``."""
    stages = {k: k[:-2] for k in ("queue_wait_s", "fds_s", "sampling_s", "png_s", "total_s")}
    return Worker(store, generator, settings.max_batch, settings.fds_kernel, settings.poll_s,
                  on_done=lambda timings: metrics.observe_stages(timings, stages),
                  max_stored_jobs=settings.max_stored_jobs, name=settings.worker_name or None,
                  lease_s=settings.lease_s, max_attempts=settings.max_attempts)


class WorkerService:
    """Role ``worker`` (``receiver-worker`` in compose): the model and a worker on the shared store, no server.

    It claims only jobs of its own model, renews its leases while sampling, and on SIGTERM
    finishes its batch and exits (a SIGKILL leaves the batch to the lease: another worker
    takes it over once the lease expires).
    """

    def __init__(self, settings: ReceiverSettings, generator: Generator | None = None) -> None:
        self.settings = settings
        self.generator = generator if generator is not None else load_generator(
            settings.checkpoint, settings.device, settings.sky_finishing_sigma, settings.mean_temperature)
        self.store = open_receiver_store(settings)
        self.metrics = ServiceMetrics("receiver_worker")
        self.worker = make_worker(settings, self.store, self.generator, self.metrics)

    def run(self) -> None:
        """Work until SIGINT / SIGTERM, then stop after the current batch."""
        stop = stop_on_signals()
        self.worker.start()
        log.info("receiver-worker %s: store %s, model %s", self.worker.name, self.store.describe(), self.worker.model)
        while not stop.wait(1.0):
            if not self.worker.alive:
                raise RuntimeError("the worker thread died")
        self.worker.stop(timeout=None)
        self.store.close()
