"""The sender's error replies: which HTTP status each failure gets, and their documentation.

* :func:`http_error_for_rpc`: a failed ``Channel.Transmit`` -> 409 / 422 / 502 / 503 / 504,
  the message naming the hop that failed (channel or receiver);
* bad uploads: :func:`gesco_net.http_errors.input_error` (415 / 413 / 422, shared with the
  receiver's viewer);
* :data:`TRANSMIT_ERRORS`: the error replies of ``POST /transmit`` as the OpenAPI
  document lists them.
"""

from __future__ import annotations

import grpc
from fastapi import HTTPException

from sender.schemas import ErrorDetail


def http_error_for_rpc(e: grpc.RpcError, address: str, retry_after_s: int = 5) -> HTTPException:
    """Map a failed ``Channel.Transmit`` to an HTTP error whose message says which hop failed."""
    code, detail = e.code(), e.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        if "receiver" in detail:
            return HTTPException(503, f"the receiver is unavailable (reported by the channel): {detail}")
        return HTTPException(503, f"the channel service at {address} is unavailable: {detail}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return HTTPException(504, f"no acknowledgement from the channel / receiver in time: {detail}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return HTTPException(422, f"the frame was refused: {detail}")
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return HTTPException(409, detail)
    if code == grpc.StatusCode.FAILED_PRECONDITION:  # e.g. the channel lacks an optional extra
        return HTTPException(503, f"the channel cannot serve this request: {detail}")
    if code == grpc.StatusCode.PERMISSION_DENIED and "belongs to another client" in detail:
        # a client-chosen id that another API key stored: the id is taken (nothing was stored)
        return HTTPException(409, f"this id is taken by another client's job; choose another id ({detail})")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:  # the receiver's queue is full: nothing was stored
        return HTTPException(503, f"the receiver is at capacity: {detail}", headers={"Retry-After": str(retry_after_s)})
    return HTTPException(502, f"the channel failed ({code.name}): {detail}")


#: the error replies of ``POST /transmit`` (OpenAPI ``responses``)
TRANSMIT_ERRORS = {code: {"model": ErrorDetail, "description": text} for code, text in {
    401: "No or unknown API key (only when the sender is configured with keys).",
    403: "A browser request from another origin.",
    409: "A job with this id exists already at the receiver.",
    413: "A file or the image is over the size limit.",
    429: "Too many requests from this client; retry after the Retry-After header's seconds.",
    415: "A file is not a PNG or JPEG image (label / instance maps: not a PNG).",
    422: "Corrupt image, maps of the wrong shape or with unknown class ids, bad parameters.",
    503: "The channel or the receiver is down, the receiver's queue is full or the sender busy (with "
         "Retry-After), or no segmenter for an upload without a label map.",
    504: "The channel or the receiver did not answer before the deadline.",
}.items()}
