"""The analog rows of an evaluation, one batch of scenes at one PSNR each
(the digital rows: :mod:`gesco.evaluate.digital_rows`):

* the real row keeps the image;
* the "Full image" row sends the pixels with :func:`gesco.channel.transmit_image`;
* semantic rows call the services' own stages, in order:
  :func:`gesco.link.encode_image_frame` (sender; the scene's ground-truth label and
  instance maps, as GESCO transmits them), :func:`gesco.link.apply_channel` (channel,
  Eq. 1), :func:`gesco.link.received_conditioning` (receiver, Eq. 2 with or without FDS)
  and :meth:`gesco.diffusion.pipeline.SemanticGenerator.generate` (guided sampling).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from gesco.channel import get_channel, transmit_image
from gesco.codecs.budget import image_bits
from gesco.evaluate.config import eval_frame_id, scene_seed, sent_instance
from gesco.evaluate.context import EvalContext, score_batch
from gesco.evaluate.methods import (
    equal_use_factor,
)
from gesco.evaluate.plan import RowPlan, row_channel_params, row_guidance
from gesco.evaluate.store import UnitResult
from gesco.link import (
    TransmitSettings,
    apply_channel,
    budget_record,
    colour_labels,
    encode_image_frame,
    encode_png,
    received_conditioning,
    stage_seed,
)
from gesco.semantics.instances import EDGES_NONE
from gesco.wire.frames import n_maps


def real_batch(ctx: EvalContext, plan: RowPlan, psnr: float | None, idx: list[int]) -> list[UnitResult]:
    """The real row: the scenes' images scored against themselves (the ceiling of every metric)."""
    real, labels = ctx.real(idx)
    metrics, feats = ctx.scorers.score(real, real, labels)
    out = []
    for j, i in enumerate(idx):
        ctx.save_sample("real", None, i, ctx.scene(i).image)
        if i < ctx.config.grid_scenes:
            folder = ctx.samples / "label"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"scene{i:03d}.png").write_bytes(encode_png(colour_labels(ctx.scene(i).label, ctx.space)))
        out.append(UnitResult(plan.method.key, None, i, metrics[j], feats[j]))
    return out


def full_image_batch(ctx: EvalContext, plan: RowPlan, psnr: float, idx: list[int]) -> list[UnitResult]:
    """The "Full image" baseline: each pixel value one real symbol through the channel."""
    real, _ = ctx.real(idx)
    channel = get_channel(plan.channel or ctx.config.channel, **row_channel_params(ctx.config, plan))
    h, w = ctx.resolution
    received, extra = [], []
    for j, i in enumerate(idx):
        gen = torch.Generator().manual_seed(stage_seed(scene_seed(ctx.config.seed, i), "channel"))
        rx, res = transmit_image((real[j:j + 1] + 1.0) / 2.0, channel, psnr, generator=gen)  # [0, 1] pixels
        received.append(rx * 2.0 - 1.0)
        ref = image_bits(ctx.scene(i).image)
        extra.append({
            "total_bits": ref.raw, "png_bits": ref.png, "jpeg_bits": ref.jpeg, "raw_bits": ref.raw,
            "channel_uses": int(res.channel_uses[0]), "channel_uses_per_pixel": int(res.channel_uses[0]) / (h * w),
            "measured_snr_db": _finite(float(res.measured_snr_db[0])),
        })
    return score_batch(ctx, plan.method.key, psnr, idx, torch.cat(received), extra)


def _semantic_frame(ctx: EvalContext, plan: RowPlan, psnr: float, i: int,
                    transmit: TransmitSettings) -> tuple[Any, int]:
    """The sender's stage for scene ``i``: its frame, and the maps' downsampling factor (1, or
    the equal-uses row's factor that fits the full image's channel uses)."""
    cfg, (h, w), scene = ctx.config, ctx.resolution, ctx.scene(i)

    def encode(factor: int):
        frame, _ = encode_image_frame(scene.image, scene.label, sent_instance(scene, cfg), space=ctx.space,
                                      resolution=(h, w), frame_id=eval_frame_id(plan.method.key, psnr, i),
                                      transmit=replace(transmit, codec=cfg.codec, downsample=factor),
                                      derive_edges=cfg.edges != EDGES_NONE,
                                      instance_ids=ctx.instance_ids(plan.checkpoint))
        return frame

    factor = 1
    frame = encode(factor)
    if plan.method.equal_uses:
        factor = equal_use_factor(n_maps(frame), h, w)
        if factor > 1:
            frame = encode(factor)
    return frame, factor


def semantic_batch(ctx: EvalContext, plan: RowPlan, psnr: float, idx: list[int]) -> list[UnitResult]:
    """GESCO through the services' stages (:mod:`gesco.link`), then guided sampling."""
    cfg, (h, w) = ctx.config, ctx.resolution
    conds, settings, extra = [], [], []
    for i in idx:
        transmit = TransmitSettings(psnr_db=float(psnr), channel=plan.channel or cfg.channel, sampler=plan.sampler,
                                    steps=int(plan.steps), guidance_scale=row_guidance(plan.method, cfg),
                                    seed=scene_seed(cfg.seed, i), fds=plan.method.fds,
                                    channel_params=row_channel_params(cfg, plan))
        frame, factor = _semantic_frame(ctx, plan, psnr, i, transmit)
        received = apply_channel(frame)                                      # the channel service's stage
        conds.append(received_conditioning(received, fds=transmit.fds))       # the receiver's stage
        record = budget_record(frame, received.report)
        extra.append({
            "total_bits": record["total_bits"], "payload_bits": record["payload_bits"],
            "header_bits": record["header_bits"], "channel_uses": record["channel_uses"],
            "channel_uses_per_pixel": record["channel_uses"] / (h * w), "maps": record["maps"],
            "png_bits": record["png_bits"], "jpeg_bits": record["jpeg_bits"], "raw_bits": 24 * h * w,
            "downsample": factor, "measured_snr_db": record["measured_snr_db"],
        })
        # the receiver samples with the frame's settings and seed (receiver/generation.py)
        settings.append(transmit.to_sampling())
    generator = ctx.generator(plan.checkpoint)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    images = generator.generate(torch.stack(conds), settings)
    per_image = (time.perf_counter() - t0) / len(idx)
    return score_batch(ctx, plan.method.key, psnr, idx, images, [e | {"seconds": per_image} for e in extra])


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
