"""The receiver's result routes: ``GET /healthz``, ``/readyz``, ``/result/{id}`` and its PNGs.

With API keys configured, a job is shown only to the key that created it at the sender
(:func:`find_job`: 404 unknown, 403 another key's). Links are built from the configured
public URL (``ReceiverState.link_base``), never from the request's ``Host`` header. The
handlers carry no docstrings on purpose: FastAPI would publish them as the operations'
descriptions, and the OpenAPI document is pinned (``tests/services/test_openapi_frozen.py``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import FileResponse

from gesco import __version__
from gesco_net import auth
from gesco_net.models import BitBudget, UploadReport
from gesco_net.readiness import READYZ_RESPONSES, run_checks
from receiver.schemas import (
    ErrorDetail,
    Health,
    JobLinks,
    JobProgress,
    JobResult,
    JobSampling,
    JobSettings,
    JobTimings,
    job_settings,
)
from receiver.state import ReceiverState, State
from receiver.store import DENOISED_FILE, IMAGE_FILE, RECEIVED_FILE, Job, JobStatus
from receiver.times import iso_time

JobId = Annotated[str, Path(description="The transmission / job id returned by the sender's POST /transmit.")]

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
        sampling=JobSampling(mean_temperature=job.timings["mean_temperature"]) if "mean_temperature" in job.timings
        else None,
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
