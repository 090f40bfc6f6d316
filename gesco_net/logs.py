"""Service logging: plain text (default) or one JSON object per line, with the job id.

``configure_logging(service, level, json_logs=True)`` makes every record a JSON line::

    {"time": "2026-12-01T05:12:03.120Z", "level": "INFO", "service": "sender",
     "logger": "gesco.sender", "message": "...", "job_id": "3f2a..."}

``job_id`` is the record's ``extra={"job_id": ...}`` or else the id bound with
:func:`bind_job` in the context that logged it (:class:`JobIdFilter`) (the sender's request, the channel's and the
receiver's gRPC handler); records outside a job have no ``job_id`` key. Exceptions
appear as ``"exc_info"`` (the formatted traceback). uvicorn's own loggers go through the
same handler (the services pass ``log_config=None`` to uvicorn in JSON mode). Every
record's template and arguments are capped at 1,000 characters each before formatting
(:class:`~gesco_net.capped.CapLogFilter`).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime

from gesco_net.capped import CapLogFilter

#: the job the current request / call works on
JOB_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("gesco_job_id", default=None)


def bind_job(job_id: str | None) -> contextvars.Token:
    """Attach ``job_id`` to the log records of the current context (returns the reset token).

    For a request handled in its own context (an HTTP request's task). On a thread that
    serves one call after another (gRPC), use :func:`job_context`, which unbinds at the end.
    """
    return JOB_ID.set(job_id)


@contextlib.contextmanager
def job_context(job_id: str | None):
    """``with job_context(id): ...``: the block's log records carry ``job_id``; unbound afterwards."""
    token = JOB_ID.set(job_id)
    try:
        yield
    finally:
        JOB_ID.reset(token)


class JobIdFilter(logging.Filter):
    """Copies the context's job id into each record as it is emitted (``record.job_id``).

    Attached to the handler, so that the id is taken in the thread and context that
    logged the record, even when the record is formatted later.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = JOB_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)
        if job_id:
            doc["job_id"] = job_id
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


#: query parameters whose values never reach a log line (a key sent in a URL is refused, but
#: uvicorn's access log would have written it)
SECRET_QUERY = re.compile(r"([?&][^=&#]*(?:key|token|auth|secret|password)[^=&#]*=)[^&#]*", re.IGNORECASE)


class RedactQueryFilter(logging.Filter):
    """Replaces the values of secret-looking query parameters in uvicorn's access lines by ``[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(SECRET_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) and "?" in a else a
                                for a in record.args)
        return True


def configure_logging(service: str, level: str = "INFO", json_logs: bool = False) -> None:
    """Configure the root logger of a service process (replaces its handlers).

    Also filters uvicorn's loggers directly (they have handlers of their own in text mode):
    capped lines (:class:`~gesco_net.capped.CapLogFilter`) and no secrets from query
    strings in the access log (:class:`RedactQueryFilter`).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobIdFilter())
    handler.addFilter(CapLogFilter())  # client input in a line is cut before formatting
    if json_logs:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, extra in (("uvicorn.access", [RedactQueryFilter()]), ("uvicorn.error", [])):
        logger = logging.getLogger(name)
        for f in [*extra, CapLogFilter()]:
            if not any(type(old) is type(f) for old in logger.filters):
                logger.addFilter(f)


def uvicorn_log_options(json_logs: bool) -> dict:
    """uvicorn.Config options: in JSON mode, let uvicorn's loggers use the root handler."""
    return {"log_config": None} if json_logs else {}
