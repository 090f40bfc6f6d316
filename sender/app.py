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
limit: 429 with ``Retry-After`` (:mod:`gesco.serving.auth`, ``docs/security.md``).
``GET /healthz`` (alive), ``GET /readyz`` (segmenter loaded, channel reachable) and
``GET /metrics`` (Prometheus) need no key.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import grpc
from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, field_validator, model_validator

from gesco import __version__
from gesco.channel import CHANNELS, channel_catalogue, parse_channel_params
from gesco.codecs import DEFAULT_CODEC
from gesco.codecs.lossless import LOSSLESS_CODECS
from gesco.diffusion.samplers import SAMPLERS
from gesco.errors import GescoInputError
from gesco.link import (
    ImageTooLargeError,
    Segmenter,
    TransmitSettings,
    UnsupportedImageError,
    budget_record,
    codec_choice,
    decode_image,
    decode_label_map,
    encode_image_frame,
    upload_report,
)
from gesco.semantics.classes import ClassSpace, get_class_space
from gesco.serving import auth, tls
from gesco.serving.api_docs import add_home, add_offline_docs
from gesco.serving.body_limit import BodyLimit
from gesco.serving.http_errors import install_validation_handler
from gesco.serving.logs import bind_job
from gesco.serving.metrics import ServiceMetrics, install_http
from gesco.serving.models import BitBudget, UploadReport
from gesco.serving.probes import grpc_health_on
from gesco.serving.readiness import READYZ_RESPONSES, NotReady, run_checks
from gesco.transmit_fields import FIELDS, default
from gesco.wire import ACK_ACCEPTED, SemanticFrame, TransmitAck, gesco_pb2_grpc
from gesco.wire.frames import FRAME_ID_PATTERN, check_frame_id
from sender.cors import allow_viewer
from sender.guards import EncodeSlots, check_form
from sender.openapi import strict_transmit_schema
from sender.settings import SenderSettings

log = logging.getLogger("gesco.sender")

ChannelName = Literal[tuple(sorted(CHANNELS))]  # type: ignore[valid-type]
CodecName = Literal[tuple(sorted(LOSSLESS_CODECS))]  # type: ignore[valid-type]
SamplerName = Literal[SAMPLERS]  # type: ignore[valid-type]


def form_field(name: str) -> Any:
    """The form field of transmission setting ``name``: default, range and description from
    :data:`gesco.transmit_fields.FIELDS` (the one table of these settings)."""
    spec = FIELDS[name]
    bounds = {} if spec.ge is None else {"ge": spec.ge, "le": spec.le}
    if isinstance(spec.default, float):
        bounds["allow_inf_nan"] = False
    return Field(spec.default, description=spec.description, **bounds)


class TransmitParams(BaseModel):
    """Parameters of one transmission (multipart form fields besides the files)."""

    psnr_db: float = form_field("psnr_db")
    channel: ChannelName = Field(
        default("channel"), description="Channel model (docs/channel.md): " + channel_catalogue() + ". 'authors-code' "
        "only knows its nominal PSNRs 1, 5, 10, 15, 20, 25, 30, 100 dB."
    )
    channel_params: str = Field(
        "", description="Parameters of the channel model as a JSON object, e.g. {\"block_length\": 64, "
        "\"equalizer\": \"zf\"} for 'rayleigh' or {\"model\": \"C\", \"delay_spread_ns\": 300} for 'tdl'; "
        "empty = the model's defaults. Unknown parameters are refused (422)."
    )
    codec: CodecName = Field(DEFAULT_CODEC, description="Lossless map codec (the inner codec when downsample > 1).")
    downsample: int = Field(
        1, ge=1, le=64, description="Block-downsampling factor k of the maps before coding (1 = full maps; "
        "k > 1 sends ceil(H/k) x ceil(W/k) maps: fewer bits and channel uses, lossy)."
    )
    guidance_scale: float = form_field("guidance_scale")
    sampler: SamplerName = form_field("sampler")
    steps: int = form_field("steps")
    seed: int = form_field("seed")
    fds: bool = form_field("fds")
    id: str | None = Field(
        None, pattern=f"^{FRAME_ID_PATTERN.pattern}$",
        description="Job id chosen by the client (1-128 letters, digits, '.', '_', '-'; default: a random "
        "128-bit id). Repeating a transmission with the same id and the same files and settings returns the job "
        "stored by the first attempt (a safe retry after a 503 / 504); another input with a stored id is 409."
    )

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_frame_id(value)
            except GescoInputError as e:
                raise ValueError(str(e)) from None
        return value

    @model_validator(mode="after")
    def _check_channel_params(self) -> TransmitParams:
        parse_channel_params(self.channel, self.channel_params)  # ChannelParameterError (a ValueError) -> 422
        return self

    def transmit_settings(self) -> TransmitSettings:
        return TransmitSettings(
            psnr_db=self.psnr_db, channel=self.channel, sampler=self.sampler, steps=self.steps,
            guidance_scale=self.guidance_scale, seed=self.seed, fds=self.fds,
            channel_params=parse_channel_params(self.channel, self.channel_params),
        )


FILE_FIELDS = ("image", "label", "instance")
FORM_FIELDS = frozenset(TransmitParams.model_fields) | frozenset(FILE_FIELDS)


class SenderTimings(BaseModel):
    """Seconds spent in each sender stage."""

    decode_s: float = Field(description="Checking and decoding the uploaded files.")
    resize_s: float = Field(description="Resizing to the model resolution.")
    segment_s: float = Field(description="Segmenting the image (0 when a label map was uploaded).")
    encode_s: float = Field(description="One-hot encoding, present classes, coding the maps (section 3.2).")
    reference_s: float = Field(description="Encoding the image as PNG and JPEG for the budget.")
    channel_s: float = Field(description="Channel.Transmit round trip: bits, noise, forwarding, durable store at the receiver.")


class TransmitAccepted(BaseModel):
    """Reply of POST /transmit: the job is stored at the receiver."""

    id: str = Field(description="Transmission / job id.")
    status: Literal["accepted"] = Field(description="Always 'accepted' (the receiver stored the job).")
    result_url: str = Field(description="Receiver URL of the job's status and results (poll it).")
    image_url: str = Field(description="Receiver URL of the generated image once the job is done.")
    segmented: bool = Field(description="True when the label map came from the sender's segmenter.")
    upload: UploadReport = Field(description="Aspect-ratio handling and, for a segmented upload, the segmenter's "
                                 "confidence; `out_of_domain` warns that the result will not resemble the upload.")
    warnings: list[str] = Field(description="Notes the user should read (aspect handling, out-of-domain upload).")
    settings: dict[str, Any] = Field(description="The transmission settings as sent in the frame.")
    budget: BitBudget
    timings: SenderTimings


class Health(BaseModel):
    status: Literal["ok"] = Field(description="The sender is up.")
    version: str = Field(description="gesco version.")
    resolution: list[int] = Field(description="[H, W] that uploads are resized to.")
    class_space: str = Field(description="Class space of the label ids.")
    segmenter: str = Field(description="'ready', or why uploads need a label map.")
    aspect: str = Field(description="How uploads of another aspect ratio are fitted: 'crop', 'letterbox' or 'stretch'.")
    channel_address: str = Field(description="Where frames go (gRPC).")


class ErrorDetail(BaseModel):
    detail: str = Field(description="What went wrong.")


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


class ChannelClient:
    """gRPC client of ``Channel.Transmit`` with the settings' deadline.

    Args:
        api_key: sent as ``authorization: Bearer`` metadata (channel with keys on).
        tls_ca: CA of the channel's TLS certificate (``None``: plaintext).
        tls_cert, tls_key: this client's certificate for a channel that requires one (mutual TLS).
        reconnect_backoff_ms, max_reconnect_backoff_ms: reconnection to a restarted channel
            (:func:`gesco.serving.grpc_kit.channel_options`).
    """

    def __init__(self, address: str, timeout_s: float, max_message_bytes: int, api_key: str | None = None,
                 tls_ca=None, reconnect_backoff_ms: int | None = None, max_reconnect_backoff_ms: int | None = None,
                 tls_cert=None, tls_key=None) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.api_key = api_key
        self._channel = tls.client_channel(address, max_message_bytes, tls_ca, reconnect_backoff_ms,
                                           max_reconnect_backoff_ms, client_cert=tls_cert, client_key=tls_key)
        self._stub = gesco_pb2_grpc.ChannelStub(self._channel)

    def transmit(self, frame: SemanticFrame, owner: str | None = None) -> TransmitAck:
        """Send ``frame``; ``owner`` (the client key's identity) travels as metadata to the receiver."""
        return self._stub.Transmit(frame, timeout=self.timeout_s, metadata=auth.bearer_metadata(self.api_key, owner))

    def health(self, timeout: float = 1.0) -> str:
        """The channel's gRPC health status over this client's connection (TLS included)."""
        return grpc_health_on(self._channel, timeout=timeout)

    def close(self) -> None:
        self._channel.close()


def http_error_for_rpc(e: grpc.RpcError, address: str, retry_after_s: int = 5) -> HTTPException:
    """Map a failed ``Channel.Transmit`` to an HTTP error whose message says which hop failed."""
    code, detail = e.code(), e.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        if "receiver" in detail:
            return HTTPException(503, f"the receiver is unavailable (reported by the channel): {detail}")
        return HTTPException(503, f"the channel service at {address} is unavailable: {detail}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return HTTPException(504, f"no acknowledgement from the channel / receiver in time: {detail}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return HTTPException(422, f"the frame was refused: {detail}")
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return HTTPException(409, detail)
    if code == grpc.StatusCode.FAILED_PRECONDITION:  # e.g. the channel lacks an optional extra
        return HTTPException(503, f"the channel cannot serve this request: {detail}")
    if code == grpc.StatusCode.PERMISSION_DENIED and "belongs to another client" in detail:
        # a client-chosen id that another API key stored: the id is taken (nothing was stored)
        return HTTPException(409, f"this id is taken by another client's job; choose another id ({detail})")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:  # the receiver's queue is full: nothing was stored
        return HTTPException(503, f"the receiver is at capacity: {detail}", headers={"Retry-After": str(retry_after_s)})
    return HTTPException(502, f"the channel failed ({code.name}): {detail}")


@dataclass
class SenderState:
    """What the handlers share, built once by :func:`create_app` (``app.state.sender``).

    Attributes:
        settings: the service's settings.
        channel: the client of the channel service.
        slot: the segmenter, or why there is none.
        metrics: the Prometheus metrics of this service.
        encode_slots: the cap on concurrent decode + encode work.
        space, resolution: the model's class space and ``(H, W)``.
        injected_segmenter: a segmenter was handed to :func:`create_app` (tests), so none is loaded.
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


def get_settings(request: Request) -> SenderSettings:
    """Dependency: the app's settings."""
    return get_state(request).settings


def get_channel(request: Request) -> ChannelClient:
    """Dependency: the channel client."""
    return get_state(request).channel


def get_segmenter_slot(request: Request) -> SegmenterSlot:
    """Dependency: the segmenter (or why there is none)."""
    return get_state(request).slot


State = Annotated[SenderState, Depends(get_state)]

TRANSMIT_ERRORS = {code: {"model": ErrorDetail, "description": text} for code, text in {
    401: "No or unknown API key (only when the sender is configured with keys).",
    403: "A browser request from another origin.",
    409: "A job with this id exists already at the receiver.",
    413: "A file or the image is over the size limit.",
    429: "Too many requests from this client; retry after the Retry-After header's seconds.",
    415: "A file is not a PNG or JPEG image (label / instance maps: not a PNG).",
    422: "Corrupt image, maps of the wrong shape or with unknown class ids, bad parameters.",
    503: "The channel or the receiver is down, the receiver's queue is full or the sender busy (with "
         "Retry-After), or no segmenter for an upload without a label map.",
    504: "The channel or the receiver did not answer before the deadline.",
}.items()}

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
            raise _input_error(name, e) from None
    return decoded


def encode_upload(state: SenderState, files: dict[str, bytes], params: TransmitParams, job_id: str, codec: str,
                  codec_params: dict, t0: float) -> tuple[SemanticFrame, dict[str, float]]:
    """Decode the uploads, segment the image when no label map came, and code the frame
    (:func:`gesco.link.encode_image_frame`); runs in a worker thread. Returns the frame and
    the stage timings (``decode`` from ``t0``)."""
    decoded = decode_uploads(files, state.settings)
    decode_s = time.perf_counter() - t0
    seg = state.slot.get() if "label" not in files else None  # 503 when there is none
    try:
        frame, timings = encode_image_frame(
            decoded["image"], decoded.get("label"), decoded.get("instance"),
            space=state.space, resolution=state.resolution, frame_id=job_id, codec=codec, codec_params=codec_params,
            transmit=params.transmit_settings(), segmenter=seg, jpeg_quality=state.settings.jpeg_quality,
            aspect=state.settings.aspect, domain_threshold=state.settings.domain_threshold,
            derive_edges=state.settings.derive_edges, instance_ids=state.settings.instance_ids,
        )
    except GescoInputError as e:
        raise _input_error(None, e) from None
    timings["decode"] = decode_s
    return frame, timings


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
    settings, channel = state.settings, state.channel
    check_form((await request.form()).multi_items(), FORM_FIELDS)  # unknown, repeated, empty: 422
    t0 = time.perf_counter()
    files = await read_uploads(settings.max_upload_bytes, image=image, label=label, instance=instance)
    try:
        codec, codec_params = codec_choice(params.codec, params.downsample)
    except GescoInputError as e:
        raise HTTPException(422, str(e)) from None
    if "instance" in files and "label" not in files:
        raise HTTPException(422, "instance: an instance map needs its label map (upload 'label' too)")
    job_id = params.id or new_job_id()
    bind_job(job_id)
    owner = auth.client_identity(request)

    async with state.encode_slots.slot():  # 503 + Retry-After when all slots stay busy
        frame, timings = await run_in_threadpool(encode_upload, state, files, params, job_id, codec, codec_params, t0)
    t1 = time.perf_counter()
    try:
        ack = await run_in_threadpool(channel.transmit, frame, owner)
    except grpc.RpcError as e:
        log.warning("transmission %s failed: %s %s", job_id, e.code().name, e.details())
        raise http_error_for_rpc(e, channel.address, settings.retry_after_s) from None
    timings["channel"] = time.perf_counter() - t1
    if ack.status != ACK_ACCEPTED:
        raise HTTPException(422, f"the channel refused the frame: {ack.message}")
    state.metrics.observe_stages(timings, {k: k for k in ("decode", "resize", "segment", "encode", "reference", "channel")})
    state.metrics.count_transmission(ack.report.payload_bits, ack.report.header_bits, ack.report.channel_uses)
    log.info("transmission %s accepted: %d bits", job_id, ack.report.payload_bits + ack.report.header_bits)
    return accepted_reply(settings, params, job_id, frame, ack, timings, codec, codec_params,
                          segmented="label" not in files)


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
        settings=params.transmit_settings().to_dict() | {"codec": codec, "codec_params": codec_params},
        budget=BitBudget(**budget_record(frame, ack.report)),
        timings=SenderTimings(
            decode_s=timings["decode"], resize_s=timings["resize"], segment_s=timings["segment"],
            encode_s=timings["encode"], reference_s=timings["reference"], channel_s=timings["channel"],
        ),
    )


def create_app(
    settings: SenderSettings,
    *,
    channel: ChannelClient | None = None,
    segmenter: Segmenter | None = None,
) -> FastAPI:
    """Build the sender app: its shared state, middleware (metrics, body limit, CORS for the
    viewer, keys / origins / rate limits) and the handlers of :data:`router`.

    Args:
        settings: :class:`SenderSettings`.
        channel: the channel client (default: one to ``settings.channel_address``).
        segmenter: a segmenter to use instead of loading ``settings.segmenter``.
    """
    own_channel = channel is None
    keys = auth.ApiKeys(auth.read_keys(settings.api_keys, settings.api_keys_file))
    channel = channel or ChannelClient(
        settings.channel_address, settings.channel_timeout_s, settings.max_message_bytes,
        api_key=auth.read_secret(settings.channel_api_key, settings.channel_api_key_file), tls_ca=settings.channel_tls_ca,
        reconnect_backoff_ms=settings.reconnect_backoff_ms, max_reconnect_backoff_ms=settings.max_reconnect_backoff_ms,
        tls_cert=settings.channel_tls_cert, tls_key=settings.channel_tls_key,
    )
    state = SenderState(
        settings=settings, channel=channel, slot=SegmenterSlot(segmenter), metrics=ServiceMetrics("sender"),
        encode_slots=EncodeSlots(settings.max_concurrent_encodes, settings.encode_wait_s, settings.retry_after_s),
        space=get_class_space(settings.class_space), resolution=(settings.height, settings.width),
        injected_segmenter=segmenter is not None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if segmenter is None and settings.load_segmenter:
            await run_in_threadpool(state.slot.load, settings.segmenter)
        elif segmenter is None:
            state.slot.error = "disabled by the settings (load_segmenter = false)"
        yield
        if own_channel:
            channel.close()

    app = FastAPI(
        title="gesco sender",
        version=__version__,
        description="Send an image as its semantic maps over a simulated noisy channel "
        f"(generative semantic communication, GESCO). Results: {settings.receiver_url.rstrip('/')}/result/<id>; "
        f"in a browser, the result viewer: {settings.receiver_url.rstrip('/')}/viewer",
        lifespan=lifespan,
        docs_url=None,  # served offline by add_offline_docs
        redoc_url=None,
    )
    add_offline_docs(app)
    add_home(app, "/docs")  # a browser pointed at the sender gets its API docs
    app.state.sender = state
    # kept for callers that read them directly
    app.state.settings, app.state.channel, app.state.segmenter, app.state.metrics = (
        settings, channel, state.slot, state.metrics)
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
    install_validation_handler(app)
    app.include_router(router)
    strict_transmit_schema(app)  # the schema forbids other form fields, as the endpoint does
    install_http(app, state.metrics)  # outermost: counts the 413s above and the guard's 401 / 403 / 429 too
    return app


def new_job_id() -> str:
    """A job id: 128 random bits from the OS's CSPRNG as 32 hex digits (unguessable, unlike a uuid4's 122)."""
    return secrets.token_hex(16)


def _input_error(field: str | None, e: GescoInputError) -> HTTPException:
    """HTTP status for bad input: 415 not an image, 413 too large, 422 otherwise."""
    prefix = f"{field}: " if field else ""
    if isinstance(e, UnsupportedImageError):
        return HTTPException(415, prefix + str(e))
    if isinstance(e, ImageTooLargeError):
        return HTTPException(413, prefix + str(e))
    return HTTPException(422, prefix + str(e))
