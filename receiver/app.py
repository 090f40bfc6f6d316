"""The receiver's REST API (FastAPI): job status, bit budget, timings and result images.

With API keys configured (:mod:`gesco_net.auth`), ``/result/...`` needs
``Authorization: Bearer <key>`` (401 otherwise) and shows a job only to the key that
created it at the sender (403 otherwise). Result links are built from the configured
public URL (or as paths), never from the request's ``Host`` header. ``GET /healthz``
(alive), ``GET /readyz`` (model, store, worker, gRPC) and ``GET /metrics`` need no key.

This module builds the app (:func:`create_app`); the receiver's REST side by role:
:mod:`receiver.schemas` (the result document's models), :mod:`receiver.routes` (the
result routes), :mod:`receiver.viewer` (the page and the history API),
:mod:`receiver.state` (what the handlers share).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from gesco import __version__
from gesco_net import auth
from gesco_net.api_docs import add_home, add_offline_docs
from gesco_net.body_limit import BodyLimit
from gesco_net.http_errors import install_validation_handler
from gesco_net.metrics import ServiceMetrics, install_http
from receiver.progress import ProgressBoard
from receiver.routes import router
from receiver.state import ReceiverState
from receiver.store import BaseJobStore
from receiver.viewer import MAX_LABEL_BYTES, content_security_policy
from receiver.viewer import router as viewer_router


def create_app(store: BaseJobStore, model_info: dict[str, Any], max_batch: int, worker_alive=lambda: True, *,
               sender_url: str = "http://127.0.0.1:8000", progress: ProgressBoard | None = None,
               keys: auth.ApiKeys | None = None, public_url: str | None = None, allowed_origins: str = "",
               metrics: ServiceMetrics | None = None, rate_limiter: auth.RateLimiter | None = None,
               ready_checks: dict[str, Callable[[], str | None]] | None = None) -> FastAPI:
    """Build the REST app: its shared state (:class:`receiver.state.ReceiverState`), middleware
    and the handlers of :data:`receiver.routes.router` and of the viewer (:data:`receiver.viewer.router`).

    Args:
        store: the job store (shared with the gRPC ingest and the worker).
        model_info: what ``/healthz`` says about the model.
        max_batch: reported by ``/healthz``.
        worker_alive: callable, whether the worker thread runs.
        sender_url: the sender as the browser reaches it (the viewer page POSTs there).
        progress: the worker's progress board (``None``: results carry no progress).
        keys: accepted API keys (``None`` / empty: no key needed, every job visible).
        public_url: base URL of result links (``None``: links are absolute paths).
        allowed_origins: comma-separated extra origins allowed to POST from a browser.
        metrics: the receiver's metrics (a fresh registry by default); served at ``/metrics``.
        rate_limiter: token buckets every request outside the open endpoints takes from (``None``: no limit).
        ready_checks: name -> check of ``/readyz`` (:func:`gesco_net.readiness.run_checks`).
    """
    app = FastAPI(
        title="gesco receiver",
        version=__version__,
        description="Results of generative semantic transmissions: status, bit budget, timings and images.",
        docs_url=None,  # served offline by add_offline_docs
        redoc_url=None,
    )
    add_offline_docs(app)
    add_home(app, "/viewer")  # a browser pointed at the receiver gets the result viewer
    keys = keys or auth.ApiKeys([])
    metrics = metrics or ServiceMetrics("receiver")
    metrics.job_gauge(store.counts)
    base = public_url.rstrip("/") if public_url else ""
    app.state.receiver = ReceiverState(
        store=store, model_info=model_info, max_batch=max_batch, worker_alive=worker_alive, progress=progress,
        keys=keys, link_base=base,
        ready_checks=ready_checks or {"store": lambda: f"{sum(store.counts().values())} jobs"},
        sender_url=sender_url, page_policy=content_security_policy(sender_url),  # ValueError: not an http(s) URL
    )
    app.add_middleware(auth.HttpGuard, config=auth.GuardConfig(
        keys=keys, trusted_origins=frozenset(auth.parse_origins(allowed_origins)
                                             + (auth.with_loopback_aliases(auth.origin_of(public_url))
                                                if public_url else [])),
        # the page, its static files and its settings load without a key (they hold no job data); its API
        # calls, /viewer/label.png included, need one
        open_paths=auth.OPEN_PATHS | {"/viewer", "/viewer/config.json"}, open_prefixes=("/viewer/static/",),
        rate_limiter=rate_limiter, rate_limit_all=True,
    ))
    # the only upload (the viewer's label map): the body is counted as it is read
    app.add_middleware(BodyLimit, max_bytes=MAX_LABEL_BYTES + 64 * 1024)
    install_validation_handler(app)  # 422 replies echo at most 100 characters of the input
    install_http(app, metrics)  # outermost: counts the 413s too
    app.include_router(router)
    app.include_router(viewer_router)
    return app
