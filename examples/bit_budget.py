"""The bit budget of one 256x512 street frame: the image vs its semantic maps.

Run from the repository root (CPU only, a few seconds):

    python examples/bit_budget.py

The paper (section 4) reports, for Cityscapes at 256x512, 1,464,000 bits to send the
full image and 119,000 bits on average for the semantic maps (-92 %). This script
counts, with gesco's own codecs and the exact wire format, for two scenes:

1. scene 0 of the built-in synthetic data set (``gesco.data.synthetic``): a rendered RGB
   image with its label and instance maps, so image and maps describe the same scene;
2. a denser street map with about 20 present classes (``gesco.codecs.demo_scene``),
   closer to a Cityscapes frame's class count (maps only: it has no image).

Printed per scene: the image's bits (raw 24-bit RGB, PNG, JPEG quality 75); the maps'
bits raw (``N * H * W``, one bit per pixel of each present map) and per codec, as
payload + header (the serialized ``SemanticFrame``, see ``gesco.codecs.accounting``),
with channel uses (real symbols sent); the reduction against the raw image, the PNG,
the JPEG and the paper's 1,464,000-bit figure. ``docs/bit_budget.md`` discusses the
numbers.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np

try:
    import gesco  # noqa: F401
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gesco.codecs import codec_names, frame_bits, get_codec, image_bits
from gesco.codecs.demo_scene import street_scene
from gesco.semantics.classes import CITYSCAPES
from gesco.semantics.layout import SemanticLayout, encode_layout
from gesco.wire import make_frame

HEIGHT, WIDTH = 256, 512
JPEG_QUALITY = 75
PAPER_IMAGE_BITS = 1_464_000
PAPER_MAP_BITS = 119_000
#: codecs in the table: the lossless ones, then downsampling by 2, 4 and 8
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


def synthetic_scene() -> tuple[SemanticLayout, np.ndarray | None, str]:
    """Scene 0 of the synthetic data set: (layout, RGB image, description)."""
    from gesco.data.synthetic import generate_scene

    scene = generate_scene(0, HEIGHT, WIDTH)
    layout = encode_layout(scene.label.astype(np.int64), CITYSCAPES, scene.instance)
    return layout, scene.image, "synthetic data set, scene 0"


def dense_scene() -> tuple[SemanticLayout, None, str]:
    """The codec demo street map (about 20 classes), maps only."""
    label, instance = street_scene(HEIGHT, WIDTH, seed=0)
    return encode_layout(label, CITYSCAPES, instance), None, "dense street map (gesco.codecs.demo_scene, seed 0)"


def pct(part: int, whole: int) -> str:
    """Reduction of ``part`` against ``whole`` in percent (negative = smaller)."""
    return f"{100.0 * (part - whole) / whole:+.1f}%"


def report(layout: SemanticLayout, image: np.ndarray | None, title: str) -> None:
    n, h, w = layout.maps.shape
    k = len(layout.class_ids)
    print(f"\n=== {title}: {h}x{w}, {k} classes present + edge map = {n} maps ===")
    print(f"{'image, raw RGB (H*W*24)':<34}{h * w * 24:>12,} bits")
    refs = {"paper image": PAPER_IMAGE_BITS}
    if image is not None:
        ib = image_bits(image, JPEG_QUALITY)
        print(f"{'image, PNG':<34}{ib.png:>12,} bits")
        print(f"{f'image, JPEG q{JPEG_QUALITY}':<34}{ib.jpeg:>12,} bits")
        refs = {"PNG": ib.png, "JPEG": ib.jpeg, **refs}
    print(f"{'maps, raw (N*H*W)':<34}{n * h * w:>12,} bits")
    head = f"{'maps, codec':<18}{'payload':>11}{'header':>8}{'total':>11}{'chan. uses':>12}  reduction vs raw RGB"
    head += "".join(f" | vs {name}" for name in refs)
    print(head)
    frame_id = uuid.uuid4().hex  # a 32-character job id, as the sender uses
    for name, params in CODECS:
        codec = get_codec(name, **params)
        frame = make_frame(layout, codec, frame_id, CITYSCAPES.name)
        frame.power_scale = 1.0  # filled in by the channel; counted in the header
        payload, header = frame_bits(frame)
        total = payload + header
        uses = int(np.prod(codec.channel_shape(n, h, w)))
        label = name + (f" k={params['factor']}" if params else "")
        line = f"{label:<18}{payload:>11,}{header:>8,}{total:>11,}{uses:>12,}  {pct(total, h * w * 24):>20}"
        line += "".join(f" | {pct(total, ref):>{len(ref_name) + 3}}" for ref_name, ref in refs.items())
        print(line)
    print(f"(paper: {PAPER_MAP_BITS:,} map bits vs {PAPER_IMAGE_BITS:,} image bits, {pct(PAPER_MAP_BITS, PAPER_IMAGE_BITS)};"
          f" the image as raw RGB is {h * w * 3:,} channel uses)")


def main() -> None:
    print(f"codecs: {', '.join(codec_names())}")
    scenes = [dense_scene()]
    try:
        scenes.insert(0, synthetic_scene())
    except ImportError:  # the synthetic data set is optional here
        pass
    for layout, image, title in scenes:
        report(layout, image, title)


if __name__ == "__main__":
    main()
