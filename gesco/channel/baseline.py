"""The paper's "Full image" baseline: the image's pixels through the same channel.

Each pixel value (RGB, scaled to [0, 1]) is one real symbol; the channel normalises the
power and adds the noise exactly as it does for the semantic maps. The received
image is clipped back to [0, 1]. Channel uses = ``3 * H * W`` per image.
"""

from __future__ import annotations

import torch

from gesco.channel.models import ChannelModel, ChannelResult
from gesco.errors import ShapeError


def transmit_image(
    images: torch.Tensor,
    channel: ChannelModel,
    psnr_db: float | torch.Tensor,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, ChannelResult]:
    """Send images through ``channel``.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
    Returns:
        ``(received images (B, 3, H, W) in [0, 1], ChannelResult)``.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ShapeError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
    res = channel.transmit(images.float(), psnr_db, generator=generator)
    return res.received.clamp(0.0, 1.0), res
