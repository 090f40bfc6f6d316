"""Error replies that do not echo unbounded input.

FastAPI's default 422 reply copies each invalid value (``input``) into the response: a
100 000-digit form field comes back whole. :func:`install_validation_handler` replaces
the handler with one that keeps the error list (location, message, type) and cuts every
echoed value to :data:`MAX_ECHO_CHARS` characters, and caps the ``detail`` of every
other error reply (``HTTPException``, which may quote an id or a path parameter) at
:data:`~gesco_net.capped.MAX_DETAIL_CHARS` characters (:func:`~gesco_net.capped.cap_text`).

:func:`input_error` gives an uploaded file's :class:`~gesco.errors.GescoInputError` its
status (415 / 413 / 422), the same at the sender's ``/transmit`` and the receiver's viewer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gesco.errors import GescoInputError
from gesco.link import ImageTooLargeError, UnsupportedImageError
from gesco_net.capped import MAX_DETAIL_CHARS, cap_text

#: longest echoed input value in a 422 reply, in characters
MAX_ECHO_CHARS = 100


def truncate(value: Any, limit: int = MAX_ECHO_CHARS) -> Any:
    """``value`` with every string (and the text of anything else) cut to ``limit`` characters."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[: limit + 1]).decode("utf-8", "replace")
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + f"... ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"<integer of {value.bit_length()} bits>"
    if isinstance(value, (int, float, bool)) or value is None:
        text = repr(value)
        return value if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
    if isinstance(value, dict):
        return {truncate(str(k), limit): truncate(v, limit) for k, v in list(value.items())[:20]}
    if isinstance(value, (list, tuple)):
        return [truncate(v, limit) for v in list(value)[:20]]
    return truncate(str(value), limit)


def input_error(field: str | None, e: GescoInputError) -> HTTPException:
    """HTTP status for bad input: 415 not an image (:class:`~gesco.link.UnsupportedImageError`),
    413 too large (:class:`~gesco.link.ImageTooLargeError`), 422 otherwise; the message
    starts with the form field (``image``, ``label``, ``instance``) when known."""
    prefix = f"{field}: " if field else ""
    if isinstance(e, UnsupportedImageError):
        return HTTPException(415, prefix + str(e))
    if isinstance(e, ImageTooLargeError):
        return HTTPException(413, prefix + str(e))
    return HTTPException(422, prefix + str(e))


def install_validation_handler(app: FastAPI) -> None:
    """Answer request validation errors with 422 and truncated echoes (see the module docstring)."""

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            item = {k: e[k] for k in ("type", "loc", "msg") if k in e}
            if "input" in e:
                item["input"] = truncate(e["input"])
            errors.append(item)
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = cap_text(exc.detail, MAX_DETAIL_CHARS) if isinstance(exc.detail, str) else exc.detail
        return JSONResponse(status_code=exc.status_code, content={"detail": detail}, headers=exc.headers)
