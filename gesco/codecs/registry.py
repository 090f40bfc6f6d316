"""The codec registry: ``get_codec(name, **params)``.

Names: ``"raw"``, ``"zlib"``, ``"lzma"``, ``"contour"`` (lossless, see
:mod:`gesco.codecs.lossless`) and ``"downsample"`` (lossy, see
:mod:`gesco.codecs.downsample`). :data:`DEFAULT_CODEC` is the lossless codec with the
fewest bits on street scenes.
"""

from __future__ import annotations

from gesco.codecs.base import MapCodec
from gesco.codecs.downsample import DownsampleCodec
from gesco.codecs.lossless import LOSSLESS_CODECS
from gesco.errors import UnknownCodecError

DEFAULT_CODEC = "contour"

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
