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

By default a leaner full-resolution path than the authors' code (a choice, see
``spade_hidden``): the label embedding ``ReLU(conv3x3(y))`` that SPADE starts from is
computed once per resolution level and shared by the SPADE layers of that level, instead
of once per layer; each layer keeps its own ``gamma`` / ``beta`` convolutions.

The authors' layout (SDM / GESCO, :meth:`UNetConfig.authors`) is the same mathematics
with three switches: ``spade_per_layer`` (every SPADE has its own label MLP, as their
``SPADEGroupNorm``), ``resblock_updown`` (down / up sampling by residual blocks that
average-pool / nearest-upsample inside, as their ``resblock_updown True``) and
``label_input`` (which channels of the conditioning the network reads: all, all but the
edge map for data sets without instances, or GESCO's 2-channel ``(label id, edge)``
variant). :mod:`gesco.diffusion.authors_import` maps their checkpoints onto it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
        spade_per_layer: every SPADE computes its own label embedding
            ``ReLU(conv3x3(resize_nearest(y)))`` (the authors' ``mlp_shared``) instead of
            sharing one per resolution level. Off for gesco's own checkpoints.
        resblock_updown: down-sample with a residual block that average-pools (2x2)
            inside (after its first norm + SiLU, on the skip path too) and up-sample with a
            SPADE residual block that upsamples (nearest, x2) the same way, instead of a
            stride-2 conv and nearest upsampling + conv (the authors' ``resblock_updown``).
        label_input: which channels of the conditioning ``y`` ``(B, label_channels, H, W)``
            (class maps + the edge map, last) the network reads: ``"onehot"`` all of them;
            ``"onehot_no_edge"`` all but the edge map (models trained without instances,
            e.g. ADE20K); ``"index_edge"`` two channels, the class index
            ``argmax_c y[:, c]`` as a float and the edge map (GESCO's
            ``one_hot_label=False`` variant; an all-zero null label maps to ``(0, 0)``).
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
    spade_per_layer: bool = False
    resblock_updown: bool = False
    label_input: str = "onehot"

    def __post_init__(self) -> None:
        if self.label_input not in LABEL_INPUTS:
            raise ValueError(f"label_input {self.label_input!r} is not one of {', '.join(LABEL_INPUTS)}")
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
    def label_in_channels(self) -> int:
        """Channels the SPADE label MLPs read (see ``label_input``)."""
        return {"onehot": self.label_channels, "onehot_no_edge": self.label_channels - 1, "index_edge": 2}[
            self.label_input]

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

    @classmethod
    def authors(cls, label_channels: int = 36, label_input: str = "onehot", base_channels: int = 256,
                channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4), num_res_blocks: int = 2,
                attention_ds: tuple[int, ...] = (8, 16, 32), head_channels: int = 64,
                learn_sigma: bool = True) -> UNetConfig:
        """The authors' network (SDM / GESCO ``UNetModel``) with their published flags by default.

        Defaults are the Cityscapes flags of the paper's model: ``--num_channels 256
        --channel_mult 1,1,2,2,4,4 --num_res_blocks 2 --attention_resolutions 32,16,8``
        (of a 256-pixel image: downsampling factors 8, 16, 32) ``--num_head_channels 64
        --resblock_updown True --use_scale_shift_norm True --learn_sigma True``, 35 classes +
        1 edge map. SPADE: 128 hidden channels, 3x3 convs, one label MLP per SPADE. At
        these defaults the network has 653,984,518 parameters, as SDM's.
        """
        return cls(
            label_channels=label_channels,
            base_channels=base_channels,
            channel_mult=channel_mult,
            num_res_blocks=num_res_blocks,
            attention_ds=attention_ds,
            head_channels=head_channels,
            spade_hidden=128,
            spade_kernel=3,
            learn_sigma=learn_sigma,
            spade_per_layer=True,
            resblock_updown=True,
            label_input=label_input,
        )


#: values of :attr:`UNetConfig.label_input`
LABEL_INPUTS = ("onehot", "onehot_no_edge", "index_edge")

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
    """``GN(h) * (1 + gamma) + beta`` with ``gamma, beta = conv(e)`` from a label embedding ``e``.

    With ``label_channels`` (``spade_per_layer``) the layer owns its label MLP and its
    input is the conditioning resized to the feature size, ``e = ReLU(conv3x3(y))``; otherwise
    ``e`` is the level's shared embedding. ``gamma`` and ``beta`` come from one convolution
    with ``2 * channels`` outputs (the authors' ``mlp_gamma`` then ``mlp_beta``, stacked).
    """

    def __init__(self, channels: int, hidden: int, num_groups: int, kernel: int = 3,
                 label_channels: int | None = None) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels, num_groups), channels, affine=False)
        self.label = LabelEmbedding(label_channels, hidden) if label_channels is not None else None
        self.gamma_beta = nn.Conv2d(hidden, 2 * channels, kernel, padding=kernel // 2)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        emb = self.label(cond, tuple(h.shape[-2:])) if self.label is not None else cond
        gamma, beta = self.gamma_beta(emb).chunk(2, dim=1)
        return self.norm(h) * (1 + gamma) + beta


#: ``label_at(size)``: the conditioning a SPADE layer reads at feature size ``(h, w)``
LabelAt = Callable[[tuple[int, int]], torch.Tensor]


class ResBlock(nn.Module):
    """Residual block with time conditioning as scale/shift; SPADE norms when ``spade_hidden``.

    ``h = conv(R(SiLU(N1(x))))``; ``h = N2(h) * (1 + s(t)) + b(t)``; ``h = conv(dropout(SiLU(h)))``;
    out = ``skip(R(x)) + h``. ``N1, N2`` are GroupNorm (encoder) or SPADE (middle, decoder);
    ``R`` is the identity, or with ``updown`` a 2x2 average pooling (``"down"``) or a nearest
    x2 upsampling (``"up"``), so ``N2`` works at the output size.
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
        spade_label_channels: int | None = None,
        updown: str | None = None,
    ) -> None:
        super().__init__()
        if updown not in (None, "down", "up"):
            raise ValueError(f"updown must be None, 'down' or 'up', got {updown!r}")
        self.spade = spade_hidden is not None
        self.updown = updown
        if self.spade:
            self.norm1 = SPADE(in_ch, spade_hidden, num_groups, spade_kernel, spade_label_channels)
            self.norm2 = SPADE(out_ch, spade_hidden, num_groups, spade_kernel, spade_label_channels)
        else:
            self.norm1 = nn.GroupNorm(_groups(in_ch, num_groups), in_ch)
            self.norm2 = nn.GroupNorm(_groups(out_ch, num_groups), out_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.drop = nn.Dropout(dropout)
        self.conv2 = zero_module(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def _norm(self, norm: nn.Module, h: torch.Tensor, lab: torch.Tensor | LabelAt | None) -> torch.Tensor:
        if not self.spade:
            return norm(h)
        return norm(h, lab(tuple(h.shape[-2:])) if callable(lab) else lab)

    def _resample(self, h: torch.Tensor) -> torch.Tensor:
        if self.updown == "down":
            return F.avg_pool2d(h, 2)
        if self.updown == "up":
            return F.interpolate(h, scale_factor=2.0, mode="nearest")
        return h

    def forward(self, x: torch.Tensor, temb: torch.Tensor, lab: torch.Tensor | LabelAt | None = None) -> torch.Tensor:
        """``lab``: the level's label embedding, or ``label_at`` (needed when the block resamples)."""
        h = F.silu(self._norm(self.norm1, x, lab))
        if self.updown is not None:
            h, x = self._resample(h), self._resample(x)
        h = self.conv1(h)
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


def _encoder(cfg: UNetConfig, emb_dim: int) -> tuple[nn.ModuleList, list[int]]:
    """The encoder's layers (GroupNorm resblocks, attention at ``attention_ds``, x2 downsampling
    between levels) and the channels of every skip feature, the input conv's first."""
    ch, g, blocks = cfg.base_channels, cfg.num_groups, cfg.blocks_per_level()
    down = nn.ModuleList()
    skip_chs = [ch]
    cur = ch
    for level, mult in enumerate(cfg.channel_mult):
        ds = 2**level
        for _ in range(blocks[level]):
            layer = nn.ModuleList([ResBlock(cur, mult * ch, emb_dim, cfg.dropout, g, None)])
            cur = mult * ch
            if ds in cfg.attention_ds:
                layer.append(Attention(cur, cfg.head_channels, g))
            down.append(layer)
            skip_chs.append(cur)
        if level < len(cfg.channel_mult) - 1:
            if cfg.resblock_updown:
                down.append(nn.ModuleList([ResBlock(cur, cur, emb_dim, cfg.dropout, g, None, updown="down")]))
            else:
                down.append(nn.ModuleList([nn.Conv2d(cur, cur, 3, stride=2, padding=1)]))
            skip_chs.append(cur)
    return down, skip_chs


def _decoder(cfg: UNetConfig, skip_chs: list[int],
             spade_block: Callable[..., ResBlock]) -> tuple[nn.ModuleList, list[int]]:
    """The decoder's layers (SPADE resblocks over ``[h, skip]``, attention, x2 upsampling) and
    each layer's level; pops ``skip_chs``."""
    ch, g, blocks = cfg.base_channels, cfg.num_groups, cfg.blocks_per_level()
    up = nn.ModuleList()
    levels: list[int] = []
    cur = skip_chs[-1]
    for level in reversed(range(len(cfg.channel_mult))):
        mult = cfg.channel_mult[level]
        ds = 2**level
        for i in range(blocks[level] + 1):
            layer = nn.ModuleList([spade_block(cur + skip_chs.pop(), mult * ch)])
            cur = mult * ch
            if ds in cfg.attention_ds:
                layer.append(Attention(cur, cfg.head_channels, g))
            if level > 0 and i == blocks[level]:
                if cfg.resblock_updown:
                    layer.append(spade_block(cur, cur, updown="up"))
                else:
                    layer.append(nn.Conv2d(cur, cur, 3, padding=1))  # after nearest x2 upsampling
            up.append(layer)
            levels.append(level)
    return up, levels


class SpadeUNet(nn.Module):
    """The semantic diffusion U-Net: ``(x_t, t, y) -> (eps, v)`` (paper Fig. 6)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        ch = cfg.base_channels
        emb_dim = 4 * ch
        self.time_embed = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.input_conv = nn.Conv2d(cfg.image_channels, ch, 3, padding=1)
        g = cfg.num_groups
        per_layer = cfg.label_in_channels if cfg.spade_per_layer else None

        def spade_block(in_ch: int, out_ch: int, updown: str | None = None) -> ResBlock:
            return ResBlock(in_ch, out_ch, emb_dim, cfg.dropout, g, cfg.spade_hidden, cfg.spade_kernel, per_layer,
                            updown)

        # Encoder: GroupNorm resblocks (no semantics), attention at attention_ds.
        down, skip_chs = _encoder(cfg, emb_dim)
        self.down = down
        cur = skip_chs[-1]

        # Middle: SPADE resblock, attention, SPADE resblock.
        bottom = 2 ** (len(cfg.channel_mult) - 1)
        self.mid1 = spade_block(cur, cur)
        self.mid_attn = Attention(cur, cfg.head_channels, g)
        self.mid2 = spade_block(cur, cur)

        # Decoder: SPADE resblocks over [h, skip], attention, then x2 upsampling: nearest + conv,
        # or a SPADE resblock that upsamples (resblock_updown).
        up, self.up_levels = _decoder(cfg, skip_chs, spade_block)
        self.up = up
        cur = cfg.channel_mult[0] * ch
        if not cfg.spade_per_layer:
            self.label_embed = nn.ModuleList(
                [LabelEmbedding(cfg.label_in_channels, cfg.spade_hidden) for _ in cfg.channel_mult]
            )
        self.out = nn.Sequential(
            nn.GroupNorm(_groups(cur, g), cur), nn.SiLU(), zero_module(nn.Conv2d(cur, cfg.out_channels, 3, padding=1))
        )
        self._bottom = bottom
        c = cfg.image_channels
        self.mean_skip = zero_module(nn.Linear(emb_dim, c * c)) if cfg.mean_skip else None
        self.mean_prior = zero_module(nn.Linear(emb_dim, c * cfg.label_channels)) if cfg.mean_skip else None

    def label_input(self, y: torch.Tensor) -> torch.Tensor:
        """The channels of ``y`` ``(B, label_channels, H, W)`` the SPADE layers read (``UNetConfig.label_input``)."""
        mode = self.config.label_input
        if mode == "onehot":
            return y
        if mode == "onehot_no_edge":
            return y[:, :-1]
        index = y[:, :-1].argmax(dim=1, keepdim=True).to(y.dtype)  # the null label (all zeros) gives index 0
        return torch.cat([index, y[:, -1:]], dim=1)

    def _encode(self, h: torch.Tensor, temb: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's features, input conv's first: ``hs[-1]`` goes to the middle, the rest to the skips."""
        hs = [h]
        for layer in self.down:
            if isinstance(layer[0], ResBlock):
                h = layer[0](h, temb)
                for m in layer[1:]:
                    h = m(h)
            else:
                h = layer[0](h)
            hs.append(h)
        return hs

    def _decode(self, h: torch.Tensor, hs: list[torch.Tensor], temb: torch.Tensor,
                label_at: LabelAt) -> torch.Tensor:
        """The decoder over ``[h, skip]`` (popping ``hs``), SPADE layers reading ``label_at(size)``."""
        for layer in self.up:
            h = torch.cat([h, hs.pop()], dim=1)
            h = layer[0](h, temb, label_at)
            for m in layer[1:]:
                if isinstance(m, ResBlock):
                    h = m(h, temb, label_at)
                elif isinstance(m, nn.Conv2d):
                    h = m(F.interpolate(h, scale_factor=2.0, mode="nearest"))
                else:
                    h = m(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if x.shape[-2] % self._bottom or x.shape[-1] % self._bottom:
            raise ValueError(f"image size {tuple(x.shape[-2:])} must be divisible by {self._bottom}")
        temb = self.time_embed(timestep_embedding(t, cfg.base_channels))
        y = y.to(x.dtype)
        hs = self._encode(self.input_conv(x), temb)
        h = hs[-1]
        # What a SPADE layer reads at feature size ``size``, computed once per size: the
        # level's shared label embedding, or (spade_per_layer) the conditioning resized
        # (nearest) for the layer's own label MLP.
        lab: dict[tuple[int, int], torch.Tensor] = {}
        y_in = self.label_input(y) if cfg.spade_per_layer else y
        full = x.shape[-2]

        def label_at(size: tuple[int, int]) -> torch.Tensor:
            if size not in lab:
                if cfg.spade_per_layer:
                    lab[size] = y_in if y_in.shape[-2:] == size else F.interpolate(y_in, size=size, mode="nearest")
                else:
                    level = int(round(math.log2(full / size[0])))
                    lab[size] = self.label_embed[level](self.label_input(y), size)
            return lab[size]

        h = self.mid2(self.mid_attn(self.mid1(h, temb, label_at)), temb, label_at)
        out = self.out(self._decode(h, hs, temb, label_at))
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
