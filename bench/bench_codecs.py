"""Benchmark of the map codecs: bits, encode/decode time, and downsampling accuracy.

    OMP_NUM_THREADS=1 python bench/bench_codecs.py [--repeats 7] [--scenes 5]

For 256x512 street maps with about 20 present classes + the edge map
(``gesco.codecs.demo_scene``, seeds ``0 .. scenes-1``) and, when available, scenes of
the synthetic data set (``gesco.data.synthetic``), it measures per codec:

* payload bits and header bits of the ``SemanticFrame`` (mean over scenes, min, max);
* channel uses (real symbols the channel sends);
* encode and decode time per frame (median over ``repeats`` runs, on seed 0), single thread;
* for comparison with the paper (which names no codec), the maps stored as images, one
  file per map: 8-bit PNG, 1-bit PNG and JPEG quality 75 (lossy; the supplementary
  material's Fig. 7 shows JPEG on maps);
* for the lossy downsample codec: pixel accuracy and mean IoU of the class maps after
  upsampling (nearest and bilinear + argmax) against the original label map, and the
  IoU of thin classes (pole, traffic sign, person).

Writes ``bench/results/codecs.json`` and ``bench/results/codecs.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

try:
    import gesco  # noqa: F401
except ImportError:  # source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gesco.codecs import frame_bits, get_codec
from gesco.codecs.demo_scene import PERSON, POLE, TRAFFIC_SIGN, street_scene
from gesco.semantics.classes import CITYSCAPES
from gesco.semantics.layout import SemanticLayout, encode_layout
from gesco.wire import make_frame

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: machine_info (also when loaded by the tests)
from machine_info import describe_machine

HEIGHT, WIDTH = 256, 512
RESULTS = Path(__file__).resolve().parent / "results"
CODECS: list[tuple[str, dict]] = [
    ("raw", {}),
    ("zlib", {}),
    ("lzma", {}),
    ("contour", {}),
    ("context", {}),
    ("downsample", {"factor": 2}),
    ("downsample", {"factor": 4}),
    ("downsample", {"factor": 8}),
]
THIN_CLASSES = {"pole": POLE, "traffic sign": TRAFFIC_SIGN, "person": PERSON}


def machine() -> str:
    """CPU model and core count, for the results table."""
    return describe_machine("torch/numpy single-threaded")


def dense_layouts(n: int) -> list[SemanticLayout]:
    out = []
    for seed in range(n):
        label, instance = street_scene(HEIGHT, WIDTH, seed=seed)
        out.append(encode_layout(label, CITYSCAPES, instance))
    return out


def synthetic_layouts(n: int) -> list[SemanticLayout]:
    try:
        from gesco.data.synthetic import generate_scene
    except ImportError:
        return []
    out = []
    for seed in range(n):
        scene = generate_scene(seed, HEIGHT, WIDTH)
        out.append(encode_layout(scene.label.astype(np.int64), CITYSCAPES, scene.instance))
    return out


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def codec_label(name: str, params: dict) -> str:
    return name + (f" k={params['factor']}" if "factor" in params else "")


def bits_table(layouts: list[SemanticLayout]) -> dict[str, dict]:
    out = {}
    for name, params in CODECS:
        codec = get_codec(name, **params)
        payload, header, uses = [], [], []
        for i, layout in enumerate(layouts):
            frame = make_frame(layout, codec, f"{i:032x}", CITYSCAPES.name)  # a 32-character id
            frame.power_scale = 1.0
            p, h = frame_bits(frame)
            payload.append(p)
            header.append(h)
            uses.append(int(np.prod(codec.channel_shape(*layout.maps.shape))))
        out[codec_label(name, params)] = {
            "payload_bits_mean": statistics.mean(payload),
            "payload_bits_min": min(payload),
            "payload_bits_max": max(payload),
            "header_bits_mean": statistics.mean(header),
            "total_bits_mean": statistics.mean(p + h for p, h in zip(payload, header)),
            "channel_uses_mean": statistics.mean(uses),
        }
    return out


def maps_as_images(layouts: list[SemanticLayout]) -> dict[str, float]:
    """Mean bits of the maps written as one image file per map (not a gesco codec)."""
    import cv2

    kinds = {
        "per-map PNG, 8-bit": (".png", lambda m: m * 255, [cv2.IMWRITE_PNG_COMPRESSION, 9]),
        "per-map PNG, 1-bit": (".png", lambda m: m, [cv2.IMWRITE_PNG_COMPRESSION, 9, cv2.IMWRITE_PNG_BILEVEL, 1]),
        "per-map JPEG q75 (lossy)": (".jpg", lambda m: m * 255, [cv2.IMWRITE_JPEG_QUALITY, 75]),
    }
    out = {}
    for name, (ext, prep, flags) in kinds.items():
        sizes = [sum(8 * len(cv2.imencode(ext, prep(m), flags)[1]) for m in layout.maps) for layout in layouts]
        out[name] = statistics.mean(sizes)
    return out


def timing_table(layout: SemanticLayout, repeats: int) -> dict[str, dict]:
    maps = layout.maps
    out = {}
    for name, params in CODECS:
        codec = get_codec(name, **params)
        payload = codec.encode(maps).payload
        out[codec_label(name, params)] = {
            "encode_s": median_time(lambda: codec.encode(maps), repeats),
            "decode_s": median_time(lambda: codec.decode(payload, *maps.shape), repeats),
            "channel_symbols_s": median_time(lambda: codec.channel_symbols(payload, *maps.shape), repeats),
        }
    return out


def _iou(a: np.ndarray, b: np.ndarray, cls: int) -> float | None:
    union = np.count_nonzero((a == cls) | (b == cls))
    return None if union == 0 else np.count_nonzero((a == cls) & (b == cls)) / union


def downsample_accuracy(layouts: list[SemanticLayout]) -> dict[str, dict]:
    """Label map after downsample + upsample vs the original (clean channel)."""
    out = {}
    for factor in (2, 4, 8):
        for mode in ("nearest", "bilinear"):
            codec = get_codec("downsample", factor=factor, upsample=mode)
            acc, miou, thin = [], [], {k: [] for k in THIN_CLASSES}
            for layout in layouts:
                k = len(layout.class_ids)
                small = codec.channel_symbols(codec.encode(layout.maps).payload, *layout.maps.shape)
                up = codec.upsample(small.astype(np.float32), layout.height, layout.width)
                before = layout.class_ids[np.argmax(layout.maps[:k], axis=0)]
                after = layout.class_ids[np.argmax(up[:k], axis=0)]
                acc.append(float(np.mean(before == after)))
                ious = [_iou(before, after, int(c)) for c in layout.class_ids]
                miou.append(float(np.mean([v for v in ious if v is not None])))
                for cname, cid in THIN_CLASSES.items():
                    v = _iou(before, after, cid)
                    if v is not None:
                        thin[cname].append(v)
            out[f"k={factor} {mode}"] = {
                "pixel_accuracy": statistics.mean(acc),
                "mean_iou": statistics.mean(miou),
                **{f"iou_{c}": (statistics.mean(v) if v else None) for c, v in thin.items()},
            }
    return out


def markdown(results: dict) -> str:
    lines = [f"# Codec benchmark ({results['height']}x{results['width']})", "", f"Machine: {results['machine']}", ""]
    for source, table in results["bits"].items():
        n = results["n_scenes"][source]
        lines += [f"## Bits: {source} ({n} scenes, mean classes present {results['classes_mean'][source]:.1f})", "",
                  "| codec | payload bits (mean, min-max) | header bits | total bits | channel uses |",
                  "|---|---|---|---|---|"]
        for name, r in table.items():
            lines.append(
                f"| {name} | {r['payload_bits_mean']:,.0f} ({r['payload_bits_min']:,}-{r['payload_bits_max']:,}) "
                f"| {r['header_bits_mean']:,.0f} | {r['total_bits_mean']:,.0f} | {r['channel_uses_mean']:,.0f} |"
            )
        lines.append("")
    lines += ["## Maps stored as image files, one per map (for comparison; payload only)", "",
              "| source | " + " | ".join(next(iter(results["maps_as_images_bits"].values()))) + " |",
              "|---|" + "---|" * len(next(iter(results["maps_as_images_bits"].values())))]
    for source, row in results["maps_as_images_bits"].items():
        lines.append(f"| {source} | " + " | ".join(f"{v:,.0f}" for v in row.values()) + " |")
    lines.append("")
    lines += [f"## Time per frame (dense map, seed 0; median of {results['repeats']} runs)", "",
              "| codec | encode ms | decode ms | channel symbols ms |", "|---|---|---|---|"]
    for name, r in results["timing"].items():
        lines.append(f"| {name} | {1e3 * r['encode_s']:.1f} | {1e3 * r['decode_s']:.1f} | {1e3 * r['channel_symbols_s']:.1f} |")
    lines += ["", "## Downsampling accuracy (dense maps, clean channel)", "",
              "| factor, upsampling | pixel accuracy | mean IoU | IoU pole | IoU traffic sign | IoU person |",
              "|---|---|---|---|---|---|"]
    for name, r in results["downsample_accuracy"].items():
        thin = " | ".join("-" if r[f"iou_{c}"] is None else f"{r[f'iou_{c}']:.3f}" for c in THIN_CLASSES)
        lines.append(f"| {name} | {r['pixel_accuracy']:.4f} | {r['mean_iou']:.3f} | {thin} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timing repeats per codec (median)")
    parser.add_argument("--scenes", type=int, default=5, help="scenes per source for the bit counts")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    args = parser.parse_args(argv)

    sources = {"dense street maps (demo_scene)": dense_layouts(args.scenes)}
    synthetic = synthetic_layouts(args.scenes)
    if synthetic:
        sources["synthetic data set scenes"] = synthetic
    results = {
        "height": HEIGHT,
        "width": WIDTH,
        "machine": machine(),
        "repeats": args.repeats,
        "n_scenes": {k: len(v) for k, v in sources.items()},
        "classes_mean": {k: statistics.mean(len(layout.class_ids) for layout in v) for k, v in sources.items()},
        "bits": {k: bits_table(v) for k, v in sources.items()},
        "maps_as_images_bits": {k: maps_as_images(v) for k, v in sources.items()},
        "timing": timing_table(sources["dense street maps (demo_scene)"][0], args.repeats),
        "downsample_accuracy": downsample_accuracy(sources["dense street maps (demo_scene)"]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "codecs.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "codecs.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
