"""What the sender's handlers share: the segmenter slot and :class:`SenderState`.

:func:`build_state` makes it once per app (:func:`sender.app.create_app`), and the
handlers get it through the FastAPI dependency :data:`State`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from gesco.link import Segmenter
from gesco.semantics.classes import ClassSpace, get_class_space
from gesco_net.metrics import ServiceMetrics
from sender.channel_client import ChannelClient
from sender.guards import EncodeSlots
from sender.settings import SenderSettings

log = logging.getLogger("gesco.sender")


class SegmenterSlot:
    """The segmenter, loaded once (at start-up), or the reason it is unavailable."""

    def __init__(self, segmenter: Segmenter | None = None, error: str | None = None) -> None:
        self.segmenter = segmenter
        self.error = error
        self._lock = threading.Lock()

    def load(self, spec: str | None) -> None:
        with self._lock:
            if self.segmenter is not None:
                return
            try:
                from gesco.segment import load_segmenter

                self.segmenter = load_segmenter(spec)
                self.error = None
                log.info("segmenter loaded (%s)", spec or "shipped default")
            except Exception as e:
                self.error = f"{type(e).__name__}: {e}"
                log.warning("no segmenter: %s; uploads must include a label map", self.error)

    def get(self) -> Segmenter:
        if self.segmenter is None:
            raise HTTPException(
                503, f"no label map was uploaded and the sender has no segmenter ({self.error or 'not loaded'}); "
                "upload a label map or start the sender with a segmenter checkpoint",
            )
        return self.segmenter


@dataclass
class SenderState:
    """What the handlers share, built once by :func:`build_state` (``app.state.sender``).

    Attributes:
        settings: the service's settings.
        channel: the client of the channel service.
        slot: the segmenter, or why there is none.
        metrics: the Prometheus metrics of this service.
        encode_slots: the cap on concurrent decode + encode work.
        space, resolution: the model's class space and ``(H, W)``.
        injected_segmenter: a segmenter was handed to :func:`sender.app.create_app` (tests), so none is loaded.
    """

    settings: SenderSettings
    channel: ChannelClient
    slot: SegmenterSlot
    metrics: ServiceMetrics
    encode_slots: EncodeSlots
    space: ClassSpace
    resolution: tuple[int, int]
    injected_segmenter: bool = False


def get_state(request: Request) -> SenderState:
    """Dependency: the state shared by the handlers."""
    return request.app.state.sender


State = Annotated[SenderState, Depends(get_state)]


def build_state(settings: SenderSettings, channel: ChannelClient, segmenter: Segmenter | None = None) -> SenderState:
    """The state of one sender app: ``channel``, a slot holding ``segmenter`` (``None``: the
    app loads the settings' segmenter at start-up), fresh metrics, the encode slots, and the
    class space and resolution of the settings."""
    return SenderState(
        settings=settings, channel=channel, slot=SegmenterSlot(segmenter), metrics=ServiceMetrics("sender"),
        encode_slots=EncodeSlots(settings.max_concurrent_encodes, settings.encode_wait_s, settings.retry_after_s),
        space=get_class_space(settings.class_space), resolution=(settings.height, settings.width),
        injected_segmenter=segmenter is not None,
    )
