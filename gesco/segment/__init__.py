"""The segmenter: image -> label map, used by the sender when no label map is uploaded
and by the evaluation to score generated images (mIoU against the transmitted map).

* :class:`~gesco.segment.model.SegmenterNet` - a small encoder-decoder CNN;
* :mod:`~gesco.segment.checkpoint` - safetensors + JSON checkpoints;
* :class:`~gesco.segment.segmenter.Segmenter` and :func:`~gesco.segment.segmenter.load_segmenter`
  - the shipped checkpoint, another gesco checkpoint, or a user's TorchScript / ONNX model;
* :mod:`~gesco.segment.train` - ``gesco train segmenter``.
"""

from __future__ import annotations

from pathlib import Path

from gesco.paths import DEFAULT_SEGMENTER, shipped_checkpoint
from gesco.paths import default_checkpoint_dir as _paths_checkpoint_dir

#: Name (stem) of the shipped segmenter checkpoint inside the checkpoints folder.
DEFAULT_CHECKPOINT_NAME = DEFAULT_SEGMENTER


def default_checkpoint_dir() -> Path:
    """The folder of the shipped checkpoints (:func:`gesco.paths.default_checkpoint_dir`).

    ``$GESCO_CHECKPOINT_DIR`` when set; otherwise the ``checkpoints/`` folder next to the
    ``gesco`` package (the repository root of a checkout or an editable install).
    """
    return _paths_checkpoint_dir()


def default_checkpoint() -> Path:
    """Stem of the shipped segmenter checkpoint (``<dir>/segmenter-synthetic-64x128``)."""
    return shipped_checkpoint(DEFAULT_CHECKPOINT_NAME)


from gesco.segment.model import SegmenterConfig, SegmenterNet  # noqa: E402
from gesco.segment.segmenter import Segmenter, load_segmenter  # noqa: E402

__all__ = [
    "DEFAULT_CHECKPOINT_NAME",
    "Segmenter",
    "SegmenterConfig",
    "SegmenterNet",
    "default_checkpoint",
    "default_checkpoint_dir",
    "load_segmenter",
]
