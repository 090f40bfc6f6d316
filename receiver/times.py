"""How the receiver's REST API writes times: the store's epoch seconds as ISO 8601 in UTC.

Used by the result document (:mod:`receiver.routes`) and the viewer's history
(:mod:`receiver.viewer`), so both show a job's times alike.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_time(t: float | None) -> str | None:
    """``t`` (seconds since the epoch, as :class:`receiver.store.Job` holds its times) as
    ISO 8601 in UTC to the millisecond, e.g. ``2026-01-31T12:00:00.250+00:00``; ``None``
    stays ``None`` (a time not reached yet)."""
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
