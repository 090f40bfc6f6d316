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
        state = {"read": 0, "over": False, "started": False}

        async def limited_receive() -> Message:
            if state["over"]:
                raise BodyTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > self.max_bytes:
                    state["over"] = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"]:
                return  # the application's reply to a body it could not read is replaced by the 413
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await _reply_413(send, f"request body is over the limit of {self.max_bytes} bytes "
                                   f"(read {state['read']} bytes when it was refused)")


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
