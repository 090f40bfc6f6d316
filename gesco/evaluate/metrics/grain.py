"""Grain: the high-pass energy of an image inside one class (issue 24, item 4).

The generated images carry a fine, blotchy texture where the real scenes are smooth (the
sky most visibly). It is measured as the RMS of the image's high-pass part, the image minus
its 3x3 box blur, over the *interior* pixels of a class (the pixels whose whole 3x3
neighbourhood has that class in the sent label map, so class boundaries do not count), on
the 0-255 scale, pooled over the three channels::

    hp = x - box3(x)          (per channel; box3 with reflected borders, cv2.BORDER_REFLECT_101)
    rms_c(x) = sqrt(mean over interior pixels p of class c and channels k of hp[p, k]^2)

A smooth gradient has ``rms`` near 0; white noise of standard deviation ``s`` gives about
``s * sqrt(8/9)``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from gesco.errors import ShapeError
from gesco.evaluate.metrics.colour import _to_rgb255

#: the Cityscapes label id of the sky
SKY = 23


def interior_mask(labels: np.ndarray, class_id: int) -> np.ndarray:
    """``(B, H, W)`` bool: pixels whose 3x3 neighbourhood (clipped at the border) is all ``class_id``."""
    lab = np.asarray(labels)
    if lab.ndim == 2:
        lab = lab[None]
    inside = (lab == class_id).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    return np.stack([cv2.erode(m, kernel, borderType=cv2.BORDER_REPLICATE) for m in inside]).astype(bool)


def high_pass_rms(images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, class_id: int = SKY, *,
                  value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Per-image high-pass RMS (0-255) over the interior of ``class_id`` (see the module doc).

    Args:
        images: ``(B, 3, H, W)`` float in ``value_range`` or ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8.
        labels: the sent label maps, ``(H, W)`` / ``(B, H, W)`` integer ids.
        class_id: the class whose interior is measured (default: sky).
        value_range: ``(lo, hi)`` of float images.
    Returns:
        ``(B,)`` float64; NaN for an image without interior pixels of the class.
    """
    x = _to_rgb255(images, value_range, "grain")  # (B, H, W, 3) float64
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    mask = interior_mask(np.asarray(labels), class_id)
    if mask.shape != x.shape[:3]:
        raise ShapeError(f"grain: labels {mask.shape} do not match the images' (B, H, W) {x.shape[:3]}")
    out = np.full(x.shape[0], np.nan)
    for b in range(x.shape[0]):
        if not mask[b].any():
            continue
        img = x[b].astype(np.float32)
        hp = img - cv2.blur(img, (3, 3), borderType=cv2.BORDER_REFLECT_101)
        out[b] = float(np.sqrt(np.mean(hp[mask[b]].astype(np.float64) ** 2)))
    return out


__all__ = ["SKY", "high_pass_rms", "interior_mask"]
