"""Settings of the receiver service (environment variables ``GESCO_RECEIVER_<FIELD>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gesco.wire.limits import DEFAULT_MAX_FRAME_ELEMENTS
from gesco_net.grpc_kit import DEFAULT_MAX_CONCURRENT_CALLS
from gesco_net.slow_requests import DEFAULT_BODY_TIMEOUT_S, DEFAULT_HEADER_TIMEOUT_S


class ReceiverSettings(BaseSettings):
    """Ports, data directory, model checkpoint, device and batching of the receiver."""

    model_config = SettingsConfigDict(env_prefix="GESCO_RECEIVER_")

    host: str = Field("127.0.0.1", description="Interface of both servers ('0.0.0.0' for all).")
    port: int = Field(8002, ge=0, le=65535, description="REST port (results).")
    grpc_port: int = Field(8003, ge=0, le=65535, description="gRPC port (Receiver.Deliver, health); 0 = any free port.")
    data_dir: Path = Field(Path("gesco-data"), description="Job files (jobs/<id>/*) and, without a store URL, "
                           "jobs.sqlite3. Every replica and worker sharing a Postgres store must see the same folder.")
    store: str = Field("", description="Job store: empty = SQLite in the data directory; postgresql://user@host:port/db "
                       "= a Postgres database shared by several receivers and workers (docs/services.md#scaling-out).")
    store_password: str = Field("", description="Password of the Postgres store (overrides one in the URL; "
                                "store_password_file wins over both).")
    store_password_file: Path | None = Field(None, description="File holding the Postgres password (a Docker "
                                             "secret); overrides store_password and a password in the store URL.")
    role: Literal["all", "receiver", "worker"] = Field(
        "all", description="'all': ingest, REST and a worker in one process (gesco up's default); 'receiver': "
        "ingest and REST only (stateless, any number of replicas); 'worker': claims and samples jobs only.")
    lease_s: float = Field(30.0, gt=0, description="A claimed job returns to the queue this long after its worker "
                           "last renewed the lease (renewed every lease_s / 3 while sampling).")
    worker_name: str = Field("", description="Name of this process's worker in the job rows (default host:pid).")
    checkpoint: Path | None = Field(
        None, description="Diffusion checkpoint (stem or .safetensors/.json); default: the shipped guidance-distilled "
        "student with its mean-colour path fitted on received maps (checkpoints/diffusion-synthetic-64x128-student-meanfit)."
    )
    device: str = Field("auto", description="'auto' (GPU when present, else CPU), 'cpu', 'cuda', 'cuda:1', ...")
    max_batch: int = Field(4, ge=1, le=256, description="Most jobs sampled together in one batch.")
    max_attempts: int = Field(
        3, ge=1, description="A job whose lease expired this many times (its worker died) is marked failed."
    )
    fds_kernel: int = Field(3, ge=1, description="FDS window (odd; 3 in the paper).")
    sky_finishing_sigma: float = Field(
        0.0, ge=0.0, le=16.0, description="Label-aware finishing of every generated image: the sky of the received "
        "label map smoothed by a Gaussian of this many pixels that never crosses a class boundary "
        "(gesco.diffusion.finishing; docs/grain.md); 0 = off (the default: the sampler's images unchanged).")
    mean_temperature: float | None = Field(
        None, ge=0.0, le=1.0, description="Mean temperature tau of every job's starting noise: its per-channel spatial "
        "mean is multiplied by tau, its zero-mean part kept (gesco.diffusion.samplers.scale_start_mean; "
        "docs/colour/README.md section 6), so the seed sets the image's mean colour tau times as much; 1 = the "
        "paper's sampling. Unset: the checkpoint card's recommendation (conditioning.recommended_sampling), else 1.")
    poll_s: float = Field(1.0, gt=0, description="How often an idle worker looks for jobs (it is also woken on arrival).")
    fsync: bool = Field(True, description="fsync stored frames and results (durability against power loss).")
    max_queue: int = Field(
        256, ge=0, description="Most unfinished (queued + running) jobs; beyond it Deliver answers RESOURCE_EXHAUSTED "
        "and the sender 503 with Retry-After (0 = no limit)."
    )
    max_stored_jobs: int = Field(
        10000, ge=0, description="Most stored jobs; the oldest finished ones (done / failed) expire beyond it, "
        "rows and files (0 = keep all)."
    )
    max_frame_elements: int = Field(
        DEFAULT_MAX_FRAME_ELEMENTS, ge=1, description="Most map elements N * H * W a frame may declare "
        "(checked before anything is upsampled); the model's largest frame, (C + 1) * H * W, when smaller."
    )
    db_busy_timeout_s: float = Field(
        5.0, gt=0, description="How long the store waits for a lock held by another process on jobs.sqlite3 "
        "before refusing the frame (UNAVAILABLE, the sender 503)."
    )
    grpc_workers: int = Field(8, ge=1, description="gRPC worker threads.")
    max_message_bytes: int | None = Field(
        None, ge=1024, description="Largest gRPC message, in bytes (unset: the largest valid frame of the served "
        "model, with a 25% margin: gesco.wire.bounds.grpc_message_limit)."
    )
    max_concurrent_calls: int = Field(
        DEFAULT_MAX_CONCURRENT_CALLS, ge=1, description="gRPC calls handled at once; one more gets RESOURCE_EXHAUSTED."
    )
    torch_threads: int = Field(0, ge=0, description="torch intra-op threads (0 = torch's default).")
    sender_url: str = Field(
        "http://127.0.0.1:8000", description="Base URL of the sender as browsers reach it (the viewer page POSTs there)."
    )
    # access control, TLS (docs/security.md)
    api_keys: str = Field("", description="Comma-separated API keys for the REST API (the same keys as the "
                          "sender's: a client reads only the jobs it created with its key).")
    api_keys_file: Path | None = Field(None, description="File of REST API keys, one per line (e.g. a Docker secret).")
    grpc_api_keys: str = Field("", description="Comma-separated keys the channel must send on Receiver.Deliver.")
    grpc_api_keys_file: Path | None = Field(None, description="File of gRPC keys, one per line.")
    tls_cert: Path | None = Field(None, description="Certificate (PEM) of both servers (HTTPS and gRPC TLS), with tls_key.")
    tls_key: Path | None = Field(None, description="Private key (PEM) of both servers.")
    grpc_client_ca: Path | None = Field(None, description="CA (PEM) whose client certificates the gRPC server "
                                        "requires (mutual TLS, with tls_cert); unset: no client certificate needed.")
    public_url: str | None = Field(None, description="Base URL of this REST API as clients reach it, for result "
                                   "links (default: http(s)://127.0.0.1:<port>; never the request's Host header).")
    allowed_origins: str = Field("", description="Comma-separated browser origins allowed to POST besides this "
                                 "service's own loopback origin.")
    header_timeout_s: float = Field(
        DEFAULT_HEADER_TIMEOUT_S, gt=0, description="Deadline for a request's headers (slow clients get 408 "
        "and are disconnected; gesco_net.slow_requests)."
    )
    body_timeout_s: float = Field(
        DEFAULT_BODY_TIMEOUT_S, gt=0, description="Deadline for a request's body once its headers are in."
    )
    rate_limit_per_s: float = Field(50.0, ge=0, description="REST requests per second per client (API-key "
                                    "identity, else IP address) outside the open endpoints; 0 = no limit.")
    rate_limit_burst: int = Field(100, ge=1, description="REST requests a client may make at once.")
    grpc_rate_limit_per_s: float = Field(200.0, ge=0, description="gRPC calls per second per caller (key identity, "
                                         "else IP address); beyond it RESOURCE_EXHAUSTED; 0 = no limit.")
    grpc_rate_limit_burst: int = Field(400, ge=1, description="gRPC calls a caller may make at once.")
    published_on: str = Field("", description="Address the container runtime publishes this service's ports on "
                              "('none': not published); loopback or 'none' silences the 0.0.0.0-without-keys warning.")
    log_json: bool = Field(False, description="Log one JSON object per line, with the job id (docs/security.md).")
    log_level: str = Field("INFO", description="Python logging level.")
