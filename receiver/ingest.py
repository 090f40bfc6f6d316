"""``Receiver.Deliver``: check a received frame, store the job, then acknowledge."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable

import grpc

from gesco.errors import ClassIdError
from gesco.link import (
    TransmitSettings,
    budget_record,
    check_transmit_params,
    received_appearance,
    received_maps,
    upload_report,
)
from gesco.transmit_fields import model_defaults
from gesco.wire import ACK_ACCEPTED, DeliverAck, ReceivedFrame
from gesco.wire.limits import DEFAULT_MAX_FRAME_ELEMENTS, FrameLimits, check_received_limits
from gesco_net.auth import owner_from_metadata
from gesco_net.grpc_kit import abort
from gesco_net.logs import job_context
from receiver.generation import Generator, check_sampling, model_key, num_timesteps
from receiver.store import (
    BaseJobStore,
    DuplicateJobError,
    JobOwnerError,
    QueueFullError,
    StoreUnavailableError,
    check_job_id,
)

log = logging.getLogger("gesco.receiver.ingest")


def batch_key(settings: TransmitSettings) -> str:
    """Jobs with equal keys are sampled in one call: the pipeline's own grouping key
    (``SamplingSettings.group_key``), so the store never hands the worker a batch the
    pipeline would split."""
    return json.dumps(list(settings.to_sampling().group_key()))


class Ingest:
    """The ``Deliver`` handler.

    Args:
        store: where jobs go.
        generator: the model (its class space and resolution are what frames must match).
        on_queued: called after a job is stored (wakes the worker).
    """

    def __init__(self, store: BaseJobStore, generator: Generator, on_queued: Callable[[], None] = lambda: None,
                 max_queued: int = 0, max_frame_elements: int = DEFAULT_MAX_FRAME_ELEMENTS) -> None:
        self.store = store
        self.generator = generator
        self.on_queued = on_queued
        self.max_queued = max_queued
        height, width = generator.resolution
        largest = (generator.space.num_classes + 1) * height * width  # every class + the edge map
        self.limits = FrameLimits(max_elements=min(max_frame_elements, largest), resolution=(height, width))
        self._timesteps = num_timesteps(generator)
        self.model = model_key(generator)  # stored with each job: only workers with this model claim it
        #: values of the sampling settings a frame leaves unset (the model card's recommended sampling)
        self.defaults = model_defaults(getattr(generator, "card", None))

    def check(self, received: ReceivedFrame) -> TransmitSettings:
        """Validate a frame for this receiver; return its settings.

        Raises:
            GescoInputError subclasses: inconsistent frame or symbols (NaN included),
                a class space or size the model does not generate, bad sampling settings,
                an id that cannot name a job.
        """
        # declared sizes against the model's resolution and the element budget, header
        # payload, report: all before any symbol is converted or upsampled
        check_received_limits(received, self.limits)
        header = received.header
        check_job_id(header.id)
        space = self.generator.space
        if header.class_space and header.class_space != space.name:
            raise ClassIdError(f"frame uses class space {header.class_space!r}, the receiver's model {space.name!r}")
        if header.num_classes != space.num_classes:
            raise ClassIdError(f"frame has {header.num_classes} classes, the receiver's model {space.num_classes}")
        check_transmit_params(header)  # PSNR range and channel preset, as the channel checks them
        received_maps(received)  # symbol values (NaN / inf), codec upsampling
        received_appearance(received)  # the appearance side channel's settings and symbol count
        # unset fields: this receiver's defaults (its model's recommended sampling), else the declared ones
        settings = TransmitSettings.from_frame(header, self.defaults)
        check_sampling(settings, self._timesteps, self.generator)  # a distilled checkpoint refuses other samplers here
        return settings

    def deliver(self, received: ReceivedFrame, context: grpc.ServicerContext) -> DeliverAck:
        with job_context(received.header.id or None):  # log lines of this call carry the job id
            return self._deliver(received, context)

    def _deliver(self, received: ReceivedFrame, context: grpc.ServicerContext) -> DeliverAck:
        owner = owner_from_metadata(context)  # identity of the sender's client (API keys on), else None
        settings = self.check(received)  # GescoInputError -> INVALID_ARGUMENT (see grpc_kit)
        header = received.header
        try:
            new = self.store.add(
                header.id,
                received.SerializeToString(deterministic=True),
                settings=settings.to_dict(),
                budget=budget_record(header, received.report),
                batch_key=batch_key(settings),
                upload=upload_report(header.upload) if header.HasField("upload") else None,
                owner=owner,
                max_queued=self.max_queued,
                model=self.model,
            )
        except JobOwnerError as e:
            abort(context, grpc.StatusCode.PERMISSION_DENIED, str(e))
        except DuplicateJobError as e:
            abort(context, grpc.StatusCode.ALREADY_EXISTS, str(e))
        except QueueFullError as e:
            log.warning("job %s refused: %s", header.id, e)
            abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, f"{e}; retry later")
        except (OSError, sqlite3.Error, StoreUnavailableError) as e:
            log.exception("cannot store job %s", header.id)
            abort(context, grpc.StatusCode.UNAVAILABLE, f"the receiver cannot store the job: {type(e).__name__}: {e}")
        if new:
            log.info("job %s queued", header.id)
            self.on_queued()
        return DeliverAck(id=header.id, status=ACK_ACCEPTED, message="stored" if new else "already stored")
