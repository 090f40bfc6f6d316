"""Settings of the channel service (environment variables ``GESCO_CHANNEL_<FIELD>``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gesco.serving.grpc_kit import DEFAULT_MAX_MESSAGE_BYTES


class ChannelSettings(BaseSettings):
    """Where the channel listens, where the receiver is, where the budget log goes."""

    model_config = SettingsConfigDict(env_prefix="GESCO_CHANNEL_")

    host: str = Field("127.0.0.1", description="Interface of the gRPC server ('0.0.0.0' for all).")
    port: int = Field(8001, ge=0, le=65535, description="gRPC port (0 = any free port).")
    receiver_address: str = Field("127.0.0.1:8003", description="host:port of the receiver's gRPC server.")
    receiver_timeout_s: float = Field(10.0, gt=0, description="Deadline of Receiver.Deliver, in seconds.")
    budget_log: Path = Field(Path("gesco-data/budget.jsonl"), description="Bit-budget log (JSON lines), appended to.")
    max_workers: int = Field(8, ge=1, description="gRPC worker threads.")
    max_message_bytes: int = Field(DEFAULT_MAX_MESSAGE_BYTES, ge=1024, description="Largest gRPC message, in bytes.")
    torch_threads: int = Field(1, ge=0, description="torch intra-op threads (0 = torch's default).")
    log_level: str = Field("INFO", description="Python logging level.")
