"""Where gesco finds its shipped files.

The shipped checkpoints live in the repository's ``checkpoints/`` folder, next to the
``gesco`` package. ``GESCO_CHECKPOINT_DIR`` overrides the folder (e.g. in a container
or for a user's own models).
"""

from __future__ import annotations

import os
from pathlib import Path

#: stem of the shipped semantic diffusion checkpoint (noisy training + FDS)
DEFAULT_DIFFUSION = "diffusion-synthetic-64x128"
#: stem of the shipped segmenter checkpoint
DEFAULT_SEGMENTER = "segmenter-synthetic-64x128"


def default_checkpoint_dir() -> Path:
    """``$GESCO_CHECKPOINT_DIR`` or the repository's ``checkpoints/`` folder."""
    env = os.environ.get("GESCO_CHECKPOINT_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "checkpoints"


def shipped_checkpoint(stem: str) -> Path:
    """Path stem of a shipped checkpoint (without suffix)."""
    return default_checkpoint_dir() / stem
