"""An ASGI middleware that limits the request body on the bytes actually read.

A limit on the ``Content-Length`` header alone is bypassed by a chunked upload
(``Transfer-Encoding: chunked`` has no length). :class:`BodyLimit` answers 413 at once
when a declared length is over the limit, and otherwise counts the body chunks as the
application reads them: the chunk that crosses the limit ends the request with 413
(the application's own reply, if it was about to send one, is dropped), so at most
``max_bytes`` plus one chunk is ever read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    """Raised into the application when the body it reads crosses the limit."""


class BodyLimit:
    """Refuse HTTP request bodies larger than ``max_bytes`` with 413 (JSON ``{"detail": ...}``).

    Args:
        app: the ASGI application.
        max_bytes: largest accepted body, in bytes.
    """

    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _reply_413(send, f"request body is {declared} bytes, the limit is {self.max_bytes}")
            return
        exchange = _CountedExchange(receive, send, self.max_bytes)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except BodyTooLarge:
            pass
        except Exception:
            if not exchange.over:
                raise
        if exchange.over and not exchange.started:
            await _reply_413(send, f"request body is over the limit of {self.max_bytes} bytes "
                                   f"(read {exchange.read} bytes when it was refused)")


class _CountedExchange:
    """One request's ``receive`` / ``send`` as the application sees them: ``receive`` counts
    the body bytes and raises :class:`BodyTooLarge` once they cross ``max_bytes`` (and on
    every call after); ``send`` drops the application's reply from then on (the 413 replaces it)."""

    def __init__(self, receive: Receive, send: Send, max_bytes: int) -> None:
        self._receive, self._send, self.max_bytes = receive, send, max_bytes
        self.read = 0          # body bytes received so far
        self.over = False      # the body crossed the limit
        self.started = False   # the application started its reply before that

    async def receive(self) -> Message:
        if self.over:
            raise BodyTooLarge()
        message = await self._receive()
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            if self.read > self.max_bytes:
                self.over = True
                raise BodyTooLarge()
        return message

    async def send(self, message: Message) -> None:
        if self.over:
            return  # the application's reply to a body it could not read is replaced by the 413
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _reply_413(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
