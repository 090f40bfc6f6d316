"""The SPADE-conditioned U-Net of the semantic diffusion model (paper section 3.4, Fig. 6).

Encoder residual blocks see only the noisy image and the time step (conv, SiLU,
GroupNorm, time embedding as scale and shift). Middle and decoder blocks replace the
GroupNorm with SPADE: a GroupNorm without affine parameters whose output is modulated
by ``gamma(y)`` and ``beta(y)`` computed from the semantic map ``y`` resized (nearest) to
the feature size,

    SPADE(h, y) = GN(h) * (1 + gamma(y)) + beta(y).

Multi-head self-attention (``head_channels`` per head, 64 by default) runs at the
downsampling factors listed in ``attention_ds``. The output has ``2 * image_channels``
channels when the variance is learned (epsilon and the interpolation ``v`` of Eq. 7).

Shapes: ``x`` ``(B, 3, H, W)`` float, ``t`` ``(B,)`` int or float time steps in ``[0, T)``,
``y`` ``(B, label_channels, H, W)`` float semantic maps (zeros = the null label of
classifier-free guidance). ``H`` and ``W`` must be divisible by ``2 ** (len(channel_mult) - 1)``.

A leaner full-resolution path than the authors' code (a choice, see ``spade_hidden``):
the label embedding ``ReLU(conv3x3(y))`` that SPADE starts from is computed once per
resolution level and shared by the SPADE layers of that level, instead of once per
layer; each layer keeps its own ``gamma`` / ``beta`` convolutions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from gesco.config_base import ConfigBase


@dataclass
class UNetConfig(ConfigBase):
    """Architecture of the SPADE U-Net.

    Attributes:
        image_channels: channels of the generated image (3).
        label_channels: channels of the semantic conditioning (classes + 1 edge map).
        base_channels: channels at full resolution.
        channel_mult: per-level multipliers of ``base_channels``; level ``i`` works at
            ``1 / 2**i`` of the input resolution.
        num_res_blocks: residual blocks per encoder level (decoder levels get one more),
            an int or one int per level.
        attention_ds: downsampling factors (1, 2, 4, ...) where self-attention runs.
        head_channels: channels per attention head.
        spade_hidden: channels of the SPADE label embedding (128 in the authors' code).
        spade_kernel: kernel of the per-layer ``gamma`` / ``beta`` convolutions (3 in the
            authors' code; 1 by default here, about 9x cheaper: the shared 3x3 label
            embedding already gives them a 3x3 view of the map).
        learn_sigma: also predict the variance interpolation ``v`` (Eq. 7).
        dropout: dropout rate inside residual blocks.
        num_groups: GroupNorm groups (32 in the paper; reduced automatically when a
            layer has fewer channels than groups). With one channel per group (32 groups on
            32 channels) a GroupNorm is an InstanceNorm: it removes each channel's spatial
            mean, so the output head cannot pass the input's mean colour through (see
            ``mean_skip``).
        mean_skip: add ``G(t) mean(x_t) + Q(t) mean(y)`` to the predicted epsilon: ``G(t)`` a
            ``C x C`` and ``Q(t)`` a ``C x L`` matrix read off the time embedding by
            zero-initialised linear layers (so a model warm-started with them computes what
            it did before); ``mean(y)`` is the fraction of pixels of each label map. This is
            the form of the Bayes-optimal estimate of the noise's mean under a Gaussian prior
            on the image's mean colour centred on a label-dependent colour ``mu(y)``,
            ``mean(eps) = k(t) (mean(x_t) - sqrt(abar_t) mu(y)) / sqrt(1 - abar_t)``, with
            ``mu(y)`` linear in the class fractions. Epsilon prediction at
            high noise needs ``mean(eps_hat) ~ k(t) mean(x_t)`` with ``k`` near 1 for
            ``t > 700`` (the noise's own mean is ~1/sqrt(H W) and ``x0_hat`` divides its
            error by ``sqrt(abar_t)``, 1/156 at ``t = 999``); a network whose normalisations
            remove per-channel means cannot compute it, and samples then take the starting
            noise's mean as their colour (docs/training.md, "The colour cast").
    """

    image_channels: int = 3
    label_channels: int = 36
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 1, 2, 4)
    num_res_blocks: int | tuple[int, ...] = (1, 2, 2, 2)
    attention_ds: tuple[int, ...] = (4, 8)
    head_channels: int = 64
    spade_hidden: int = 64
    spade_kernel: int = 1
    learn_sigma: bool = True
    dropout: float = 0.0
    num_groups: int = 32
    mean_skip: bool = False

    def __post_init__(self) -> None:
        self.channel_mult = tuple(int(m) for m in self.channel_mult)
        self.attention_ds = tuple(int(a) for a in self.attention_ds)
        if isinstance(self.num_res_blocks, (list, tuple)):
            self.num_res_blocks = tuple(int(n) for n in self.num_res_blocks)
            if len(self.num_res_blocks) != len(self.channel_mult):
                raise ValueError("num_res_blocks needs one entry per level of channel_mult")

    def blocks_per_level(self) -> tuple[int, ...]:
        if isinstance(self.num_res_blocks, tuple):
            return self.num_res_blocks
        return (int(self.num_res_blocks),) * len(self.channel_mult)

    @property
    def out_channels(self) -> int:
        return self.image_channels * (2 if self.learn_sigma else 1)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)

    @classmethod
    def paper_cityscapes(cls) -> UNetConfig:
        """The paper's Cityscapes model (supplementary "Experimental Details").

        Channels 256, 256, 512, 512, 1024, 1024; attention at resolutions 32, 16, 8 of a
        256-pixel image (downsampling factors 8, 16, 32); 64 channels per head; two
        residual blocks per level; SPADE hidden width 128; 35 classes + 1 edge map.
        """
        return cls(
            label_channels=36,
            base_channels=256,
            channel_mult=(1, 1, 2, 2, 4, 4),
            num_res_blocks=2,
            attention_ds=(8, 16, 32),
            head_channels=64,
            spade_hidden=128,
            spade_kernel=3,
        )


#: parameter-name prefixes of the mean-colour path (``UNetConfig.mean_skip``): the layers a
#: warm start may add to a checkpoint that has none, and what ``trainable`` fits alone.
MEAN_PATH_PREFIXES = ("mean_skip.", "mean_prior.")


def _groups(channels: int, num_groups: int) -> int:
    g = min(num_groups, channels)
    while channels % g:
        g -= 1
    return g


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) time steps, ``(B,) -> (B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def zero_module(m: nn.Module) -> nn.Module:
    for p in m.parameters():
        nn.init.zeros_(p)
    return m


class SPADE(nn.Module):
    """``GN(h) * (1 + gamma) + beta`` with ``gamma, beta = conv3x3(e)``, ``e`` the level's label embedding."""

    def __init__(self, channels: int, hidden: int, num_groups: int, kernel: int = 3) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels, num_groups), channels, affine=False)
        self.gamma_beta = nn.Conv2d(hidden, 2 * channels, kernel, padding=kernel // 2)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.gamma_beta(emb).chunk(2, dim=1)
        return self.norm(h) * (1 + gamma) + beta


class ResBlock(nn.Module):
    """Residual block with time conditioning as scale/shift; SPADE norms when ``spade_hidden``.

    ``h = conv(SiLU(N1(x)))``; ``h = N2(h) * (1 + s(t)) + b(t)``; ``h = conv(dropout(SiLU(h)))``;
    out = ``skip(x) + h``. ``N1, N2`` are GroupNorm (encoder) or SPADE (middle, decoder).
    """

    def __init__(
                self,
        in_ch: int,
        out_ch: int,
        emb_dim: int,
        dropout: float,
        num_groups: int,
        spade_hidden: int | None,
        spade_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.spade = spade_hidden is not None
        if self.spade:
            self.norm1 = SPADE(in_ch, spade_hidden, num_groups, spade_kernel)
            self.norm2 = SPADE(out_ch, spade_hidden, num_groups, spade_kernel)
        else:
            self.norm1 = nn.GroupNorm(_groups(in_ch, num_groups), in_ch)
            self.norm2 = nn.GroupNorm(_groups(out_ch, num_groups), out_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.drop = nn.Dropout(dropout)
        self.conv2 = zero_module(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def _norm(self, norm: nn.Module, h: torch.Tensor, lab: torch.Tensor | None) -> torch.Tensor:
        return norm(h, lab) if self.spade else norm(h)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, lab: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self._norm(self.norm1, x, lab)))
        scale, shift = self.emb(F.silu(temb))[:, :, None, None].chunk(2, dim=1)
        h = self._norm(self.norm2, h, lab) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the spatial positions, ``head_channels`` per head."""

    def __init__(self, channels: int, head_channels: int, num_groups: int) -> None:
        super().__init__()
        self.heads = max(1, channels // head_channels)
        self.norm = nn.GroupNorm(_groups(channels, num_groups), channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = zero_module(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x).reshape(b, c, h * w))  # (B, 3C, N)
        q, k, v = qkv.reshape(b, 3, self.heads, c // self.heads, h * w).permute(1, 0, 2, 4, 3)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, C/heads)
        out = out.permute(0, 1, 3, 2).reshape(b, c, h * w)
        return x + self.proj(out).reshape(b, c, h, w)


class LabelEmbedding(nn.Module):
    """Per-level label embedding ``ReLU(conv3x3(resize_nearest(y)))`` shared by the level's SPADE layers."""

    def __init__(self, label_channels: int, hidden: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(label_channels, hidden, 3, padding=1)

    def forward(self, y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if y.shape[-2:] != size:
            y = F.interpolate(y, size=size, mode="nearest")
        return F.relu(self.conv(y))


class SpadeUNet(nn.Module):
    """The semantic diffusion U-Net: ``(x_t, t, y) -> (eps, v)`` (paper Fig. 6)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        ch = cfg.base_channels
        emb_dim = 4 * ch
        self.time_embed = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.input_conv = nn.Conv2d(cfg.image_channels, ch, 3, padding=1)
        blocks = cfg.blocks_per_level()
        g = cfg.num_groups

        # Encoder: GroupNorm resblocks (no semantics), attention at attention_ds.
        self.down = nn.ModuleList()
        skip_chs = [ch]
        cur = ch
        for level, mult in enumerate(cfg.channel_mult):
            ds = 2**level
            for _ in range(blocks[level]):
                layer = nn.ModuleList([ResBlock(cur, mult * ch, emb_dim, cfg.dropout, g, None)])
                cur = mult * ch
                if ds in cfg.attention_ds:
                    layer.append(Attention(cur, cfg.head_channels, g))
                self.down.append(layer)
                skip_chs.append(cur)
            if level < len(cfg.channel_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(cur, cur, 3, stride=2, padding=1)]))
                skip_chs.append(cur)

        # Middle: SPADE resblock, attention, SPADE resblock.
        bottom = 2 ** (len(cfg.channel_mult) - 1)
        self.mid1 = ResBlock(cur, cur, emb_dim, cfg.dropout, g, cfg.spade_hidden, cfg.spade_kernel)
        self.mid_attn = Attention(cur, cfg.head_channels, g)
        self.mid2 = ResBlock(cur, cur, emb_dim, cfg.dropout, g, cfg.spade_hidden, cfg.spade_kernel)

        # Decoder: SPADE resblocks over [h, skip], attention, nearest upsampling + conv.
        self.up = nn.ModuleList()
        self.up_levels: list[int] = []
        for level in reversed(range(len(cfg.channel_mult))):
            mult = cfg.channel_mult[level]
            ds = 2**level
            for i in range(blocks[level] + 1):
                layer = nn.ModuleList(
                    [ResBlock(cur + skip_chs.pop(), mult * ch, emb_dim, cfg.dropout, g, cfg.spade_hidden, cfg.spade_kernel)]
                )
                cur = mult * ch
                if ds in cfg.attention_ds:
                    layer.append(Attention(cur, cfg.head_channels, g))
                if level > 0 and i == blocks[level]:
                    layer.append(nn.Conv2d(cur, cur, 3, padding=1))  # after nearest x2 upsampling
                self.up.append(layer)
                self.up_levels.append(level)
        self.label_embed = nn.ModuleList(
            [LabelEmbedding(cfg.label_channels, cfg.spade_hidden) for _ in cfg.channel_mult]
        )
        self.out = nn.Sequential(
            nn.GroupNorm(_groups(cur, g), cur), nn.SiLU(), zero_module(nn.Conv2d(cur, cfg.out_channels, 3, padding=1))
        )
        self._bottom = bottom
        c = cfg.image_channels
        self.mean_skip = zero_module(nn.Linear(emb_dim, c * c)) if cfg.mean_skip else None
        self.mean_prior = zero_module(nn.Linear(emb_dim, c * cfg.label_channels)) if cfg.mean_skip else None

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if x.shape[-2] % self._bottom or x.shape[-1] % self._bottom:
            raise ValueError(f"image size {tuple(x.shape[-2:])} must be divisible by {self._bottom}")
        temb = self.time_embed(timestep_embedding(t, cfg.base_channels))
        y = y.to(x.dtype)
        h = self.input_conv(x)
        hs = [h]
        for layer in self.down:
            if isinstance(layer[0], ResBlock):
                h = layer[0](h, temb)
                for m in layer[1:]:
                    h = m(h)
            else:
                h = layer[0](h)
            hs.append(h)
        # Label embeddings, one per level, computed lazily at the level's feature size.
        lab: dict[int, torch.Tensor] = {}

        def label_at(level: int, size: tuple[int, int]) -> torch.Tensor:
            if level not in lab:
                lab[level] = self.label_embed[level](y, size)
            return lab[level]

        last = len(cfg.channel_mult) - 1
        e = label_at(last, tuple(h.shape[-2:]))
        h = self.mid2(self.mid_attn(self.mid1(h, temb, e)), temb, e)
        for layer, level in zip(self.up, self.up_levels):
            h = torch.cat([h, hs.pop()], dim=1)
            h = layer[0](h, temb, label_at(level, tuple(h.shape[-2:])))
            for m in layer[1:]:
                if isinstance(m, nn.Conv2d):
                    h = m(F.interpolate(h, scale_factor=2.0, mode="nearest"))
                else:
                    h = m(h)
        out = self.out(h)
        if self.mean_skip is not None:
            # eps_hat += G(t) mean(x_t) + Q(t) mean(y): (B, C, C) @ (B, C, 1) + (B, C, L) @ (B, L, 1),
            # broadcast over the pixels
            c = cfg.image_channels
            e = F.silu(temb)
            gain = self.mean_skip(e).view(-1, c, c)
            prior = self.mean_prior(e).view(-1, c, cfg.label_channels)
            dc = torch.bmm(gain, x.mean(dim=(2, 3)).unsqueeze(-1).to(gain.dtype))
            dc = (dc + torch.bmm(prior, y.mean(dim=(2, 3)).unsqueeze(-1).to(prior.dtype)))[..., None]
            out = torch.cat([out[:, :c] + dc.to(out.dtype), out[:, c:]], dim=1)
        return out
