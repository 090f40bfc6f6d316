"""Training augmentations that make the segmenter robust to *generated* images.

Images produced by the diffusion model are blurrier, noisier and colour-shifted
compared with the rendered scenes the segmenter is trained on, so each training image
gets (all random, per image): a small zoom-in with a random crop, a left-right flip,
brightness / contrast / saturation changes and per-channel gains, an optional Gaussian
blur and optional Gaussian noise. Label maps follow the geometric changes with
nearest-neighbour sampling, so no new ids appear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gesco.config_base import ConfigBase


@dataclass(frozen=True)
class AugmentConfig(ConfigBase):
    """Ranges of the random augmentations (image values in ``[-1, 1]``).

    Attributes:
        hflip: flip left-right with probability 1/2.
        scale_max: zoom in by a factor drawn from ``[1, scale_max]``, then crop back.
        brightness: add ``U(-brightness, brightness)``.
        contrast: scale around the image mean by ``U(1 - contrast, 1 + contrast)``.
        saturation: scale the distance to grey by ``U(1 - saturation, 1 + saturation)``.
        channel_gain: multiply each RGB channel of ``(x + 1)`` by ``U(1 - g, 1 + g)``.
        blur_p, blur_sigma_max: blur with probability ``blur_p``, sigma ``U(0.3, blur_sigma_max)`` pixels.
        noise_p, noise_std_max: add Gaussian noise with probability ``noise_p``, std ``U(0, noise_std_max)``.
    """

    hflip: bool = True
    scale_max: float = 1.25
    brightness: float = 0.15
    contrast: float = 0.25
    saturation: float = 0.3
    channel_gain: float = 0.1
    blur_p: float = 0.4
    blur_sigma_max: float = 1.2
    noise_p: float = 0.4
    noise_std_max: float = 0.12


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` float images (reflect padding), radius ``ceil(3 sigma)``."""
    if sigma <= 0:
        return images
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    c = images.shape[1]
    pad = min(radius, images.shape[-1] - 1, images.shape[-2] - 1)
    if pad < radius:  # tiny images: crop the kernel to what reflect padding allows
        k = k[radius - pad : radius + pad + 1]
        k = k / k.sum()
    out = F.pad(images, (pad, pad, 0, 0), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, pad, pad), mode="reflect")
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def augment_batch(
    images: torch.Tensor, labels: torch.Tensor, config: AugmentConfig, generator: torch.Generator,
    crop_width: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch.

    Args:
        images: float32 ``(B, 3, H, W)`` in ``[-1, 1]``.
        labels: int64 ``(B, H, W)`` label ids.
        config: augmentation ranges.
        generator: the only source of randomness (deterministic given its state).
        crop_width: when given, a random horizontal crop of that width (full height).
    Returns:
        ``(images (B, 3, H, W'), labels (B, H, W'))`` with ``W' = crop_width or W``,
        images clamped to ``[-1, 1]``.
    """
    b, _, h, w = images.shape
    cw = w if crop_width is None else int(crop_width)
    out_i, out_l = [], []
    for i in range(b):
        img, lab = images[i : i + 1], labels[i : i + 1, None].float()
        s = _uniform(generator, 1.0, max(1.0, config.scale_max))
        hs, ws = max(h, round(h * s)), max(w, round(w * s))
        if (hs, ws) != (h, w):
            img = F.interpolate(img, size=(hs, ws), mode="bilinear", align_corners=False)
            lab = F.interpolate(lab, size=(hs, ws), mode="nearest")
        y0 = int(torch.randint(0, hs - h + 1, (), generator=generator))
        x0 = int(torch.randint(0, ws - cw + 1, (), generator=generator))
        img, lab = img[..., y0 : y0 + h, x0 : x0 + cw], lab[..., y0 : y0 + h, x0 : x0 + cw]
        if config.hflip and float(torch.rand((), generator=generator)) < 0.5:
            img, lab = img.flip(-1), lab.flip(-1)
        # photometric changes on x in [0, 2]
        x = img + 1.0
        gains = 1.0 + config.channel_gain * (2 * torch.rand(1, 3, 1, 1, generator=generator) - 1)
        x = x * gains
        grey = x.mean(dim=1, keepdim=True)
        x = grey + (x - grey) * _uniform(generator, 1 - config.saturation, 1 + config.saturation)
        mean = x.mean()
        x = mean + (x - mean) * _uniform(generator, 1 - config.contrast, 1 + config.contrast)
        x = x - 1.0 + _uniform(generator, -config.brightness, config.brightness)
        if float(torch.rand((), generator=generator)) < config.blur_p:
            x = gaussian_blur(x, _uniform(generator, 0.3, max(0.3, config.blur_sigma_max)))
        if float(torch.rand((), generator=generator)) < config.noise_p:
            x = x + _uniform(generator, 0.0, config.noise_std_max) * torch.randn(x.shape, generator=generator)
        out_i.append(x.clamp(-1.0, 1.0))
        out_l.append(lab[:, 0].long())
    return torch.cat(out_i), torch.cat(out_l)
