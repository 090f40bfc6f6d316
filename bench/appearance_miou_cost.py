"""Why do per-class colours cost mIoU at 100 dB? (issue 24 item 2, docs/colour/appearance.md)

For validation scenes ``0..N-1`` at a PSNR (default 100 dB), each scene goes through the real
link as in ``scripts/appearance_study.py`` and the default receiver generates one image per
variant from the same received maps and sampling seed:

* ``off``: the paper's setting;
* ``classes:B``: every present class's mean RGB at ``B`` bits, projected onto its region of the
  received maps (what the service does);
* ``classes:B:big``: the same with only classes of at least ``--min-pixels`` pixels in the
  received map projected (thin and small classes keep the model's own colours);
* ``classes:B:sent``: the same colours projected onto the regions of the *sent* label map
  (which the receiver does not have; at 100 dB the received maps before FDS are exactly it):
  isolates what FDS's shift of the region borders costs;
* ``mean:B``: the whole-image mean (costs no mIoU, the reference).

The side channel is sent noiselessly here (its bits are exact at 100 dB anyway). For each
variant it records the segmenter's confusion (pooled per-class IoU), each image's mIoU, and the
segmenter's pixel accuracy on **boundary** pixels (a 3x3 neighbourhood holds another label)
against **interior** pixels, and how many pixels the received regions differ from the sent
label map. Writes ``OUT/miou_cost.json`` and ``OUT/miou_cost.md``.

    OMP_NUM_THREADS=1 python bench/appearance_miou_cost.py --scenes 20 --out bench/results/appearance/miou_cost
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from gesco.appearance import (
    Appearance,
    AppearanceSettings,
    AppearanceTarget,
    dequantise,
    measure_appearance,
    quantise,
)
from gesco.data.synthetic import generate_scene, split_seed
from gesco.data.transforms import image_to_tensor
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator
from gesco.evaluate.paired import paired_difference
from gesco.evaluate.runner import EvalConfig, load_scorers
from gesco.link import TransmitSettings, apply_channel, encode_image_frame, label_from_maps, receiver_maps
from gesco.semantics.classes import CITYSCAPES
from gesco.semantics.miou import MeanIoU

#: the evaluation's per-image scores also recorded (gesco.evaluate.scoring.Scorers.score)
SCORED = ("mean_colour_error", "class_colour_error", "lpips")


def boundary_mask(label: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: pixels whose 3x3 neighbourhood (edge-padded) holds another label."""
    p = np.pad(label, 1, mode="edge")
    h, w = label.shape
    out = np.zeros((h, w), bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out |= p[dy:dy + h, dx:dx + w] != label
    return out


def _floats(values: list) -> np.ndarray:
    """Per-image values as float64, ``None`` as ``nan``."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def exact_colours(image: np.ndarray, label: np.ndarray, ids: list[int], mode: str, bits: int,
                  region: np.ndarray, min_pixels: int) -> Appearance:
    """The quantised colours as received over a clean channel; classes under ``min_pixels``
    pixels of ``region`` dropped (their colour not projected)."""
    app = measure_appearance(image, label, ids, mode)
    cols = dequantise(quantise(app.colours, bits), bits)
    if mode == "classes" and min_pixels > 0:
        keep = np.array([(region == c).sum() >= min_pixels for c in ids])
        return Appearance(mode, cols[keep], app.class_ids[keep])
    return Appearance(mode, cols, app.class_ids)


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=20)
    ap.add_argument("--psnr", type=float, default=100.0)
    ap.add_argument("--bits", type=int, default=6)
    ap.add_argument("--min-pixels", type=int, default=200, help="classes:B:big projects only classes this large")
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--out", default="bench/results/appearance/miou_cost")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    b = args.bits
    variants = {"off": None, f"mean:{b}": ("mean", 0), f"classes:{b}": ("classes", 0),
                f"classes:{b}:big": ("classes", args.min_pixels), f"classes:{b}:sent": ("classes", -1)}
    AppearanceSettings("classes", b).validate()
    gen = SemanticGenerator.load(device="cpu")
    scorers, _ = load_scorers(EvalConfig(out=Path(args.out), split="val"), torch.device("cpu"), CITYSCAPES)
    h, w = gen.resolution
    pooled = {v: MeanIoU(CITYSCAPES) for v in variants}
    per = {v: {"miou": [], "acc_boundary": [], "acc_interior": [], **{k: [] for k in SCORED}} for v in variants}
    region_diff, boundary_share = [], []
    for start in range(0, args.scenes, args.batch):
        idx = list(range(start, min(args.scenes, start + args.batch)))
        scenes = [generate_scene(split_seed("val", i), h, w) for i in idx]
        conds, regions = [], []
        for i, s in zip(idx, scenes, strict=True):
            frame, _ = encode_image_frame(s.image, s.label, s.instance, space=CITYSCAPES, resolution=(h, w),
                                          frame_id=f"val-{i}", transmit=TransmitSettings(psnr_db=args.psnr, seed=i))
            rm = receiver_maps(apply_channel(frame))
            conds.append(rm.conditioning)
            reg = label_from_maps(rm.denoised, rm.class_ids)
            regions.append(reg)
            region_diff.append(float((reg != s.label).mean()))
            boundary_share.append(float(boundary_mask(s.label).mean()))
        cond = torch.stack(conds)
        real = torch.stack([image_to_tensor(s.image) for s in scenes])
        labels = torch.stack([torch.from_numpy(s.label.astype(np.int64)) for s in scenes])
        reg_t = torch.stack([torch.from_numpy(r.astype(np.int64)) for r in regions])
        sampling = [SamplingSettings(seed=i) for i in idx]
        for name, spec in variants.items():
            target = None
            if spec is not None:
                mode, min_px = spec
                got = [exact_colours(s.image, s.label, sorted(int(c) for c in np.unique(s.label)), mode, b, r, min_px)
                       for s, r in zip(scenes, regions, strict=True)]
                where = reg_t if min_px >= 0 else torch.stack([torch.from_numpy(s.label.astype(np.int64))
                                                               for s in scenes])
                target = AppearanceTarget.build(got, where, CITYSCAPES.num_classes)
            images = gen.generate(cond, sampling, appearance=target)
            predicted = scorers.segmenter.predict(images.clamp(-1, 1)).cpu().numpy()
            metrics, _ = scorers.score(images, real, labels)  # as gesco evaluate scores (colour, LPIPS)
            for m in metrics:
                for key in SCORED:
                    per[name][key].append(m[key])
            for k, s in enumerate(scenes):
                pooled[name].update(predicted[k], s.label)
                one = MeanIoU(CITYSCAPES)
                one.update(predicted[k], s.label)
                per[name]["miou"].append(float(one.compute().miou))
                edge = boundary_mask(s.label)
                right = predicted[k] == s.label
                per[name]["acc_boundary"].append(float(right[edge].mean()))
                per[name]["acc_interior"].append(float(right[~edge].mean()))
        print(f"{idx[-1] + 1}/{args.scenes} scenes, {time.perf_counter() - t0:.0f} s", flush=True)
    result = {
        "split": "val", "scenes": args.scenes, "psnr_db": args.psnr, "bits": b, "min_pixels": args.min_pixels,
        "machine": f"the project's {os.cpu_count()}-core {platform.machine()} CPU VM",
        "torch_threads": torch.get_num_threads(),
        "received_regions_differ_from_label": float(np.mean(region_diff)),
        "boundary_pixel_share": float(np.mean(boundary_share)),
        "variants": {},
    }
    for name in variants:
        res = pooled[name].compute()
        row = {k: {"mean": float(np.nanmean(_floats(v)))} for k, v in per[name].items()}
        row["per_class_iou"] = {CITYSCAPES.names[c]: v for c, v in res.per_class.items()}
        row["confusion"] = pooled[name].confusion.tolist()  # [sent label id, predicted id], pixels
        if name != "off":
            for k in per[name]:
                # an image without a scored class has no mIoU / class colour error: left out of the pair
                d = paired_difference(_floats(per[name][k]), _floats(per["off"][k]))
                row[k]["minus_off"], row[k]["se"] = d["mean"], d["se"]
        result["variants"][name] = row
    result["per_scene"] = per
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "miou_cost.json").write_text(json.dumps(result, indent=1))
    (out / "miou_cost.md").write_text(markdown(result))
    print((out / "miou_cost.md").read_text())
    return 0


def markdown(r: dict) -> str:
    v = r["variants"]
    names = list(v)
    lines = [f"# What per-class colours cost in mIoU ({r['psnr_db']:g} dB, {r['scenes']} val scenes)", "",
             f"`bench/appearance_miou_cost.py`, {r['seconds']:.0f} s, {r['machine']}, {r['torch_threads']} torch "
             f"thread(s). Received regions differ from the sent label map on "
             f"{100 * r['received_regions_differ_from_label']:.2f} % of pixels; boundary pixels (3x3 neighbourhood "
             f"holds another label) are {100 * r['boundary_pixel_share']:.1f} % of the image. Δ: paired difference "
             "to `off` ± standard error.", "",
             "| variant | mIoU (Δ) | accuracy on boundary pixels (Δ) | accuracy on interior pixels (Δ) "
             "| mean colour error (Δ) | class colour error (Δ) | LPIPS (Δ) |",
             "|---|---|---|---|---|---|---|"]

    def cell(row: dict, key: str) -> str:
        c, nd = row[key], 1 if "colour" in key else 3
        return f"{c['mean']:.{nd}f}" + (f" ({c['minus_off']:+.{nd}f} ± {c['se']:.{nd}f})" if "minus_off" in c else "")

    for name in names:
        lines.append(f"| `{name}` | {cell(v[name], 'miou')} | {cell(v[name], 'acc_boundary')} | "
                     f"{cell(v[name], 'acc_interior')} | {cell(v[name], 'mean_colour_error')} | "
                     f"{cell(v[name], 'class_colour_error')} | {cell(v[name], 'lpips')} |")
    lines += ["", "Pooled per-class IoU (classes present in the scenes):", "",
              "| class | " + " | ".join(f"`{n}`" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for cls, off in v["off"]["per_class_iou"].items():
        if off is None:
            continue
        lines.append(f"| {cls} | " + " | ".join(
            "—" if v[n]["per_class_iou"][cls] is None else f"{v[n]['per_class_iou'][cls]:.3f}" for n in names) + " |")
    lines += ["", "Where the pixels of the classes that lose most IoU with `classes` go (share of the class's "
              "pixels predicted as each class, top three):", ""]
    names_by_id = CITYSCAPES.names
    cls_name = f"classes:{r['bits']}"
    drops = sorted(((v[cls_name]["per_class_iou"][c] - off, c) for c, off in v["off"]["per_class_iou"].items()
                    if off is not None and v[cls_name]["per_class_iou"][c] is not None))[:4]
    for _, cls in drops:
        cid = names_by_id.index(cls)
        for n in ("off", cls_name):
            row = np.array(v[n]["confusion"][cid], dtype=np.float64)
            top = np.argsort(-row)[:3]
            lines.append(f"* {cls} (`{n}`, {int(row.sum())} px): " + ", ".join(
                f"{names_by_id[j]} {row[j] / row.sum():.2f}" for j in top))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
