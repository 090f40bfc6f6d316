"""The receiver's REST models: the result document of ``GET /result/{id}`` and ``/healthz``.

:data:`JobSettings` is derived from :data:`gesco.transmit_fields.FIELDS` (one field per
transmission setting). The class names are the schema names of the OpenAPI document
(``tests/services/test_openapi_frozen.py`` pins it); the viewer's own models live in
:mod:`receiver.viewer`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from gesco.transmit_fields import FIELDS, default
from gesco_net.models import BitBudget, UploadReport
from receiver.store import Job


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
    codec and downsampling factor from its bit budget (``codec``, ``codec_params``), one stored
    before the appearance side channel existed its declared defaults (off)."""
    settings = dict(job.settings)
    if "codec" not in settings:
        params = job.budget.get("codec_params") or {}
        downsampled = job.budget.get("codec") == "downsample"
        settings["codec"] = (params.get("inner") or default("codec")) if downsampled else job.budget.get("codec")
        settings["downsample"] = int(params.get("factor", 1)) if downsampled else 1
    for name in ("appearance", "appearance_bits", "appearance_repeat"):  # stored before the side channel
        settings.setdefault(name, default(name))
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


class JobSampling(BaseModel):
    """What the worker's own settings added to the job's when it sampled it."""

    mean_temperature: float = Field(description="Mean temperature tau of the starting noise (its per-channel mean "
                                    "times tau; 1 = the paper's sampling; GESCO_RECEIVER_MEAN_TEMPERATURE, else the "
                                    "checkpoint's recommendation).")


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
    sampling: JobSampling | None = Field(None, description="How the worker sampled it (null until it is done).")
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
