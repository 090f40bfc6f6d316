"""Shared preprocessing for every data set: resizing, flipping, conversion to tensors.

Images are resized with area interpolation when shrinking (both sides smaller or
equal) and bilinear otherwise; label and instance maps with nearest neighbour
(sampling the source pixel under each output pixel centre, like PIL's ``NEAREST``), so
no new class ids appear. An item of every data set is a dict

* ``"image"``: float32 tensor ``(3, H, W)`` in ``[-1, 1]`` (``x / 127.5 - 1``),
* ``"label"``: int64 tensor ``(H, W)`` of class ids,
* ``"instance"``: int64 tensor ``(H, W)`` of instance ids (only where the data set has them),

plus an identifier (``"seed"`` for synthetic scenes, ``"name"`` for files).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from gesco.errors import DTypeError, ShapeError


def _check_size(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise ShapeError(f"target size must be positive, got {height}x{width}")


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an ``(h, w, 3)`` uint8 image to ``(height, width, 3)`` uint8.

    Area interpolation when shrinking, bilinear when enlarging; a no-op at equal size.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ShapeError(f"image must be (H, W, 3), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise DTypeError(f"image must be uint8, got {image.dtype}")
    _check_size(height, width)
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    shrink = height <= h and width <= w
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_labels(label: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an ``(h, w)`` integer map to ``(height, width)``, same dtype.

    Output pixel ``(i, j)`` takes source pixel ``(floor((i + 0.5) h / height), floor((j + 0.5) w / width))``.
    """
    if label.ndim != 2:
        raise ShapeError(f"label map must be (H, W), got shape {label.shape}")
    _check_size(height, width)
    h, w = label.shape
    if (h, w) == (height, width):
        return label
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return label[rows[:, None], cols[None, :]]


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> float32 ``(3, H, W)`` in ``[-1, 1]``."""
    x = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)  # a fresh, writable copy
    return torch.from_numpy(x) / 127.5 - 1.0


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`image_to_tensor`: float ``(3, H, W)`` in ``[-1, 1]`` -> uint8 ``(H, W, 3)``."""
    x = ((t.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 0).cpu().numpy()


def make_item(image: np.ndarray, label: np.ndarray, instance: np.ndarray | None, flip: bool) -> dict:
    """Build the item dict (see the module docstring), flipping left-right if ``flip``."""
    if flip:
        image = image[:, ::-1]
        label = label[:, ::-1]
        instance = None if instance is None else instance[:, ::-1]
    item = {
        "image": image_to_tensor(image),
        "label": torch.from_numpy(np.ascontiguousarray(label).astype(np.int64)),
    }
    if instance is not None:
        item["instance"] = torch.from_numpy(np.ascontiguousarray(instance).astype(np.int64))
    return item


def random_flip() -> bool:
    """A fair coin from torch's global RNG (seeded per DataLoader worker by PyTorch)."""
    return bool(torch.rand(()) < 0.5)
