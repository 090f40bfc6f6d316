"""How far the fitted mean path's prior colour moves when the maps come through a noisy channel.

The meanfit checkpoint's mean path (:mod:`gesco.diffusion.mean_path`) predicts the image's mean
colour from the label fractions of its conditioning, ``M mean(y)``, with ``M`` fitted by least
squares on **clean** train maps (``scripts/mean_path_fit.py``). The receiver feeds it the maps
after the channel and FDS, whose fractions are not the clean ones at a low PSNR. This bench
refits ``M`` the same way (``--fit-scenes`` train scenes) and measures, on the first ``--scenes``
**validation** scenes sent through the link (:func:`gesco.link.encode_image_frame`,
:func:`gesco.link.apply_channel`, :func:`gesco.link.receiver_maps` with FDS, seed ``i`` for scene
``i`` as ``gesco evaluate`` uses), the shift of ``M mean(y)`` from its 100 dB value (0-255 units),
and the sum of the class fractions over the pixels (all channels but the edge map).

    OMP_NUM_THREADS=1 python bench/bench_mean_prior_received.py --out bench/results/mean_prior_received

Writes ``OUT/mean_prior_received.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gesco.data.synthetic import SyntheticScenes, generate_scene, split_seed
from gesco.diffusion.mean_path import fit_colour_prior
from gesco.link import TransmitSettings, apply_channel, encode_image_frame, receiver_maps
from gesco.semantics.classes import get_class_space
from gesco.train.data import make_batch

H, W = 64, 128


def fit_prior(n: int, space, chunk: int = 100):
    """The conditional colour prior of ``scripts/mean_path_fit.py`` (clean train maps, ``n`` scenes)."""
    ds = SyntheticScenes(split="train", size=n, height=H, width=W)
    ims, conds = [], []
    for i in range(0, n, chunk):
        b = make_batch(ds, list(range(i, min(n, i + chunk))), space)
        ims.append(b["image"])
        conds.append(b["cond"])
        del b
    return fit_colour_prior(torch.cat(ims), torch.cat(conds))


def received_fractions(scene: int, psnr: float, space) -> torch.Tensor:
    """``mean(y)`` ``(L,)`` of validation scene ``scene``'s conditioning after the channel at ``psnr`` and FDS."""
    s = generate_scene(split_seed("val", scene), H, W)
    frame, _ = encode_image_frame(s.image, s.label, s.instance, space=space, resolution=(H, W),
                                  frame_id=f"prior-{scene}", transmit=TransmitSettings(seed=scene, psnr_db=psnr))
    return receiver_maps(apply_channel(frame), fds=True, kernel=3).conditioning.float().mean((1, 2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=30)
    ap.add_argument("--fit-scenes", type=int, default=600)
    ap.add_argument("--psnr", type=float, nargs="+", default=[100.0, 10.0, 5.0, 1.0])
    ap.add_argument("--out", default="bench/results/mean_prior_received")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    space = get_class_space("cityscapes")
    M = fit_prior(args.fit_scenes, space).M.float()  # (3, L)
    base = {i: received_fractions(i, 100.0, space) for i in range(args.scenes)}
    rows = []
    for psnr in args.psnr:
        shift, sums = [], []
        for i in range(args.scenes):
            f = received_fractions(i, psnr, space)
            shift.append(((M @ (f - base[i])) * 127.5).tolist())
            sums.append(float(f[:-1].sum()))
        d = np.array(shift)
        rows.append({"psnr_db": psnr, "shift_mean_rgb": d.mean(0).round(2).tolist(),
                     "shift_rms_rgb": np.sqrt((d ** 2).mean(0)).round(2).tolist(),
                     "class_fraction_sum": round(float(np.mean(sums)), 3)})
        print(rows[-1], flush=True)
    result = {"command": "python bench/bench_mean_prior_received.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "split": "val", "scenes": args.scenes, "fit_scenes": args.fit_scenes, "machine": platform.machine(),
              "wall_s": round(time.perf_counter() - t0, 1), "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mean_prior_received.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# The fitted mean path's prior colour M mean(y) on received maps", "", f"Command: `{result['command']}`", "",
             f"{args.scenes} validation scenes through the link (FDS), M fitted on {args.fit_scenes} clean train scenes; "
             "shift of M mean(y) from its 100 dB value, 0-255.", "",
             "| PSNR dB | shift, mean RGB | shift, RMS RGB | sum of the class fractions |", "|---|---|---|---|"]
    lines += [f"| {r['psnr_db']:g} | {tuple(r['shift_mean_rgb'])} | {tuple(r['shift_rms_rgb'])} | {r['class_fraction_sum']:.2f} |"
              for r in rows]
    (out / "mean_prior_received.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
