"""The fast denoising semantic block (FDS), Eq. (2) of the paper.

    y = Pad(MaxPool(AvgPool(y_hat)))

``AvgPool`` (k x k, stride 1, padding k // 2, padded zeros counted as in PyTorch's
default ``count_include_pad=True``) removes noise spikes; ``MaxPool`` (same window)
keeps the regions of ones. Neither has parameters and the output has the input's size.
``Pad`` re-inserts the classes the sender dropped as zero maps
(:func:`gesco.semantics.layout.pad_maps`). Unlike the authors' code, any batch size works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gesco.errors import ShapeError


def fds_filter(maps: torch.Tensor, kernel_size: int = 3) -> torch.Tensor:
    """``MaxPool(AvgPool(maps))`` with a ``kernel_size`` window, stride 1, same size out.

    Args:
        maps: ``(K, H, W)`` or ``(B, K, H, W)`` float maps (noisy, received).
        kernel_size: odd window size (3 in the paper).
    Returns:
        Tensor of the input's shape and dtype.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ShapeError(f"FDS kernel size must be a positive odd integer, got {kernel_size}")
    squeeze = maps.dim() == 3
    x = maps.unsqueeze(0) if squeeze else maps
    if x.dim() != 4:
        raise ShapeError(f"FDS expects (K, H, W) or (B, K, H, W) maps, got shape {tuple(maps.shape)}")
    if kernel_size == 1:
        return maps
    pad = kernel_size // 2
    dtype = x.dtype
    x = x.float()
    x = F.avg_pool2d(x, kernel_size, stride=1, padding=pad, count_include_pad=True)
    x = F.max_pool2d(x, kernel_size, stride=1, padding=pad)
    x = x.to(dtype)
    return x[0] if squeeze else x
