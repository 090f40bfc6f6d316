"""One cap on client input echoed back (error replies, gRPC status details) or logged.

A client controls the values it sends; a reply or a log line that repeats a value whole
lets one request produce a 100 MB log line, or a gRPC status detail so large that the
caller gets ``RESOURCE_EXHAUSTED`` ("metadata size exceeds hard limit") instead of the
real cause. Every echo goes through :func:`cap_text`, with :data:`MAX_DETAIL_CHARS`:

* REST error ``detail`` strings (:mod:`gesco_net.http_errors`);
* gRPC status details (:func:`gesco_net.grpc_kit.abort`);
* log records (:class:`CapLogFilter` on the services' log handler: the message template
  and every argument are cut *before* the line is formatted).
"""

from __future__ import annotations

import logging
import numbers

#: longest echo of client input (an error detail, a status detail, a log line), in characters
MAX_DETAIL_CHARS = 1000


def cap_text(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with the original length noted when cut.

    Example: ``cap_text("x" * 5000)`` is 1000 ``x`` followed by ``"... (5000 characters)"``.
    """
    if len(text) <= limit:
        return text
    return text[:limit] + f"... ({len(text)} characters)"


def _cap_arg(value: object, limit: int) -> object:
    """A log argument: numbers as they are, anything else as capped text."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"<integer of {value.bit_length()} bits>"
    if isinstance(value, numbers.Number) or value is None:  # numpy scalars too: "%d" must still work
        return value
    if isinstance(value, (bytes, bytearray)):
        return cap_text(repr(bytes(value[: limit + 1])), limit)
    if isinstance(value, (list, tuple, dict, set)) and len(value) > limit:
        return f"<{type(value).__name__} of {len(value)} items>"
    return cap_text(value if isinstance(value, str) else str(value), limit)


class CapLogFilter(logging.Filter):
    """Caps a record's message template and each argument at ``limit`` characters.

    Attached to a handler, it runs before the record is formatted, so a huge argument is
    never formatted whole (the formatted line stays near ``limit`` x the number of arguments).
    """

    def __init__(self, limit: int = MAX_DETAIL_CHARS) -> None:
        super().__init__()
        self.limit = limit

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = cap_text(record.msg, self.limit)
        else:
            record.msg = _cap_arg(record.msg, self.limit)
        if isinstance(record.args, tuple):
            record.args = tuple(_cap_arg(a, self.limit) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _cap_arg(v, self.limit) for k, v in record.args.items()}
        return True
