"""The digital rows of ``gesco evaluate`` (``--methods digital``; :mod:`gesco.digital`).

* ``digital-image`` rows (``digital-jpeg``, ``digital-webp``, ``digital-png``): the scene's
  image as a file; JPEG / WebP at the highest quality whose file fits ``digital_budget``
  real channel uses per pixel (3 = the analog full image's) at the MCS chosen for the
  PSNR; PNG lossless with the channel uses it needs. CRC + 5G LDPC + QAM, the run's
  channel, demapping, decoding. Delivered: the decoded file. Lost: grey.
* ``digital-maps``: the semantic frame (header + maps coded with the default lossless codec, the same frame the
  services send) through the same link; delivered: the exact maps, FDS, and the row's
  diffusion checkpoint samples with the scene's seed (the same image whatever the PSNR, so
  it is sampled once per scene and reused); lost: grey.

Channel uses per pixel are ``2 x complex symbols / (H W)``, the analog rows' real-symbol
count. The per-image metrics also record ``lost``, the MCS, the source quality and the
encode / decode seconds (see the report's "Digital link" section).
"""

from __future__ import annotations

from typing import Any

import torch

from gesco.data.transforms import image_to_tensor
from gesco.evaluate.config import eval_frame_id, scene_seed, sent_instance
from gesco.evaluate.context import EvalContext, score_batch
from gesco.evaluate.plan import RowPlan
from gesco.evaluate.store import UnitResult
from gesco.link import TransmitSettings, encode_image_frame, received_conditioning, stage_seed


def _link(ctx: EvalContext):
    """The run's digital link, made once per run (kept in ``ctx.row_cache``)."""
    from gesco.digital.link import DigitalLink

    cache = ctx.row_cache
    if "digital_link" not in cache:
        cfg = ctx.config
        cache["digital_link"] = DigitalLink(cfg.channel, cfg.channel_params, num_iter=cfg.ldpc_iterations,
                                            gap_db=cfg.mcs_gap_db)
    return cache["digital_link"]


def _generator(ctx: EvalContext, i: int) -> torch.Generator:
    return torch.Generator().manual_seed(stage_seed(scene_seed(ctx.config.seed, i), "channel"))


def _common(result, h: int, w: int) -> dict[str, Any]:
    s = result.summary()
    return {
        "lost": int(not result.ok), "mcs": s["mcs"], "efficiency": result.mcs.efficiency,
        "payload_bits": s["payload_bits"], "channel_uses": s["channel_uses"],
        "channel_uses_per_pixel": s["channel_uses"] / (h * w), "code_blocks": s["blocks"],
        "failed_blocks": s["failed_blocks"], "bit_errors": s["bit_errors"], "undetected": int(s["undetected"]),
        "measured_snr_db": s["measured_snr_db"], "encode_s": s["encode_s"], "decode_s": s["decode_s"],
        "raw_bits": 24 * h * w,
    }


def digital_image_batch(ctx: EvalContext, plan: RowPlan, psnr: float, idx: list[int]) -> list[UnitResult]:
    """JPEG / WebP (fitted to the budget) or PNG through the digital link."""
    from gesco.digital.source import decode_image_bytes, fit_image, lost_image

    link = _link(ctx)
    h, w = ctx.resolution
    mcs = link.mcs_for(float(psnr))
    budget = int(ctx.config.digital_budget * h * w)
    images, extra = [], []
    for i in idx:
        scene = ctx.scene(i)
        fitted = fit_image(scene.image, plan.method.source, mcs, None if plan.method.source == "png" else budget)
        if not fitted.fits:  # not even quality 1 fits the budget: nothing is sent, the receiver shows grey
            rx, info = lost_image((h, w)), {"lost": 1, "mcs": mcs.name, "efficiency": mcs.efficiency,
                                            "payload_bits": 0, "channel_uses": 0, "channel_uses_per_pixel": 0.0,
                                            "raw_bits": 24 * h * w, "not_sent": 1}
        else:
            result = link.send(fitted.data, float(psnr), mcs=mcs, generator=_generator(ctx, i))
            info = _common(result, h, w)
            rx = decode_image_bytes(result.delivered, (h, w)) if result.ok else lost_image((h, w))
        info |= {"total_bits": 8 * len(fitted.data), "quality": fitted.quality, "file_bits": 8 * len(fitted.data)}
        images.append(image_to_tensor(rx))
        extra.append(info)
    return score_batch(ctx, plan.method.key, psnr, idx, torch.stack(images), extra)


def digital_maps_batch(ctx: EvalContext, plan: RowPlan, psnr: float, idx: list[int]) -> list[UnitResult]:
    """The semantic frame through the digital link, then generation from the exact maps."""
    from gesco.digital.source import exact_received_frame, frame_bytes, frame_from_bytes, lost_image

    link = _link(ctx)
    cfg, (h, w) = ctx.config, ctx.resolution
    mcs = link.mcs_for(float(psnr))
    cache: dict[int, torch.Tensor] = ctx.row_cache.setdefault("digital_maps_images", {})
    images: list[torch.Tensor | None] = []
    extra, to_sample = [], []
    for i in idx:
        scene = ctx.scene(i)
        transmit = TransmitSettings(psnr_db=float(psnr), channel=cfg.channel, sampler=plan.sampler,
                                    steps=int(plan.steps), guidance_scale=float(cfg.guidance_scale),
                                    seed=scene_seed(cfg.seed, i), fds=plan.method.fds, codec=cfg.codec)
        frame, _ = encode_image_frame(scene.image, scene.label, sent_instance(scene, cfg), space=ctx.space,
                                      resolution=(h, w), frame_id=eval_frame_id(plan.method.key, psnr, i),
                                      transmit=transmit, derive_edges=cfg.edges != "none")
        data = frame_bytes(frame)
        result = link.send(data, float(psnr), mcs=mcs, generator=_generator(ctx, i))
        info = _common(result, h, w) | {"total_bits": 8 * len(data), "maps": len(frame.class_ids) + int(frame.has_edges),
                                        "png_bits": int(frame.png_bits), "jpeg_bits": int(frame.jpeg_bits)}
        extra.append(info)
        if not result.ok:
            images.append(image_to_tensor(lost_image((h, w))))
        elif i in cache:
            images.append(cache[i])
        else:
            images.append(None)
            got = frame_from_bytes(result.delivered, frame.id, frame.class_space)  # id, space: known at the receiver
            got.transmit.CopyFrom(frame.transmit)  # simulation settings travel beside the link, as in the services
            to_sample.append((len(images) - 1, i, received_conditioning(exact_received_frame(got), fds=transmit.fds),
                              transmit.to_sampling()))
    if to_sample:
        generator = ctx.generator(plan.checkpoint)  # type: ignore[arg-type]
        sampled = generator.generate(torch.stack([c for _, _, c, _ in to_sample]), [s for *_, s in to_sample])
        for (pos, i, _, _), img in zip(to_sample, sampled):
            cache[i] = img.cpu()
            images[pos] = cache[i]
    return score_batch(ctx, plan.method.key, psnr, idx, torch.stack([im for im in images if im is not None]), extra)


__all__ = ["digital_image_batch", "digital_maps_batch"]
