"""Named exceptions of the core library.

Every check on user-controlled input raises a subclass of :class:`GescoInputError`
with a message that says what was wrong. The services map these to HTTP 4xx and
gRPC ``INVALID_ARGUMENT``; anything else is a bug (HTTP 500 / ``INTERNAL``).
"""

from __future__ import annotations


class GescoError(Exception):
    """Base class of every error raised on purpose by gesco."""


class GescoInputError(GescoError, ValueError):
    """Input that gesco refuses (bad shape, dtype, value, or encoding)."""


class ShapeError(GescoInputError):
    """An array has the wrong number of dimensions or the wrong size."""


class DTypeError(GescoInputError):
    """An array has a dtype gesco does not accept here."""


class ClassIdError(GescoInputError):
    """A class id lies outside the class space, or class ids are not valid."""


class PayloadError(GescoInputError):
    """A payload is empty, truncated or corrupt, or does not match its header."""


class UnknownCodecError(GescoInputError):
    """A codec name that gesco does not know."""


class ChannelParameterError(GescoInputError):
    """A channel parameter (PSNR, preset name, ...) is not valid."""


class ImageDecodeError(GescoInputError):
    """Bytes that are not a decodable PNG or JPEG image."""


class CheckpointError(GescoError):
    """A model checkpoint is missing, corrupt, or does not match the requested config."""


class MissingExtraError(GescoError):
    """A feature needs an optional dependency group (``pip install -e ".[NAME]"``) that is not installed."""
