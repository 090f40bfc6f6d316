"""Payload bits of every benchmarked codec on fixed scenes, pinned exactly.

The round-trip tests prove the codecs lossless; they cannot see a change that stays lossless
but costs more bits (a worse context model, a lost run-length case). These numbers can.
The scenes are fixed: ``gesco.codecs.demo_scene.street_scene`` (dense street maps) and
``gesco.data.synthetic.generate_scene`` (the training data's scenes), seeds 0 and 1, at the
receiver's default 64x128 and the paper's 256x512, coded as the bit budget counts them
(:func:`gesco.wire.make_frame` then :func:`gesco.codecs.frame_bits`, payload part). The codecs
are those of ``bench/bench_codecs.py`` (the bench results file keeps the full table: means,
header bits, channel uses, times).

On an INTENTIONAL change of a codec (or of the scene drawings), regenerate the table with

    PYTHONPATH=. python tests/codecs/test_pinned_bits.py

paste its output over ``PINNED`` below, and say in the commit message how the bits moved
(and re-run ``bench/bench_codecs.py`` so its results file agrees). zlib and lzma sizes also
depend on the zlib / liblzma library the Python build links (printed on a failure).
"""

from __future__ import annotations

import lzma
import zlib

import numpy as np
import pytest

from gesco.codecs import frame_bits, get_codec
from gesco.codecs.demo_scene import street_scene
from gesco.codecs.registry import DEFAULT_CODEC
from gesco.data.synthetic import generate_scene
from gesco.semantics.classes import CITYSCAPES
from gesco.semantics.layout import SemanticLayout, encode_layout
from gesco.wire import make_frame

SIZES = ((64, 128), (256, 512))
SEEDS = (0, 1)

#: codec label -> {"HxW source seed": payload bits}; computed once (see the module docstring)
PINNED: dict[str, dict[str, int]] = {
    "raw": {
        "64x128 dense 0": 188416, "64x128 synthetic 0": 98304, "64x128 dense 1": 196608, "64x128 synthetic 1": 98304,
        "256x512 dense 0": 3014656, "256x512 synthetic 0": 1572864, "256x512 dense 1": 3145728, "256x512 synthetic 1": 1835008,
    },
    "zlib": {
        "64x128 dense 0": 12280, "64x128 synthetic 0": 9544, "64x128 dense 1": 12048, "64x128 synthetic 1": 7152,
        "256x512 dense 0": 55272, "256x512 synthetic 0": 46880, "256x512 dense 1": 56936, "256x512 synthetic 1": 30952,
    },
    "lzma": {
        "64x128 dense 0": 4248, "64x128 synthetic 0": 3712, "64x128 dense 1": 4248, "64x128 synthetic 1": 2848,
        "256x512 dense 0": 13936, "256x512 synthetic 0": 13104, "256x512 dense 1": 14312, "256x512 synthetic 1": 9960,
    },
    "contour": {
        "64x128 dense 0": 3400, "64x128 synthetic 0": 3080, "64x128 dense 1": 3744, "64x128 synthetic 1": 2496,
        "256x512 dense 0": 7168, "256x512 synthetic 0": 8136, "256x512 dense 1": 7968, "256x512 synthetic 1": 6424,
    },
    "context": {
        "64x128 dense 0": 2544, "64x128 synthetic 0": 2032, "64x128 dense 1": 2608, "64x128 synthetic 1": 1712,
        "256x512 dense 0": 8344, "256x512 synthetic 0": 6872, "256x512 dense 1": 8504, "256x512 synthetic 1": 5688,
    },
    "downsample k=2": {
        "64x128 dense 0": 1744, "64x128 synthetic 0": 1200, "64x128 dense 1": 1616, "64x128 synthetic 1": 880,
        "256x512 dense 0": 4624, "256x512 synthetic 0": 3952, "256x512 dense 1": 4560, "256x512 synthetic 1": 3280,
    },
    "downsample k=4": {
        "64x128 dense 0": 912, "64x128 synthetic 0": 688, "64x128 dense 1": 976, "64x128 synthetic 1": 496,
        "256x512 dense 0": 2576, "256x512 synthetic 0": 2096, "256x512 dense 1": 2544, "256x512 synthetic 1": 1744,
    },
    "downsample k=8": {
        "64x128 dense 0": 400, "64x128 synthetic 0": 336, "64x128 dense 1": 496, "64x128 synthetic 1": 208,
        "256x512 dense 0": 1392, "256x512 synthetic 0": 1104, "256x512 dense 1": 1456, "256x512 synthetic 1": 848,
    },
}


def scenes(height: int, width: int) -> dict[str, SemanticLayout]:
    """The fixed scenes at one size, by name ``"HxW source seed"``."""
    out = {}
    for seed in SEEDS:
        label, instance = street_scene(height, width, seed=seed)
        out[f"{height}x{width} dense {seed}"] = encode_layout(label, CITYSCAPES, instance)
        s = generate_scene(seed, height, width)
        out[f"{height}x{width} synthetic {seed}"] = encode_layout(s.label.astype(np.int64), CITYSCAPES, s.instance)
    return out


def payload_bits(layout: SemanticLayout, name: str, params: dict) -> int:
    """Payload bits of ``layout`` in a frame coded with ``get_codec(name, **params)``, as the budget counts them."""
    frame = make_frame(layout, get_codec(name, **params), "0" * 32, CITYSCAPES.name)
    return frame_bits(frame)[0]


def measure(codecs: list[tuple[str, dict]], label) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {label(n, p): {} for n, p in codecs}
    for h, w in SIZES:
        for scene, layout in scenes(h, w).items():
            for name, params in codecs:
                table[label(name, params)][scene] = payload_bits(layout, name, params)
    return table


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("bench/bench_codecs.py")


def test_every_benchmarked_codec_and_the_default_are_pinned(bench):
    labels = {bench.codec_label(n, p) for n, p in bench.CODECS}
    missing = labels - set(PINNED)
    assert not missing, f"codecs in bench/bench_codecs.py without pinned bits: {sorted(missing)} (see this module's docstring)"
    assert DEFAULT_CODEC in PINNED, f"the default codec {DEFAULT_CODEC!r} has no pinned bits"


def test_payload_bits_are_the_pinned_ones(bench):
    codecs = [(n, p) for n, p in bench.CODECS if bench.codec_label(n, p) in PINNED]
    got = measure(codecs, bench.codec_label)
    changed = {(codec, scene): (want, got[codec].get(scene))
               for codec, table in PINNED.items() if codec in got
               for scene, want in table.items() if got[codec].get(scene) != want}
    assert not changed, (
        f"payload bits changed (pinned, now) {changed}; zlib {zlib.ZLIB_RUNTIME_VERSION}, "
        f"liblzma {getattr(lzma, '__version__', 'linked')}: if intended, regenerate (this module's docstring)")


if __name__ == "__main__":  # print the table to paste over PINNED
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "bench_codecs.py"
    spec = importlib.util.spec_from_file_location("bench_codecs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    print("PINNED: dict[str, dict[str, int]] = {")
    for codec, table in measure(mod.CODECS, mod.codec_label).items():
        print(f'    "{codec}": {{')
        for size in SIZES:
            prefix = f"{size[0]}x{size[1]} "
            print("        " + " ".join(f'"{k}": {v},' for k, v in table.items() if k.startswith(prefix)))
        print("    },")
    print("}")
