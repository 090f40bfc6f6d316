"""The result viewer: a web page on the receiver, its configuration, the history API.

The page (``GET /viewer``) is plain HTML + one script + one style sheet from
``receiver/viewer_files/`` (no build chain, nothing from the internet). In the browser it

* POSTs the upload straight to the sender's ``/transmit`` (cross-origin: the sender
  allows the origin of its ``receiver_url``, see :mod:`sender.cors`);
* polls this receiver's ``/result/{id}`` and shows its images (same origin);
* lists the history from the durable store (``GET /results``);
* shows the uploaded image from the file itself (``URL.createObjectURL``: the sender
  never forwards the image, only its semantic maps) and the uploaded label map
  colour-coded by ``POST /viewer/label.png`` (:func:`gesco.link.decode_label_map` and
  :func:`gesco.link.colour_labels`; nothing is stored).

Everything is served with a Content-Security-Policy that allows scripts, styles and
images from this origin only (plus ``blob:`` images for the upload) and connections to
this origin and the sender: the page cannot fetch anything from elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, File, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gesco.channel import CHANNELS
from gesco.diffusion.samplers import SAMPLERS
from gesco.errors import GescoInputError
from gesco.link import (
    DEFAULT_MAX_PIXELS,
    PSNR_RANGE_DB,
    ImageTooLargeError,
    colour_labels,
    decode_label_map,
    encode_png,
)
from gesco.semantics.classes import ClassSpace, get_class_space
from gesco.transmit_fields import FIELDS, default
from gesco_net.auth import client_identity
from gesco_net.http_errors import input_error
from receiver.state import State
from receiver.store import Job
from receiver.times import iso_time

#: the page's files (shipped as package data)
FILES_DIR = Path(__file__).with_name("viewer_files")
#: name -> media type of the files ``/viewer/static/{name}`` serves (nothing else is served)
STATIC_FILES = {"viewer.js": "text/javascript", "viewer.css": "text/css", "favicon.png": "image/png"}
#: PSNRs (dB) of the compare view: the paper's Fig. 9 sweep
COMPARE_PSNRS_DB = (1.0, 5.0, 10.0, 20.0, 100.0)
#: largest label map the page may ask to colour-code
MAX_LABEL_BYTES = 20 * 1024 * 1024


class ClassInfo(BaseModel):
    id: int
    name: str
    color: list[int] = Field(description="RGB, 0-255.")


class ViewerConfig(BaseModel):
    """What the page needs to build its form (``GET /viewer/config.json``)."""

    sender_url: str = Field(description="Base URL of the sender as the browser reaches it (POST /transmit).")
    class_space: str
    resolution: list[int] = Field(description="[H, W] of the model (uploads are resized to it).")
    classes: list[ClassInfo]
    samplers: list[str]
    default_sampler: str
    default_steps: int
    channels: list[str]
    psnr_range_db: list[float]
    compare_psnrs_db: list[float]
    appearance_modes: list[str] = Field(description="Modes of the appearance side channel (beyond the paper; "
                                        "'off', the paper's setting, first and the default).")
    appearance_bits_default: int = Field(description="Default bits per colour component of the side channel.")
    appearance_bits_range: list[int] = Field(description="[min, max] bits per colour component.")
    appearance_repeat_default: int = Field(description="Default repeat of the side channel's bits (0: the sender "
                                           "chooses it from the PSNR and channel).")
    appearance_repeat_range: list[int] = Field(description="[min, max] of the repeat field (0: chosen by the sender).")


class ResultSummary(BaseModel):
    """One line of the history."""

    id: str
    status: str
    created_at: str
    psnr_db: float | None = None
    channel: str | None = None
    sampler: str | None = None
    steps: int | None = None
    seed: int | None = None
    total_bits: int | None = None
    measured_snr_db: float | None = None
    url: str = Field(description="The result document (GET /result/{id}).")


class ResultList(BaseModel):
    """``GET /results``: the newest results first."""

    results: list[ResultSummary]


def sender_origin(sender_url: str) -> str:
    """``scheme://host[:port]`` of the sender's URL (for the page's Content-Security-Policy)."""
    parts = urlsplit(sender_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"sender_url must be an http(s) URL, got {sender_url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(sender_url: str) -> str:
    """Only this origin for scripts, styles and images (``blob:`` for the upload); connections to it and the sender."""
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
            f"connect-src 'self' {sender_origin(sender_url)}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


def _colour_png(data: bytes, space: ClassSpace) -> bytes:
    """PNG of an uploaded label map in the class space's colours (runs off the event loop)."""
    ids = decode_label_map(data, "label map", MAX_LABEL_BYTES, DEFAULT_MAX_PIXELS)
    return encode_png(colour_labels(ids, space))


def model_space(model_info: dict[str, Any]) -> ClassSpace:
    """The class space of the receiver's model; 503 when its description lacks the class
    space or the resolution (the page cannot be configured without them)."""
    if "class_space" not in model_info or "resolution" not in model_info:
        raise HTTPException(503, f"the receiver's model description has no class space / resolution: {model_info}")
    return get_class_space(model_info["class_space"])


def page_file(name: str, media_type: str, policy: str) -> FileResponse:
    """One of the page's files from :data:`FILES_DIR`, under the Content-Security-Policy ``policy``."""
    return FileResponse(FILES_DIR / name, media_type=media_type,
                        headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"})


def result_summary(job: Job, url: str) -> ResultSummary:
    """A job as one line of the history (``url``: its result document)."""
    s, b = job.settings, job.budget
    return ResultSummary(
        id=job.id, status=job.status.value, created_at=iso_time(job.created_at),
        psnr_db=s.get("psnr_db"), channel=s.get("channel"), sampler=s.get("sampler"), steps=s.get("steps"),
        seed=s.get("seed"), total_bits=b.get("total_bits"), measured_snr_db=b.get("measured_snr_db"), url=url,
    )


#: the viewer's routes and the history API (included by :func:`receiver.app.create_app`); the
#: handlers carry no docstrings, which FastAPI would publish (the OpenAPI document is pinned)
router = APIRouter()


@router.get("/viewer", response_class=FileResponse, summary="The result viewer (HTML page)")
def viewer_page(state: State) -> FileResponse:
    return page_file("index.html", "text/html; charset=utf-8", state.page_policy)


@router.get("/viewer/static/{name}", response_class=FileResponse, summary="The viewer's script and style sheet",
            responses={404: {"description": "Not one of the viewer's files."}})
def viewer_static(name: str, state: State) -> FileResponse:
    if name not in STATIC_FILES:
        raise HTTPException(404, f"the viewer has no file {name!r}")
    return page_file(name, STATIC_FILES[name], state.page_policy)


@router.get("/viewer/config.json", response_model=ViewerConfig, summary="Settings the viewer page needs")
def viewer_config(state: State) -> ViewerConfig:
    space = model_space(state.model_info)
    return ViewerConfig(
        sender_url=state.sender_url.rstrip("/"),
        class_space=space.name,
        resolution=list(state.model_info["resolution"]),
        classes=[ClassInfo(id=i, name=n, color=list(c)) for i, (n, c) in enumerate(zip(space.names, space.colors))],
        samplers=list(SAMPLERS),
        # the receiver's defaults (its model card's recommended sampling, else the declared ones)
        default_sampler=state.model_info.get("default_sampling", {}).get("sampler", default("sampler")),
        default_steps=state.model_info.get("default_sampling", {}).get("steps", default("steps")),
        channels=sorted(CHANNELS),
        psnr_range_db=list(PSNR_RANGE_DB),
        compare_psnrs_db=list(COMPARE_PSNRS_DB),
        # the side channel's form fields, from their one declaration (gesco.transmit_fields.FIELDS)
        appearance_modes=list(FIELDS["appearance"].choices or ()),
        appearance_bits_default=default("appearance_bits"),
        appearance_bits_range=[int(FIELDS["appearance_bits"].ge), int(FIELDS["appearance_bits"].le)],
        appearance_repeat_default=default("appearance_repeat"),
        appearance_repeat_range=[int(FIELDS["appearance_repeat"].ge), int(FIELDS["appearance_repeat"].le)],
    )


@router.post(
    "/viewer/label.png", response_class=Response, summary="Colour-code an uploaded label map (nothing is stored)",
    responses={200: {"content": {"image/png": {}}}, 413: {"description": "Too large."},
               415: {"description": "Not a PNG."}, 422: {"description": "Not a map of this class space's ids."}},
)
async def colour_label_map(label: Annotated[UploadFile, File(description="PNG of class ids (8 or 16 bit).")],
                           state: State) -> Response:
    space = model_space(state.model_info)
    data = await label.read(MAX_LABEL_BYTES + 1)
    try:
        if len(data) > MAX_LABEL_BYTES:
            raise ImageTooLargeError(f"the file is over the limit of {MAX_LABEL_BYTES} bytes")
        # CPU work (decode, colour, encode: tens of ms for a large map) in a worker thread,
        # so that the event loop keeps serving /healthz and the API meanwhile
        png = await run_in_threadpool(_colour_png, data, space)
    except GescoInputError as e:
        raise input_error("label", e) from None  # the sender's statuses: 415 / 413 / 422
    return Response(png, media_type="image/png")


@router.get("/results", response_model=ResultList, summary="History: the newest results in the store")
def list_results(
    request: Request,
    state: State,
    limit: Annotated[int, Query(ge=1, le=500, description="Most results returned.")] = 50,
    before: Annotated[str | None, Query(description="Only results stored before this id (paging).")] = None,
) -> ResultList:
    if before is not None and state.store.get(before) is None:
        raise HTTPException(404, f"no job with id {before!r}")
    mine = state.keys.enabled  # with API keys, a client lists only its own jobs
    jobs = state.store.recent(limit, before, owner=client_identity(request), by_owner=mine)
    # links under the configured base, never from the Host header
    return ResultList(results=[
        result_summary(job, state.link_base + request.app.url_path_for("get_result", job_id=job.id)) for job in jobs])
