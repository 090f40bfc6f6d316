"""What the receiver's REST handlers share: :class:`ReceiverState`.

:func:`receiver.app.create_app` builds it once per app (``app.state.receiver``); the
handlers of :mod:`receiver.routes` and of the viewer (:mod:`receiver.viewer`) get it through
the FastAPI dependency :data:`State`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from gesco_net import auth
from receiver.progress import ProgressBoard
from receiver.store import BaseJobStore


@dataclass
class ReceiverState:
    """What the REST handlers share.

    Attributes:
        store: the job store (shared with the gRPC ingest and the worker).
        model_info: what ``/healthz`` says about the model (the viewer reads its
            ``class_space`` and ``resolution``).
        max_batch: most jobs per sampling call.
        worker_alive: whether the worker thread runs.
        progress: the worker's progress board (``None``: results carry no progress).
        keys: accepted API keys (disabled: every job visible).
        link_base: base URL of result links ("" for absolute paths).
        ready_checks: the checks of ``/readyz``.
        sender_url: the sender as the browser reaches it (the viewer page POSTs there).
        page_policy: the viewer's Content-Security-Policy
            (:func:`receiver.viewer.content_security_policy` of ``sender_url``).
    """

    store: BaseJobStore
    model_info: dict[str, Any]
    max_batch: int
    worker_alive: Callable[[], bool]
    progress: ProgressBoard | None
    keys: auth.ApiKeys
    link_base: str
    ready_checks: dict[str, Callable[[], str | None]]
    sender_url: str
    page_policy: str


def get_state(request: Request) -> ReceiverState:
    """Dependency: the state shared by the handlers."""
    return request.app.state.receiver


State = Annotated[ReceiverState, Depends(get_state)]
