"""Checks the sender runs before a transmission costs anything: form fields and encode slots.

* :func:`check_form`: every form field known, present once, and not empty. FastAPI
  would let the last of two ``psnr_db`` fields win silently and read ``psnr_db=''`` as
  "use the default" (10 dB); both are 422 here, with a message naming the field.
* :class:`EncodeSlots`: at most ``limit`` uploads are decoded / segmented / encoded at
  once. Decoding a 16-megapixel upload costs up to ``max_decoded_bytes`` of memory and
  segmenting it a CPU core; without a cap, N concurrent uploads cost N times that. A
  request that finds no free slot within ``wait_s`` gets 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import HTTPException


def check_form(items: Iterable[tuple[str, object]], known: Iterable[str]) -> None:
    """Refuse unknown, repeated or empty form fields.

    Args:
        items: the form's ``multi_items()`` (name, value) pairs, files included.
        known: the accepted field names.
    Raises:
        HTTPException: 422 naming the offending fields.
    """
    items = list(items)
    known = frozenset(known)
    names = [name for name, _ in items]
    unknown = sorted(set(names) - known)
    if unknown:
        raise HTTPException(422, f"unknown form field(s) {[u[:40] for u in unknown[:10]]}; known: {sorted(known)}")
    repeated = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated:
        raise HTTPException(422, f"form field(s) {repeated} given more than once; give each at most once")
    empty = sorted(name for name, value in items if isinstance(value, str) and value.strip() == "")
    if empty:
        raise HTTPException(422, f"form field(s) {empty} are empty; omit a field to use its default")


class EncodeSlots:
    """A cap on concurrent upload processing (see the module docstring).

    Args:
        limit: most concurrent uploads being decoded and encoded.
        wait_s: how long a request waits for a slot before 503.
        retry_after_s: the ``Retry-After`` of that 503, seconds.
    """

    def __init__(self, limit: int, wait_s: float, retry_after_s: int) -> None:
        self.limit = int(limit)
        self.wait_s = float(wait_s)
        self.retry_after_s = int(retry_after_s)
        self._sem: asyncio.Semaphore | None = None  # made in the server's event loop

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the ``async with`` body; 503 when none frees up within ``wait_s``."""
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.limit)
        try:
            await asyncio.wait_for(self._sem.acquire(), timeout=self.wait_s)
        except TimeoutError:
            raise HTTPException(
                503, f"the sender is busy: {self.limit} upload(s) are being encoded; retry later",
                headers={"Retry-After": str(self.retry_after_s)},
            ) from None
        try:
            yield
        finally:
            self._sem.release()
