"""JSON log lines with the job id of the context that logged them."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import threading

from gesco_net.logs import JOB_ID, JobIdFilter, JsonFormatter, bind_job, configure_logging


def _logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.addFilter(JobIdFilter())
    handler.setFormatter(JsonFormatter("svc"))
    logger = logging.getLogger("gesco.test-logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_json_lines_with_and_without_job_id():
    stream = io.StringIO()
    log = _logger(stream)
    log.info("outside %d", 1)

    def in_job():
        bind_job("abc123")
        log.info("inside")
        log.warning("explicit", extra={"job_id": "other"})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")

    contextvars.copy_context().run(in_job)
    t = threading.Thread(target=lambda: log.info("thread"))  # a thread starts with an empty context
    t.start()
    t.join()
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert [d.get("job_id") for d in lines] == [None, "abc123", "other", "abc123", None]
    assert lines[0]["message"] == "outside 1" and lines[0]["service"] == "svc" and lines[0]["level"] == "INFO"
    assert "ValueError: boom" in lines[3]["exc_info"]
    assert JOB_ID.get() is None


def test_configure_logging_switches_format(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("sender", "INFO", json_logs=True)
        logging.getLogger("gesco.x").info("hello")
        doc = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert doc["message"] == "hello" and doc["service"] == "sender"
        configure_logging("sender", "INFO", json_logs=False)
        logging.getLogger("gesco.x").info("plain")
        assert capsys.readouterr().err.strip().endswith("sender INFO plain")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])


def test_job_context_unbinds():
    from gesco_net.logs import job_context

    assert JOB_ID.get() is None
    with job_context("abc"):
        assert JOB_ID.get() == "abc"
    assert JOB_ID.get() is None


def test_access_log_never_shows_a_key_sent_in_the_query_string():
    from gesco_net.logs import RedactQueryFilter

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/results?limit=5&api_key=SECRET-1&Token=SECRET-2", "1.1", 401), None)
    assert RedactQueryFilter().filter(record)
    line = record.getMessage()
    assert "SECRET" not in line and "limit=5" in line and "api_key=[redacted]" in line
