"""Fit the prior pseudo-counts of the ``context`` map codec on training-split scenes.

    OMP_NUM_THREADS=1 python scripts/fit_context_priors.py [--scenes 240] [--held-out 20]

The ``context`` codec (:mod:`gesco.codecs.context`) starts every adaptive table from a
prior ``a`` and adds the counts of what it codes. This script codes the present maps
(labels + instance edges, as the sender codes them) of ``--scenes`` scenes at each
``--sizes`` resolution with flat priors: even indices are synthetic scenes of the **train**
split (``gesco.data.synthetic``), odd ones dense street maps (``gesco.codecs.demo_scene``,
seeds from ``DENSE_SEED0``, far from the benchmark's and the tests' seeds). It sums the
final counts ``N`` of every table and sets, per context,

    a = PRIOR + N * min(1, cap / sum(N))

so a context never starts with more than ``cap`` pseudo-observations and the frame's own
counts soon dominate. ``cap`` is the candidate with the fewest payload bits on
``--held-out`` further scenes of the same kinds (never validation or test scenes). Writes
``gesco/assets/context_priors.npz`` (the priors are part of the coded format: encoder and
decoder must load the same file; ``fitted_on`` in the file records how it was made).

The shipped file: ``--scenes 240 --held-out 20`` (the defaults below), 80 s on the shared
2-core box.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gesco.codecs.base import split_maps
from gesco.codecs.context import (
    KINDS,
    PRIOR,
    PRIORS_FILE,
    StreamPair,
    encode_component,
    flat_priors,
    kind_of,
    label_stream_width,
)
from gesco.codecs.demo_scene import street_scene
from gesco.data.synthetic import generate_scene, split_seed
from gesco.semantics.classes import CITYSCAPES
from gesco.semantics.layout import encode_layout

CAPS = (16.0, 64.0, 256.0, 1024.0)


#: dense street maps (gesco.codecs.demo_scene) are drawn from seeds DENSE_SEED0 + i, far
#: from the seeds the benchmark and the tests use (0 .. 99)
DENSE_SEED0 = 1_000_000


def scene_components(index: int, height: int, width: int) -> list[tuple[np.ndarray, int]]:
    """The components the codec codes for train scene ``index`` (odd: a dense street map)."""
    if index % 2:
        label, instance = street_scene(height, width, seed=DENSE_SEED0 + index)
    else:
        scene = generate_scene(split_seed("train", index), height, width)
        label, instance = scene.label.astype(np.int64), scene.instance
    return split_maps(encode_layout(label, CITYSCAPES, instance).maps)[1]


def payload_bits(components: list[tuple[np.ndarray, int]], priors) -> int:
    streams = StreamPair(label_stream_width([a for _, a in components]))
    for component, alphabet in components:
        encode_component(streams, component, alphabet, priors)
    return 8 * (1 + len(streams.finish()))


def shrink(counts: dict, cap: float):
    out = {}
    for kind, tables in counts.items():
        out[kind] = {}
        for name, n in tables.items():
            total = n.sum(axis=1, keepdims=True)
            scale = np.minimum(1.0, cap / np.maximum(total, 1.0))
            out[kind][name] = np.round(PRIOR + n * scale, 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=240, help="scenes per resolution to count")
    parser.add_argument("--held-out", type=int, default=20, help="further scenes per resolution to pick cap")
    parser.add_argument("--sizes", default="64x128,256x512", help="resolutions HxW, comma-separated")
    parser.add_argument("--out", type=Path, default=PRIORS_FILE)
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]

    flat = flat_priors()
    counts = {kind: {name: np.zeros_like(a) for name, a in tables.items()} for kind, tables in flat.items()}
    for h, w in sizes:
        for i in range(args.scenes):
            for component, alphabet in scene_components(i, h, w):
                models = encode_component(StreamPair(label_stream_width([alphabet])), component, alphabet, flat)
                tables = counts[kind_of(alphabet)]
                for p, table in enumerate(models.flags):
                    tables[f"flags{p}"] += table.counts
                tables["how"] += models.how.counts
                tables["rows"] += models.rows.counts
    held_out = [scene_components(args.scenes + i, h, w) for h, w in sizes for i in range(args.held_out)]
    results = {"flat": sum(payload_bits(c, flat) for c in held_out) / len(held_out)}
    for cap in CAPS:
        results[cap] = sum(payload_bits(c, shrink(counts, cap)) for c in held_out) / len(held_out)
        print(f"cap {cap:g}: {results[cap]:.1f} payload bits per held-out frame (flat priors: {results['flat']:.1f})")
    best = min(CAPS, key=lambda c: results[c])
    priors = shrink(counts, best)
    note = (f"scenes 0..{args.scenes - 1} (even: synthetic train split, odd: dense street maps) at {args.sizes}; "
            f"cap {best:g} chosen on scenes {args.scenes}..{args.scenes + args.held_out - 1}; held-out payload bits per frame: "
            + json.dumps({str(k): round(v, 1) for k, v in results.items()}))
    arrays = {f"{kind}.{name}": a.astype(np.float32) for kind in KINDS for name, a in priors[kind].items()}
    np.savez_compressed(args.out, fitted_on=np.array(note), **arrays)
    print(f"cap {best:g} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
