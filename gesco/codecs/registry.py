"""The codec registry: ``get_codec(name, **params)``.

Names: ``"raw"``, ``"zlib"``, ``"lzma"``, ``"contour"``, ``"context"`` (lossless, see
:mod:`gesco.codecs.lossless`) and ``"downsample"`` (lossy, see
:mod:`gesco.codecs.downsample`). :data:`DEFAULT_CODEC` (``"context"``) is the lossless
codec with the fewest bits on the synthetic validation scenes at 64x128 and 256x512.
"""

from __future__ import annotations

from gesco.codecs.base import MapCodec
from gesco.codecs.downsample import DownsampleCodec
from gesco.codecs.lossless import DEFAULT_LOSSLESS, LOSSLESS_CODECS
from gesco.errors import UnknownCodecError

DEFAULT_CODEC = DEFAULT_LOSSLESS

#: every codec class by registry name
CODECS: dict[str, type] = {**LOSSLESS_CODECS, DownsampleCodec.name: DownsampleCodec}


def codec_names() -> list[str]:
    """Registered codec names, sorted."""
    return sorted(CODECS)


def get_codec(name: str, **params: int | str) -> MapCodec:
    """Build a codec by name.

    Args:
        name: a registered name (:func:`codec_names`).
        **params: the codec's parameters (only ``"downsample"`` takes any: ``factor``,
            ``inner``, ``upsample``).
    Raises:
        UnknownCodecError: an unknown name, or parameters the codec does not take or refuses.
    """
    try:
        cls = CODECS[name]
    except (KeyError, TypeError):
        raise UnknownCodecError(f"unknown codec {name!r}; known codecs: {codec_names()}") from None
    try:
        return cls(**params)
    except TypeError:
        raise UnknownCodecError(f"codec {name!r} does not take the parameters {sorted(params)}") from None
