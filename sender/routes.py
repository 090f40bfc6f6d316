"""The sender's routes: ``GET /healthz``, ``GET /readyz`` and ``POST /transmit``.

``POST /transmit`` runs the stages of :mod:`sender.stages` in order; the status codes are
listed in :mod:`sender.app` and :data:`sender.errors.TRANSMIT_ERRORS`. The handlers carry
no docstrings on purpose: FastAPI would publish them as the operations' descriptions,
and the OpenAPI document is pinned (``tests/services/test_openapi_frozen.py``).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from gesco import __version__
from gesco_net import auth
from gesco_net.logs import bind_job
from gesco_net.readiness import READYZ_RESPONSES, NotReady, run_checks
from sender.errors import TRANSMIT_ERRORS
from sender.guards import check_form
from sender.schemas import FORM_FIELDS, Health, TransmitAccepted, TransmitParams
from sender.stages import accepted_reply, check_choices, encode_upload, new_job_id, read_uploads, send_frame
from sender.state import State

router = APIRouter()


@router.get("/healthz", response_model=Health, summary="Liveness and configuration")
def healthz(state: State) -> Health:
    slot, settings = state.slot, state.settings
    return Health(status="ok", version=__version__, resolution=list(state.resolution), class_space=state.space.name,
                  segmenter="ready" if slot.segmenter is not None else (slot.error or "not loaded"),
                  aspect=settings.aspect, channel_address=settings.channel_address)


@router.get("/readyz", summary="Readiness: segmenter loaded, channel reachable (503 otherwise)",
            responses=READYZ_RESPONSES)
def readyz(state: State):
    def segmenter_loaded() -> str:
        if state.slot.segmenter is not None:
            return "ok"
        if not state.injected_segmenter and not state.settings.load_segmenter:
            return "disabled (uploads need a label map)"
        raise NotReady(state.slot.error or "not loaded yet")

    def downstream() -> str:
        status = state.channel.health()
        if status != "SERVING":
            raise NotReady(f"channel at {state.channel.address}: {status}")
        return "ok"

    return run_checks({"segmenter": segmenter_loaded, "channel": downstream})


@router.post("/transmit", status_code=202, response_model=TransmitAccepted, responses=TRANSMIT_ERRORS,
             summary="Transmit an image as its semantic maps")
async def transmit(
    request: Request,
    params: Annotated[TransmitParams, Form()],
    image: Annotated[UploadFile, File(description="The image, PNG or JPEG, any size (resized to the model resolution).")],
    state: State,
    label: Annotated[UploadFile | None, File(description="Optional label map: PNG of class ids (8 or 16 bit, one "
                                             "channel), the image's size. Without it the sender segments the image.")] = None,
    instance: Annotated[UploadFile | None, File(description="Optional instance map: PNG of instance ids, the image's "
                                                "size (Cityscapes instanceIds); its edge map is sent too. Needs a label map. "
                                                "Without it the sender derives one from the label map (upload.edges "
                                                "says which).")] = None,
) -> TransmitAccepted:
    settings = state.settings
    check_form((await request.form()).multi_items(), FORM_FIELDS)  # unknown, repeated, empty: 422
    t0 = time.perf_counter()
    files = await read_uploads(settings.max_upload_bytes, image=image, label=label, instance=instance)
    codec, codec_params = check_choices(params, files)
    job_id = params.id or new_job_id()
    bind_job(job_id)
    owner = auth.client_identity(request)

    async with state.encode_slots.slot():  # 503 + Retry-After when all slots stay busy
        frame, timings = await run_in_threadpool(encode_upload, state, files, params, job_id, t0)
    ack = await send_frame(state, frame, owner, timings)
    return accepted_reply(settings, params, job_id, frame, ack, timings, codec, codec_params,
                          segmented="label" not in files)
