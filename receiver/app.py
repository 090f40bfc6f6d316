"""The receiver's REST API (FastAPI): job status, bit budget, timings and result images.

With API keys configured (:mod:`gesco_net.auth`), ``/result/...`` needs
``Authorization: Bearer <key>`` (401 otherwise) and shows a job only to the key that
created it at the sender (403 otherwise). Result links are built from the configured
public URL (or as paths), never from the request's ``Host`` header. ``GET /healthz``
(alive), ``GET /readyz`` (model, store, worker, gRPC) and ``GET /metrics`` need no key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Path, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, create_model

from gesco import __version__
from gesco.transmit_fields import FIELDS, default
from gesco_net import auth
from gesco_net.api_docs import add_home, add_offline_docs
from gesco_net.body_limit import BodyLimit
from gesco_net.http_errors import install_validation_handler
from gesco_net.metrics import ServiceMetrics, install_http
from gesco_net.models import BitBudget, UploadReport
from gesco_net.readiness import READYZ_RESPONSES, run_checks
from receiver.progress import ProgressBoard
from receiver.state import ReceiverState, State
from receiver.store import DENOISED_FILE, IMAGE_FILE, RECEIVED_FILE, BaseJobStore, Job, JobStatus
from receiver.times import iso_time
from receiver.viewer import MAX_LABEL_BYTES, content_security_policy
from receiver.viewer import router as viewer_router

JobId = Annotated[str, Path(description="The transmission / job id returned by the sender's POST /transmit.")]


def _job_field(name: str) -> tuple[Any, Any]:
    """The job record's field of transmission setting ``name`` (type and meaning from
    :data:`gesco.transmit_fields.FIELDS`); every value is the one the job ran with, so required."""
    spec = FIELDS[name]
    if spec.kind is dict:
        return dict[str, str], Field(default_factory=dict, description=spec.description + " As sent (text).")
    return spec.kind, Field(description=spec.description)


#: The settings the job was sent with: one field per entry of :data:`gesco.transmit_fields.FIELDS`,
#: unset wire fields resolved (the receiver's model's recommended sampling, else the declared default).
JobSettings = create_model(
    "JobSettings", __doc__="The settings the job was sent with (meanings: :data:`gesco.transmit_fields.FIELDS`; "
    "fields the sender left unset hold the value the receiver applied).",
    **{name: _job_field(name) for name in FIELDS},
)


def job_settings(job: Job) -> dict[str, Any]:
    """A stored job's settings; a job stored before the codec was recorded there takes its
    codec and downsampling factor from its bit budget (``codec``, ``codec_params``)."""
    settings = dict(job.settings)
    if "codec" not in settings:
        params = job.budget.get("codec_params") or {}
        downsampled = job.budget.get("codec") == "downsample"
        settings["codec"] = (params.get("inner") or default("codec")) if downsampled else job.budget.get("codec")
        settings["downsample"] = int(params.get("factor", 1)) if downsampled else 1
    return settings


class JobTimings(BaseModel):
    """Seconds spent in each receiver stage (fields appear as the job progresses)."""

    queue_wait_s: float | None = Field(None, description="From storing the job to the worker claiming it.")
    fds_s: float | None = Field(None, description="Unpacking the symbols, upsampling, FDS and Pad.")
    sampling_s: float | None = Field(None, description="The batch's sampling call (shared by batch_size jobs).")
    png_s: float | None = Field(None, description="Encoding and writing this job's PNGs.")
    total_s: float | None = Field(None, description="From storing the job to finishing it.")
    batch_size: int | None = Field(None, description="Jobs sampled together with this one (itself included).")
    device: str | None = Field(None, description="Device that sampled ('cpu', 'cuda:0', ...).")


class JobProgress(BaseModel):
    """Where a running job is (``receiver.progress``); null while queued or once finished."""

    stage: Literal["preparing", "sampling", "writing"] = Field(description="FDS and conditioning, sampling, or writing the PNGs.")
    step: int = Field(description="Network evaluations done in the batch's sampling call (k).")
    steps: int = Field(description="Network evaluations of the call (n; 0 until sampling starts).")
    elapsed_s: float = Field(description="Seconds since sampling started.")
    eta_s: float | None = Field(description="Estimated seconds until sampling ends: elapsed_s / k * (n - k); null before step 1.")
    batch_size: int = Field(description="Jobs sampled together with this one (itself included).")


class JobLinks(BaseModel):
    """URLs of the job's resources (the images only once the job is done)."""

    self: str = Field(description="This status document.")
    image: str | None = Field(None, description="The generated image (PNG).")
    received_maps: str | None = Field(None, description="Received maps before FDS, argmax over present classes, colour-coded (PNG).")
    denoised_maps: str | None = Field(None, description="Maps after FDS, argmax over present classes, colour-coded (PNG).")


class JobResult(BaseModel):
    """Status and results of one transmission at the receiver."""

    id: str = Field(description="The job id.")
    status: Literal["queued", "running", "done", "failed"] = Field(description="Where the job is.")
    reason: str | None = Field(None, description="Why the job failed (only when status is 'failed').")
    created_at: str = Field(description="When the job was stored (ISO 8601, UTC).")
    started_at: str | None = Field(None, description="When the worker claimed it last.")
    finished_at: str | None = Field(None, description="When it ended (done or failed).")
    attempts: int = Field(description="How many times a worker started it (more than 1 after a restart).")
    settings: JobSettings
    budget: BitBudget
    upload: UploadReport | None = Field(None, description="How the sender prepared the upload (aspect handling, "
                                        "segmenter confidence, out-of-domain warning); null for frames without it.")
    warnings: list[str] = Field(default_factory=list, description="Notes the user should read (from `upload`).")
    progress: JobProgress | None = Field(None, description="Sampling step k of n and an ETA while the job runs.")
    timings: JobTimings
    links: JobLinks


class Health(BaseModel):
    """Liveness and a summary of the receiver."""

    status: Literal["ok", "degraded"] = Field(description="'degraded' when the worker thread is not running.")
    version: str = Field(description="gesco version.")
    model: dict[str, Any] = Field(description="Class space, resolution, device and training steps of the diffusion "
                                  "model; for a distilled student also 'distilled': the guidance scale folded in and "
                                  "the samplers (and, for a progressive student, the step count) it runs.")
    jobs: dict[str, int] = Field(description="Number of jobs per status.")
    max_batch: int = Field(description="Most jobs per sampling call.")


class ErrorDetail(BaseModel):
    detail: str = Field(description="What went wrong.")


AUTH_ERRORS = {401: {"model": ErrorDetail, "description": "No or unknown API key (keys configured)."},
               403: {"model": ErrorDetail, "description": "The job belongs to another API key."},
               404: {"model": ErrorDetail, "description": "Unknown id."}}
PNG_RESPONSES = {200: {"content": {"image/png": {}}, "description": "PNG image."}, **AUTH_ERRORS,
                 409: {"model": ErrorDetail, "description": "The job is not done (queued, running or failed)."}}

router = APIRouter()


def find_job(state: ReceiverState, job_id: str, request: Request) -> Job:
    """The job ``job_id`` if the caller may read it: 404 unknown, 403 another key's job."""
    job = state.store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job with id {job_id[:80]!r}{'...' if len(job_id) > 80 else ''}")
    if state.keys.enabled and job.owner != auth.client_identity(request):
        raise HTTPException(403, f"job {job_id} belongs to another API key" if job.owner else
                            f"job {job_id} was stored without an API key; no key may read it")
    return job


def progress_of(state: ReceiverState, job: Job) -> JobProgress | None:
    """Sampling progress of a running job (``None`` otherwise)."""
    if state.progress is None or job.status != JobStatus.RUNNING:
        return None
    p = state.progress.get(job.id)
    return None if p is None else JobProgress(**p.to_dict())


def job_links(state: ReceiverState, request: Request, job: Job) -> JobLinks:
    """Links of a job's result and (once done) its images, under the configured base URL."""
    def url(name: str) -> str:
        return state.link_base + request.app.url_path_for(name, job_id=job.id)

    done = job.status == JobStatus.DONE
    return JobLinks(
        self=url("get_result"),
        image=url("get_image") if done else None,
        received_maps=url("get_received_maps") if done else None,
        denoised_maps=url("get_denoised_maps") if done else None,
    )


@router.get("/healthz", response_model=Health, summary="Liveness, model and queue summary")
def healthz(state: State) -> Health:
    alive = state.worker_alive()
    return Health(status="ok" if alive else "degraded", version=__version__, model=state.model_info,
                  jobs=state.store.counts(), max_batch=state.max_batch)


@router.get("/readyz", summary="Readiness: model loaded, store writable, worker and gRPC serving (503 otherwise)",
            responses=READYZ_RESPONSES)
def readyz(state: State):
    return run_checks(state.ready_checks)


@router.get("/result/{job_id}", response_model=JobResult, responses=AUTH_ERRORS,
            summary="Status, bit budget, timings and links of a transmission")
def get_result(job_id: JobId, request: Request, state: State) -> JobResult:
    job = find_job(state, job_id, request)
    return JobResult(
        id=job.id,
        status=job.status.value,
        reason=job.reason,
        created_at=iso_time(job.created_at),
        started_at=iso_time(job.started_at),
        finished_at=iso_time(job.finished_at),
        attempts=job.attempts,
        settings=JobSettings(**job_settings(job)),
        budget=BitBudget(**job.budget),
        upload=UploadReport(**job.upload) if job.upload else None,
        warnings=list(job.upload.get("notes", [])) if job.upload else [],
        progress=progress_of(state, job),
        timings=JobTimings(**{k: v for k, v in job.timings.items() if k in JobTimings.model_fields}),
        links=job_links(state, request, job),
    )


def file_response(state: ReceiverState, job_id: str, name: str, request: Request) -> FileResponse:
    """One of a done job's PNGs: 409 while it is not done, 404 when the file is missing."""
    job = find_job(state, job_id, request)
    if job.status != JobStatus.DONE:
        what = f"failed: {job.reason}" if job.status == JobStatus.FAILED else f"is {job.status.value}"
        raise HTTPException(409, f"job {job_id} {what}; its images exist once it is done")
    path = state.store.result_path(job_id, name)
    if path is None or not path.is_file():
        raise HTTPException(404, f"job {job_id} has no {name}")
    return FileResponse(path, media_type="image/png")


@router.get("/result/{job_id}/image.png", response_class=FileResponse, responses=PNG_RESPONSES,
            summary="The generated image")
def get_image(job_id: JobId, state: State, request: Request) -> FileResponse:
    return file_response(state, job_id, IMAGE_FILE, request)


@router.get("/result/{job_id}/received.png", response_class=FileResponse, responses=PNG_RESPONSES,
            summary="Received maps before FDS (argmax over present classes, colour-coded)")
def get_received_maps(job_id: JobId, state: State, request: Request) -> FileResponse:
    return file_response(state, job_id, RECEIVED_FILE, request)


@router.get("/result/{job_id}/denoised.png", response_class=FileResponse, responses=PNG_RESPONSES,
            summary="Maps after FDS (argmax over present classes, colour-coded)")
def get_denoised_maps(job_id: JobId, state: State, request: Request) -> FileResponse:
    return file_response(state, job_id, DENOISED_FILE, request)


def create_app(store: BaseJobStore, model_info: dict[str, Any], max_batch: int, worker_alive=lambda: True, *,
               sender_url: str = "http://127.0.0.1:8000", progress: ProgressBoard | None = None,
               keys: auth.ApiKeys | None = None, public_url: str | None = None, allowed_origins: str = "",
               metrics: ServiceMetrics | None = None, rate_limiter: auth.RateLimiter | None = None,
               ready_checks: dict[str, Callable[[], str | None]] | None = None) -> FastAPI:
    """Build the REST app: its shared state (:class:`receiver.state.ReceiverState`), middleware
    and the handlers of :data:`router` and of the viewer (:data:`receiver.viewer.router`).

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
