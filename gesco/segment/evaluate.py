"""Scoring a segmenter with :class:`gesco.semantics.miou.MeanIoU`.

Used by training (the mIoU recorded in a checkpoint) and by the robustness check:
the same scenes, clean or after a mild Gaussian blur or Gaussian noise, as a proxy for
the blur, noise and colour shifts of generated images.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from gesco.errors import GescoInputError
from gesco.segment.augment import gaussian_blur
from gesco.semantics.classes import ClassSpace
from gesco.semantics.miou import MeanIoU, MIoUResult

#: The corruptions of the robustness check: name -> (kind, strength in [-1, 1] image units or pixels).
ROBUSTNESS_CORRUPTIONS: dict[str, tuple[str, float]] = {
    "blur_sigma1.0": ("blur", 1.0),
    "noise_std0.1": ("noise", 0.1),
}


def corrupt(images: torch.Tensor, kind: str | None, strength: float, seed: int = 0) -> torch.Tensor:
    """``(B, 3, H, W)`` float images in ``[-1, 1]``, blurred (``kind="blur"``, sigma in pixels),
    noised (``kind="noise"``, Gaussian std in ``[-1, 1]`` units, fixed ``seed``) or unchanged
    (``kind=None``); the result is clamped to ``[-1, 1]``."""
    if kind is None:
        return images
    if kind == "blur":
        return gaussian_blur(images, strength).clamp(-1, 1)
    if kind == "noise":
        g = torch.Generator().manual_seed(seed)
        return (images + strength * torch.randn(images.shape, generator=g).to(images.device)).clamp(-1, 1)
    raise GescoInputError(f"unknown corruption {kind!r}; known: 'blur', 'noise'")


@torch.no_grad()
def score(
    predict: Callable[[torch.Tensor], torch.Tensor],
    images: np.ndarray,
    labels: np.ndarray,
    class_space: ClassSpace,
    corruption: tuple[str, float] | None = None,
    batch_size: int = 50,
) -> MIoUResult:
    """mIoU of ``predict`` on a set of images.

    Args:
        predict: float images ``(B, 3, H, W)`` in ``[-1, 1]`` -> int64 label ids ``(B, H, W)``.
        images: uint8 ``(N, H, W, 3)`` RGB.
        labels: integer ``(N, H, W)`` target label ids.
        class_space: scored ids (``class_space.eval_ids``).
        corruption: ``(kind, strength)`` for :func:`corrupt`, or ``None`` for clean images.
    """
    scorer = MeanIoU(class_space)
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch_size])).permute(0, 3, 1, 2).float() / 127.5 - 1
        if corruption is not None:
            x = corrupt(x, corruption[0], corruption[1], seed=i)
        scorer.update(predict(x), labels[i : i + batch_size])
    return scorer.compute()


def evaluation_record(
    predict: Callable[[torch.Tensor], torch.Tensor],
    images: np.ndarray,
    labels: np.ndarray,
    class_space: ClassSpace,
    what: dict,
) -> dict:
    """Clean mIoU with per-class IoU, plus mIoU under each of :data:`ROBUSTNESS_CORRUPTIONS`,
    as the JSON-ready dict stored in a checkpoint's ``"evaluation"`` (``what`` names the data)."""
    clean = score(predict, images, labels, class_space)
    record = dict(what)
    record.update(
        miou=round(clean.miou, 4),
        per_class={k: (None if v is None else round(v, 4)) for k, v in clean.as_dict()["per_class"].items()},
        pixels=clean.pixels,
        robustness={name: round(score(predict, images, labels, class_space, c).miou, 4)
                    for name, c in ROBUSTNESS_CORRUPTIONS.items()},
    )
    return record
