"""The sender's HTTP API: ``POST /transmit`` and ``GET /healthz``.

Status codes of ``POST /transmit``:

* 202: the channel transmitted the frame and the receiver stored the job;
* 413: a file or the image is over the size limit;
* 415: a file is not a PNG / JPEG (label and instance maps: not a PNG);
* 422: a corrupt image, a label / instance map of the wrong shape or with unknown
  class ids, a parameter out of range or not a number, an unknown form field;
* 503: no segmenter and no label map, or the channel or the receiver is down
  (nothing was stored); 504: they did not answer before the deadline.

With API keys configured: 401 without a valid ``Authorization: Bearer <key>``; any
unsafe request from a browser page of another origin: 403; a client over its rate
limit: 429 with ``Retry-After`` (:mod:`gesco_net.auth`, ``docs/security.md``).
``GET /healthz`` (alive), ``GET /readyz`` (segmenter loaded, channel reachable) and
``GET /metrics`` (Prometheus) need no key.

This module builds the app (:func:`create_app`); the sender's other files, by role:
:mod:`sender.schemas` (the REST models), :mod:`sender.routes` (the handlers),
:mod:`sender.stages` (the stages of one transmission), :mod:`sender.errors` (which HTTP
status each failure gets), :mod:`sender.state` (what the handlers share),
:mod:`sender.channel_client` (gRPC to the channel), :mod:`sender.guards` (form and encode
slot checks), :mod:`sender.openapi`, :mod:`sender.cors`, :mod:`sender.settings`.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from gesco import __version__
from gesco.link import Segmenter
from gesco_net import auth
from gesco_net.api_docs import add_home, add_offline_docs
from gesco_net.body_limit import BodyLimit
from gesco_net.http_errors import install_validation_handler
from gesco_net.metrics import install_http
from sender.channel_client import ChannelClient, channel_client_for
from sender.cors import allow_viewer
from sender.openapi import strict_transmit_schema
from sender.routes import router
from sender.settings import SenderSettings
from sender.state import SenderState, build_state

log = logging.getLogger("gesco.sender")


def create_app(
    settings: SenderSettings,
    *,
    channel: ChannelClient | None = None,
    segmenter: Segmenter | None = None,
) -> FastAPI:
    """Build the sender app: its shared state (:func:`sender.state.build_state`), middleware
    (metrics, body limit, CORS for the viewer, keys / origins / rate limits) and the handlers
    of :data:`sender.routes.router`.

    Args:
        settings: :class:`SenderSettings`.
        channel: the channel client (default: one to ``settings.channel_address``, closed
            when the app stops).
        segmenter: a segmenter to use instead of loading ``settings.segmenter``.
    """
    keys = auth.ApiKeys(auth.read_keys(settings.api_keys, settings.api_keys_file))  # a bad key file fails first
    own_channel = channel is None
    state = build_state(settings, channel or channel_client_for(settings), segmenter)
    app = FastAPI(
        title="gesco sender",
        version=__version__,
        description="Send an image as its semantic maps over a simulated noisy channel "
        f"(generative semantic communication, GESCO). Results: {settings.receiver_url.rstrip('/')}/result/<id>; "
        f"in a browser, the result viewer: {settings.receiver_url.rstrip('/')}/viewer",
        lifespan=_lifespan(state, load_segmenter=segmenter is None, own_channel=own_channel),
        docs_url=None,  # served offline by add_offline_docs
        redoc_url=None,
    )
    add_offline_docs(app)
    add_home(app, "/docs")  # a browser pointed at the sender gets its API docs
    app.state.sender = state
    _add_middleware(app, state, keys)
    install_validation_handler(app)
    app.include_router(router)
    strict_transmit_schema(app)  # the schema forbids other form fields, as the endpoint does
    install_http(app, state.metrics)  # outermost: counts the 413s above and the guard's 401 / 403 / 429 too
    return app


def _lifespan(state: SenderState, *, load_segmenter: bool, own_channel: bool):
    """The app's start-up and shut-down: load the settings' segmenter (when none was handed
    in and the settings allow it) before serving; close the channel client it made itself."""
    settings = state.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if load_segmenter and settings.load_segmenter:
            await run_in_threadpool(state.slot.load, settings.segmenter)
        elif load_segmenter:
            state.slot.error = "disabled by the settings (load_segmenter = false)"
        yield
        if own_channel:
            state.channel.close()

    return lifespan


def _add_middleware(app: FastAPI, state: SenderState, keys: auth.ApiKeys) -> None:
    """The guard (API keys, trusted origins, rate limit on ``POST /transmit``), the viewer's
    CORS outside it, and the body limit outside both (the last added runs first)."""
    settings = state.settings
    limiter = (auth.RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
               if settings.rate_limit_per_s > 0 else None)
    app.add_middleware(auth.HttpGuard, config=auth.GuardConfig(
        keys=keys, rate_limiter=limiter, rate_limited=frozenset({("POST", "/transmit")}),
        trusted_origins=frozenset(auth.with_loopback_aliases(auth.origin_of(settings.receiver_url))
                                  + auth.parse_origins(settings.allowed_origins)),
    ))
    # the viewer's CORS outside the guard: its refusals (401 / 403 / 429) carry CORS headers too
    allow_viewer(app, settings.receiver_url)
    # the limit counts the bytes read (a chunked upload has no Content-Length)
    app.add_middleware(BodyLimit, max_bytes=3 * settings.max_upload_bytes + 64 * 1024)
