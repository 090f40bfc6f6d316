"""The stages of one transmission at the sender, in the order ``POST /transmit`` runs them.

1. :func:`read_uploads`: the bytes of each uploaded file (413 over the size limit);
2. :func:`check_choices`: the map codec (422) and a label map with any instance map (422);
3. :func:`encode_upload` (in a worker thread): :func:`decode_uploads` (413 / 415 / 422
   naming the file), segment the image when no label map came (503 without a segmenter),
   and code the frame (:func:`gesco.link.encode_image_frame`);
4. :func:`send_frame`: ``Channel.Transmit`` (:func:`sender.errors.http_error_for_rpc` on
   failure; 422 when the channel refuses the frame), then the metrics;
5. :func:`accepted_reply`: the 202 body.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import grpc
from fastapi import HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool

from gesco.errors import GescoInputError
from gesco.link import budget_record, codec_choice, decode_image, decode_label_map, encode_image_frame, upload_report
from gesco.wire import ACK_ACCEPTED, SemanticFrame, TransmitAck
from gesco_net.http_errors import input_error
from gesco_net.models import BitBudget, UploadReport
from sender.errors import http_error_for_rpc
from sender.schemas import SenderTimings, TransmitAccepted, TransmitParams
from sender.settings import SenderSettings
from sender.state import SenderState

log = logging.getLogger("gesco.sender")

#: the sender's stages as timed in ``timings`` (and as named in the stage metrics)
STAGES = ("decode", "resize", "segment", "encode", "reference", "channel")


def new_job_id() -> str:
    """A job id: 128 random bits from the OS's CSPRNG as 32 hex digits (unguessable, unlike a uuid4's 122)."""
    return secrets.token_hex(16)


async def read_uploads(max_bytes: int, **uploads: UploadFile | None) -> dict[str, bytes]:
    """The bytes of each given upload; 413 for one over ``max_bytes`` (at most that much is read)."""
    files = {}
    for name, upload in uploads.items():
        if upload is not None:
            data = await upload.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise HTTPException(413, f"{name}: the file is over the limit of {max_bytes} bytes")
            files[name] = data
    return files


def check_choices(params: TransmitParams, files: dict[str, bytes]) -> tuple[str, dict]:
    """The map codec and its parameters for ``params`` (:func:`gesco.link.codec_choice`);
    422 for an unusable codec / downsampling pair or an instance map without its label map."""
    try:
        codec, codec_params = codec_choice(params.codec, params.downsample)
    except GescoInputError as e:
        raise HTTPException(422, str(e)) from None
    if "instance" in files and "label" not in files:
        raise HTTPException(422, "instance: an instance map needs its label map (upload 'label' too)")
    return codec, codec_params


def decode_uploads(files: dict[str, bytes], settings: SenderSettings) -> dict[str, Any]:
    """Decode the image and the optional label / instance maps with the settings' limits
    (413 / 415 / 422 naming the file)."""
    limits = (settings.max_upload_bytes, settings.max_image_pixels, settings.max_decoded_bytes)
    decoded = {}
    for name, data in files.items():
        try:
            if name == "image":
                decoded[name] = decode_image(data, *limits)
            else:
                decoded[name] = decode_label_map(data, "label map" if name == "label" else "instance map", *limits)
        except GescoInputError as e:
            raise input_error(name, e) from None
    return decoded


def encode_upload(state: SenderState, files: dict[str, bytes], params: TransmitParams, job_id: str,
                  t0: float) -> tuple[SemanticFrame, dict[str, float]]:
    """Decode the uploads, segment the image when no label map came, and code the frame
    (:func:`gesco.link.encode_image_frame`, its codec from the transmission settings, as
    :func:`check_choices` checked them); runs in a worker thread. Returns the frame and
    the stage timings (``decode`` from ``t0``)."""
    decoded = decode_uploads(files, state.settings)
    decode_s = time.perf_counter() - t0
    seg = state.slot.get() if "label" not in files else None  # 503 when there is none
    try:
        frame, timings = encode_image_frame(
            decoded["image"], decoded.get("label"), decoded.get("instance"),
            space=state.space, resolution=state.resolution, frame_id=job_id,
            transmit=params.transmit_settings(), unset=params.receiver_resolved(), segmenter=seg,
            jpeg_quality=state.settings.jpeg_quality,
            aspect=state.settings.aspect, domain_threshold=state.settings.domain_threshold,
            derive_edges=state.settings.derive_edges, instance_ids=state.settings.instance_ids,
        )
    except GescoInputError as e:
        raise input_error(None, e) from None
    timings["decode"] = decode_s
    return frame, timings


async def send_frame(state: SenderState, frame: SemanticFrame, owner: str | None,
                     timings: dict[str, float]) -> TransmitAck:
    """Send ``frame`` through the channel (in a worker thread), add its round trip to
    ``timings["channel"]`` and count it in the metrics.

    Raises:
        HTTPException: :func:`sender.errors.http_error_for_rpc` for a failed call; 422
            when the channel answers but refuses the frame.
    """
    channel = state.channel
    t1 = time.perf_counter()
    try:
        ack = await run_in_threadpool(channel.transmit, frame, owner)
    except grpc.RpcError as e:
        log.warning("transmission %s failed: %s %s", frame.id, e.code().name, e.details())
        raise http_error_for_rpc(e, channel.address, state.settings.retry_after_s) from None
    timings["channel"] = time.perf_counter() - t1
    if ack.status != ACK_ACCEPTED:
        raise HTTPException(422, f"the channel refused the frame: {ack.message}")
    state.metrics.observe_stages(timings, {k: k for k in STAGES})
    state.metrics.count_transmission(ack.report.payload_bits, ack.report.header_bits, ack.report.channel_uses)
    log.info("transmission %s accepted: %d bits", frame.id, ack.report.payload_bits + ack.report.header_bits)
    return ack


def sent_settings(params: TransmitParams) -> dict[str, Any]:
    """The settings as sent in the frame: those the client left to the receiver are not there."""
    left = set(params.receiver_resolved())
    return {k: v for k, v in params.transmit_settings().to_dict().items() if k not in left}


def accepted_reply(settings: SenderSettings, params: TransmitParams, job_id: str, frame: SemanticFrame,
                   ack: TransmitAck, timings: dict[str, float], codec: str, codec_params: dict,
                   segmented: bool) -> TransmitAccepted:
    """The 202 reply: links, upload report and warnings, settings, bit budget, timings."""
    result_url = f"{settings.receiver_url.rstrip('/')}/result/{job_id}"
    upload = upload_report(frame.upload)
    if upload["out_of_domain"]:
        log.info("transmission %s: out of domain (segmenter confidence %.3f)", job_id, upload["domain_score"])
    return TransmitAccepted(
        id=job_id,
        status="accepted",
        result_url=result_url,
        image_url=f"{result_url}/image.png",
        segmented=segmented,
        upload=UploadReport(**upload),
        warnings=upload["notes"],
        settings=sent_settings(params) | {"codec": codec, "codec_params": codec_params},
        budget=BitBudget(**budget_record(frame, ack.report)),
        timings=SenderTimings(**{f"{stage}_s": timings[stage] for stage in STAGES}),
    )
