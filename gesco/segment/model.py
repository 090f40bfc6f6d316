"""A small encoder-decoder CNN that maps an image to per-pixel class logits.

Layout (``patch = p``, ``widths = (w0, w1, w2)``; every conv is 3x3 + BatchNorm + ReLU)::

    image (B, 3, H, W) in [-1, 1]
      space-to-depth: each p x p pixel block -> 3 p^2 channels      -> 3p^2 x H/p x W/p
      stem     : stem_convs convs                                   -> w0 x H/p  x W/p
      down1    : stride-2 conv + conv                               -> w1 x H/2p x W/2p
      down2    : stride-2 conv + dilated convs (context)            -> w2 x H/4p x W/4p
      up1, up0 : 1x1 conv to the skip's width, bilinear x2, add the skip, conv
      head     : 1x1 conv to p^2 * num_classes, depth-to-space      -> num_classes x H x W

Space-to-depth keeps every input pixel (nothing is averaged away) while the convs run
at 1/p resolution, and the depth-to-space head predicts each of the p x p pixels of a
block separately, so one-pixel-wide classes (poles, distant people) survive at a
fraction of the cost of full-resolution convs (most of the time of a small CNN on a CPU
goes into memory traffic of full-resolution feature maps). The dilated convs at the
coarsest level see most of a 64x128 image (road below, sky above). Inputs need ``H``
and ``W`` divisible by :attr:`SegmenterNet.stride` (``p * 2 ** (len(widths) - 1)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gesco.config_base import ConfigBase
from gesco.errors import DTypeError, ShapeError


@dataclass(frozen=True)
class SegmenterConfig(ConfigBase):
    """Architecture of :class:`SegmenterNet`.

    Attributes:
        in_channels: image channels (3, RGB).
        num_classes: output logits, one per label id of the class space (35 for Cityscapes).
        patch: space-to-depth block size ``p`` (1: convs start at full resolution).
        widths: channels at resolutions 1/p, 1/2p, 1/4p, ... (one stride-2 stage per extra width).
        stem_convs: 3x3 convs at resolution 1/p.
        context_dilations: dilations of the convs after the last down-sampling.
    """

    in_channels: int = 3
    num_classes: int = 35
    patch: int = 2
    widths: tuple[int, ...] = (32, 64, 128)
    stem_convs: int = 2
    context_dilations: tuple[int, ...] = (1, 2, 4)

    def __post_init__(self) -> None:
        if len(self.widths) < 2 or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must list at least two positive channel counts, got {self.widths}")
        if self.stem_convs < 1 or self.in_channels < 1 or self.patch < 1 or self.num_classes < 2:
            raise ValueError("stem_convs, in_channels and patch must be >= 1 and num_classes >= 2")
        if any(int(d) < 1 for d in self.context_dilations):
            raise ValueError(f"context_dilations must be positive, got {self.context_dilations}")

    @property
    def stride(self) -> int:
        """Total down-sampling factor; input sides must be multiples of it."""
        return self.patch * 2 ** (len(self.widths) - 1)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _UpBlock(nn.Module):
    """``conv3x3(upsample2x(conv1x1(x)) + skip)``: coarse features merged into a finer skip."""

    def __init__(self, cin: int, cskip: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(cin, cskip, 1)
        self.fuse = _conv_bn_relu(cskip, cskip)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(x + skip)


class SegmenterNet(nn.Module):
    """Image ``(B, 3, H, W)`` in ``[-1, 1]`` -> logits ``(B, num_classes, H, W)`` float32."""

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SegmenterConfig()
        w, p = config.widths, config.patch
        stem = [_conv_bn_relu(config.in_channels * p * p, w[0])] + [_conv_bn_relu(w[0], w[0]) for _ in range(config.stem_convs - 1)]
        self.stem = nn.Sequential(*stem)
        downs = []
        for i in range(1, len(w)):
            layers = [_conv_bn_relu(w[i - 1], w[i], stride=2)]
            if i < len(w) - 1:
                layers.append(_conv_bn_relu(w[i], w[i]))
            else:
                layers += [_conv_bn_relu(w[i], w[i], dilation=d) for d in config.context_dilations]
            downs.append(nn.Sequential(*layers))
        self.downs = nn.ModuleList(downs)
        self.ups = nn.ModuleList([_UpBlock(w[i], w[i - 1]) for i in range(len(w) - 1, 0, -1)])
        self.head = nn.Conv2d(w[0], config.num_classes * p * p, 1)

    @property
    def stride(self) -> int:
        return self.config.stride

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.config.in_channels:
            raise ShapeError(f"images must be (B, {self.config.in_channels}, H, W), got {tuple(images.shape)}")
        if not images.dtype.is_floating_point:
            raise DTypeError(f"images must be a float tensor in [-1, 1], got {images.dtype}")
        h, w = images.shape[-2:]
        if h % self.stride or w % self.stride:
            raise ShapeError(f"image height and width must be multiples of {self.stride}, got {h}x{w}")
        p = self.config.patch
        skips = [self.stem(F.pixel_unshuffle(images, p) if p > 1 else images)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        logits = self.head(x)
        return F.pixel_shuffle(logits, p) if p > 1 else logits


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
