"""Appearance side channel: bits against colour error, LPIPS and mIoU (validation split).

For scenes ``0..N-1`` of the synthetic *validation* split, each scene goes through the real
link (:func:`gesco.link.encode_image_frame` with its label and instance maps ->
:func:`gesco.link.apply_channel` at the PSNR -> :func:`gesco.link.receiver_maps`, FDS on),
then the default receiver (the distilled student, its default sampler and steps; sampling seed
= scene index) generates one image per side-channel setting from the same conditioning and
seed. Settings (``mode:bits:repeat``, :class:`gesco.appearance.AppearanceSettings`):
``off`` (the paper's setting), ``mean:b`` (the image's mean RGB at ``b`` bits per component,
``3 b`` bits) and ``classes:b`` (every present class's mean RGB, ``3 b K`` bits); without
``:r`` the repetition is chosen per frame as the sender chooses it
(:func:`gesco.appearance.choose_repeat`, label ``mode:b:auto``). The side
channel's bits cross the same channel model at the same PSNR
(:func:`gesco.appearance.transmit_appearance_bits`, channel seed ``stage_seed(scene,
"appearance")``); the receiver projects every step's clean-image estimate onto what it
decoded (:func:`gesco.appearance.appearance_denoiser`), its class regions being the argmax
of the received maps after FDS.

Scores as ``gesco evaluate`` (:class:`gesco.evaluate.runner.Scorers`: segmenter mIoU against
the sent label map, LPIPS and colour errors against the sent image, 0-255), plus the sky's
high-pass RMS (:func:`gesco.evaluate.metrics.grain.high_pass_rms`), the side channel's bits,
channel uses and bit errors, and the paired difference of every score against ``off``
(mean +- standard error over scenes).

    OMP_NUM_THREADS=1 python scripts/appearance_study.py --psnr 100 --scenes 50 \\
        --settings off mean:2 mean:4 mean:6 mean:8 classes:2 classes:3 classes:4 classes:6 \\
        --out bench/results/appearance/psnr100

Writes ``OUT/appearance.json`` and ``OUT/appearance.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from gesco.appearance import (
    REPEAT_AUTO,
    AppearanceSettings,
    AppearanceTarget,
    choose_repeat,
    measure_appearance,
    pack_appearance,
    transmit_appearance_bits,
    unpack_appearance,
)
from gesco.data.synthetic import generate_scene, split_seed
from gesco.data.transforms import image_to_tensor
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator
from gesco.evaluate.metrics.grain import high_pass_rms
from gesco.evaluate.paired import finite_summary as _summary
from gesco.evaluate.paired import paired_difference as _paired
from gesco.evaluate.runner import EvalConfig, load_scorers
from gesco.link import TransmitSettings, apply_channel, encode_image_frame, label_from_maps, receiver_maps, stage_seed
from gesco.semantics.classes import CITYSCAPES

METRICS = ("mean_colour_error", "class_colour_error", "lpips", "miou", "ssim", "sky_grain")


def parse_setting(text: str) -> AppearanceSettings:
    """``off`` | ``mean:B`` | ``classes:B`` with an optional ``:R`` repeat (``classes:4:8``;
    without it the repeat is chosen per frame, :data:`~gesco.appearance.REPEAT_AUTO`)."""
    parts = text.split(":")
    if parts[0] == "off":
        return AppearanceSettings("off")
    bits = int(parts[1]) if len(parts) > 1 else 6
    repeat = int(parts[2]) if len(parts) > 2 else REPEAT_AUTO
    return AppearanceSettings(parts[0], bits, repeat).validate()


def label(s: AppearanceSettings) -> str:
    if not s.enabled:
        return "off"
    return f"{s.mode}:{s.bits}:{'auto' if s.repeat == REPEAT_AUTO else s.repeat}"


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=50, help="validation scenes (default 50)")
    ap.add_argument("--psnr", type=float, default=100.0)
    ap.add_argument("--channel", default="awgn")
    ap.add_argument("--settings", nargs="+", default=["off", "mean:4", "mean:6", "classes:3", "classes:4"])
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--out", default="bench/results/appearance/psnr100")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    settings = [parse_setting(t) for t in args.settings]
    names = [label(s) for s in settings]
    gen = SemanticGenerator.load(device="cpu")
    scorers, described = load_scorers(EvalConfig(out=Path(args.out), split="val"), torch.device("cpu"), CITYSCAPES)
    h, w = gen.resolution
    per = {n: {m: [] for m in (*METRICS, "bits", "channel_uses", "bit_errors", "repeat")} for n in names}
    map_uses: list[int] = []
    for start in range(0, args.scenes, args.batch):
        idx = list(range(start, min(args.scenes, start + args.batch)))
        scenes = [generate_scene(split_seed("val", i), h, w) for i in idx]
        conds, regions, frames = [], [], []
        for i, s in zip(idx, scenes, strict=True):
            frame, _ = encode_image_frame(s.image, s.label, s.instance, space=CITYSCAPES, resolution=(h, w),
                                          frame_id=f"val-{i}", transmit=TransmitSettings(psnr_db=args.psnr,
                                                                                          channel=args.channel, seed=i))
            rx = apply_channel(frame)
            rm = receiver_maps(rx)
            conds.append(rm.conditioning)
            regions.append(torch.from_numpy(label_from_maps(rm.denoised, rm.class_ids)))
            frames.append(frame)
            map_uses.append(int(rx.report.channel_uses))
        cond = torch.stack(conds)
        reg = torch.stack(regions)
        real = torch.stack([image_to_tensor(s.image) for s in scenes])
        labels = torch.stack([torch.from_numpy(s.label.astype(np.int64)) for s in scenes])
        sampling = [SamplingSettings(seed=i) for i in idx]
        for st, name in zip(settings, names, strict=True):
            received, bits_n, uses_n, errs_n, reps_n = [], [], [], [], []
            for i, s, frame in zip(idx, scenes, frames, strict=True):
                if not st.enabled:
                    received.append(None)
                    bits_n.append(0)
                    uses_n.append(0)
                    errs_n.append(0)
                    reps_n.append(0)
                    continue
                ids = list(frame.class_ids)
                bits = pack_appearance(measure_appearance(s.image, s.label, ids, st.mode), st)
                chosen = st
                if st.repeat == REPEAT_AUTO:  # as the sender chooses (gesco.link.encode_image_frame)
                    chosen = replace(st, repeat=choose_repeat(bits, channel=args.channel, psnr_db=args.psnr).repeat)
                got, uses = transmit_appearance_bits(
                    bits, chosen, channel=args.channel, psnr_db=args.psnr,
                    generator=torch.Generator().manual_seed(stage_seed(i, "appearance")))
                received.append(unpack_appearance(got, chosen, ids))
                bits_n.append(int(bits.size))
                uses_n.append(uses)
                errs_n.append(int((got != bits).sum()))
                reps_n.append(int(chosen.repeat))
            target = None if not st.enabled else AppearanceTarget.build(received, reg, CITYSCAPES.num_classes)
            images = gen.generate(cond, sampling, appearance=target)
            metrics, _ = scorers.score(images, real, labels)
            grain = high_pass_rms(images, labels.numpy())
            for k, m in enumerate(metrics):
                for key in METRICS[:-1]:
                    per[name][key].append(m[key])
                per[name]["sky_grain"].append(float(grain[k]))
                per[name]["bits"].append(bits_n[k])
                per[name]["channel_uses"].append(uses_n[k])
                per[name]["bit_errors"].append(errs_n[k])
                per[name]["repeat"].append(reps_n[k])
        print(f"{idx[-1] + 1}/{args.scenes} scenes, {time.perf_counter() - t0:.0f} s", flush=True)

    base = names[0] if names[0] == "off" else None
    result = {
        "split": "val", "scenes": args.scenes, "psnr_db": args.psnr, "channel": args.channel,
        "receiver": {"checkpoint": gen.card.to_dict().get("name", "default receiver"),
                     "sampler": SamplingSettings().sampler, "steps": SamplingSettings().steps},
        "machine": f"the project's {os.cpu_count()}-core {platform.machine()} CPU VM",
        "torch_threads": torch.get_num_threads(), "scorers": described,
        "map_channel_uses_mean": float(np.mean(map_uses)), "pixels": h * w,
        "settings": {},
    }
    for name in names:
        p = per[name]
        row = {key: _summary(p[key]) for key in (*METRICS, "bits", "channel_uses", "bit_errors", "repeat")}
        if base is not None and name != base:
            row["minus_off"] = {key: _paired(p[key], per[base][key]) for key in METRICS}
        result["settings"][name] = row
    result["per_scene"] = per
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "appearance.json").write_text(json.dumps(result, indent=1))
    (out / "appearance.md").write_text(markdown(result))
    print((out / "appearance.md").read_text())
    return 0


def markdown(r: dict) -> str:
    """One table: a row per setting (mean +- std over scenes; paired difference to ``off`` +- SE)."""
    lines = [
        f"# Appearance side channel at {r['psnr_db']:g} dB ({r['channel']})",
        "",
        f"{r['scenes']} scenes of the `val` split, default receiver ({r['receiver']['sampler']}, "
        f"{r['receiver']['steps']} steps), maps {r['map_channel_uses_mean'] / r['pixels']:.2f} channel uses per "
        f"pixel on average. Made by `scripts/appearance_study.py` in {r['seconds']:.0f} s ({r['machine']}, "
        f"{r['torch_threads']} torch threads). Colour errors in 0-255; ± is the standard deviation over scenes, "
        "Δ the paired difference to `off` ± its standard error.",
        "",
        "| setting | side bits | repeat (range) | side channel uses | bit errors | mean colour error | Δ | class colour error | Δ "
        "| LPIPS | Δ | mIoU | Δ | sky grain |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(s: dict, nd: int = 1) -> str:
        return f"{s['mean']:.{nd}f} ± {s['std']:.{nd}f}"

    def delta(row: dict, key: str, nd: int) -> str:
        d = row.get("minus_off", {}).get(key)
        return "" if d is None else f"{d['mean']:+.{nd}f} ± {d['se']:.{nd}f}"

    def repeats(r: dict, name: str) -> str:
        v = [x for x in r["per_scene"][name]["repeat"] if x]
        return "" if not v else f"{np.mean(v):.1f} ({min(v)}-{max(v)})"

    for name, row in r["settings"].items():
        lines.append(
            f"| `{name}` | {row['bits']['mean']:.0f} | {repeats(r, name)} | {row['channel_uses']['mean']:.0f} | "
            f"{row['bit_errors']['mean']:.2f} | {cell(row['mean_colour_error'])} | {delta(row, 'mean_colour_error', 1)} | "
            f"{cell(row['class_colour_error'])} | {delta(row, 'class_colour_error', 1)} | {cell(row['lpips'], 3)} | "
            f"{delta(row, 'lpips', 3)} | {cell(row['miou'], 3)} | {delta(row, 'miou', 3)} | {cell(row['sky_grain'], 2)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
