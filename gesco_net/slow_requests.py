"""Deadlines for slow requests: a client that trickles its headers or its body is cut off.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive`` seconds, but it
has no limit on how long a request may take to *arrive*: 200 connections that each send
one header byte every few seconds stay open indefinitely ("slowloris"), and so does a
request whose body never completes. :func:`deadline_protocol` returns uvicorn's h11
protocol with two deadlines per request (:class:`DeadlineH11Protocol`):

* ``header_timeout_s``: from the connection (or the first byte of a keep-alive request)
  to the end of the request's headers;
* ``body_timeout_s``: from the end of the headers to the end of the body.

When one passes, the connection is answered ``408 Request Timeout`` (when no response
has started) and closed; the application's pending ``receive()`` sees a disconnect.
Pass the class as ``uvicorn.Config(http=...)`` (:func:`uvicorn_timeouts`).
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("gesco_net.slow_requests")

#: default deadline for a request's headers, seconds
DEFAULT_HEADER_TIMEOUT_S = 10.0
#: default deadline for a request's body once its headers are in, seconds
DEFAULT_BODY_TIMEOUT_S = 60.0

_TIMEOUT_BODY = b'{"detail":"the request did not arrive in time"}'
_TIMEOUT_REPLY = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                  b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY)


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's ``H11Protocol`` with the two deadlines of the module docstring; the
    deadlines are class attributes, set by :func:`deadline_protocol`."""

    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    _deadline: asyncio.TimerHandle | None = None
    _phase: str = ""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("headers", self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_state()

    def on_response_complete(self) -> None:
        self._disarm()  # between requests, uvicorn's keep-alive timeout applies
        super().on_response_complete()

    def _follow_state(self) -> None:
        state = self.conn.their_state
        if state is h11.IDLE:  # (part of) the next request's headers
            self._arm("headers", self.header_timeout_s)
        elif state is h11.SEND_BODY:
            self._arm("body", self.body_timeout_s)
        else:
            self._disarm()

    def _arm(self, phase: str, seconds: float) -> None:
        if self._phase == phase:
            return  # a deadline, not an idle timeout: more bytes do not extend it
        self._disarm()
        self._phase = phase
        self._deadline = self.loop.call_later(seconds, self._expired, phase, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._phase = None, ""

    def _expired(self, phase: str, seconds: float) -> None:
        self._deadline, self._phase = None, ""
        if self.transport.is_closing():
            return
        log.info("closing a connection from %s: request %s not received within %g s",
                 self.client[0] if self.client else "?", phase, seconds)
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(_TIMEOUT_REPLY)
        self.transport.close()


def deadline_protocol(header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
                      body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S) -> type[H11Protocol]:
    """:class:`DeadlineH11Protocol` with these two deadlines (a subclass: uvicorn builds the
    protocol from a class, one instance per connection)."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,),
                {"header_timeout_s": float(header_timeout_s), "body_timeout_s": float(body_timeout_s)})


def uvicorn_timeouts(header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
                     body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S) -> dict:
    """``uvicorn.Config`` options: the deadline protocol (h11)."""
    return {"http": deadline_protocol(header_timeout_s, body_timeout_s)}
