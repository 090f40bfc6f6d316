"""Bench the digital link (gesco.digital): decoding thresholds per MCS and time per 64x128 frame.

Two parts, each written to bench/results/digital.json (``--part``):

* ``thresholds``: for every MCS of the table, the lowest SNR on a 0.25 dB grid (starting
  at the AWGN Shannon limit of its efficiency) at which ``--frames`` frames of
  ``--payload-bytes`` random bytes all decode on AWGN, and its gap to the Shannon limit.
  This is what the rate adaptation's gap (``gesco.digital.mcs.DEFAULT_GAP_DB``) is checked against.
* ``cliff``: frame delivery against the actual SNR for the MCS chosen at 10 dB (the
  semantic frame and the JPEG of one scene), the cliff effect.
* ``timing``: the encode / channel / decode seconds of one 64x128 synthetic scene sent as
  JPEG (quality fitted to 3 channel uses per pixel), PNG and the semantic frame, at PSNR
  1 / 10 / 30 dB, for LDPC iterations 20 / 10 / 5, next to the diffusion sampling time of
  the shipped checkpoint (default sampler and the ddim-10 preset) on the same CPU thread.

    OMP_NUM_THREADS=1 python bench/bench_digital.py --part thresholds
    OMP_NUM_THREADS=1 python bench/bench_digital.py --part timing
    OMP_NUM_THREADS=1 python bench/bench_digital.py --part cliff --frames 10 --plot docs/evaluation/digital/cliff.png
    python bench/bench_digital.py --table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "digital.json"


def _load() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}


def _save(data: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")


def thresholds(frames: int, payload_bytes: int, iterations: int) -> list[dict]:
    from gesco.digital.link import DigitalLink
    from gesco.digital.mcs import mcs_table

    link = DigitalLink("awgn", num_iter=iterations)
    rng = np.random.default_rng(0)
    out = []
    for mcs in mcs_table():
        limit = mcs.awgn_shannon_snr_db()
        snr = np.floor(limit * 4) / 4
        seed = 0
        while True:
            ok = True
            for _ in range(frames):
                payload = rng.integers(0, 256, payload_bytes, dtype=np.uint8).tobytes()
                seed += 1
                r = link.send(payload, float(snr), mcs=mcs, generator=torch.Generator().manual_seed(seed))
                if not r.ok:
                    ok = False
                    break
            if ok:
                break
            snr += 0.25
        row = {"mcs": mcs.name, "bits_per_symbol": mcs.bits_per_symbol, "code_rate": mcs.code_rate,
               "efficiency": mcs.efficiency, "shannon_db": round(limit, 3), "threshold_db": float(snr),
               "gap_db": round(float(snr) - limit, 3)}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def timing(repeats: int) -> dict:
    from gesco.data.synthetic import generate_scene
    from gesco.digital.link import DigitalLink
    from gesco.digital.mcs import select_mcs
    from gesco.digital.source import fit_image, frame_bytes
    from gesco.link import encode_image_frame
    from gesco.semantics.classes import get_class_space

    scene = generate_scene(1, 64, 128)
    frame, _ = encode_image_frame(scene.image, scene.label, scene.instance, space=get_class_space("cityscapes"),
                                  resolution=(64, 128), frame_id="b" * 32)
    rows = []
    for iterations in (20, 10, 5):
        link = DigitalLink("awgn", num_iter=iterations)
        for psnr in (1.0, 10.0, 30.0):
            mcs = select_mcs(psnr)
            sources = {
                "jpeg@3cu/px": fit_image(scene.image, "jpeg", mcs, 3 * 64 * 128).data,
                "png": fit_image(scene.image, "png", mcs, None).data,
                "semantic frame": frame_bytes(frame),
            }
            for name, data in sources.items():
                if not data:  # even quality 1 does not fit the budget at this MCS: nothing is sent
                    rows.append({"iterations": iterations, "psnr_db": psnr, "mcs": mcs.name, "source": name,
                                 "bytes": 0, "note": "does not fit the budget"})
                    print(json.dumps(rows[-1]), flush=True)
                    continue
                link.send(data, psnr, mcs=mcs, generator=torch.Generator().manual_seed(0))  # warm-up
                t = {"encode": [], "channel": [], "decode": []}
                ok = 0
                for k in range(repeats):
                    r = link.send(data, psnr, mcs=mcs, generator=torch.Generator().manual_seed(k + 1))
                    ok += r.ok
                    for key in t:
                        t[key].append(r.timings[key])
                row = {"iterations": iterations, "psnr_db": psnr, "mcs": mcs.name, "source": name,
                       "bytes": len(data), "blocks": r.layout.blocks, "channel_uses_per_pixel": r.layout.channel_uses / (64 * 128),
                       "delivered": f"{ok}/{repeats}", **{f"{k}_s_median": statistics.median(v) for k, v in t.items()}}
                print(json.dumps(row), flush=True)
                rows.append(row)
    sampling = {}
    try:
        from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator
        from gesco.link import apply_channel, received_conditioning
        from gesco.paths import DEFAULT_DIFFUSION, shipped_checkpoint

        gen = SemanticGenerator.load(shipped_checkpoint(DEFAULT_DIFFUSION), device="cpu")
        cond = received_conditioning(apply_channel(frame))[None]
        for sampler, steps in (("respaced", 50), ("ddim", 10)):
            gen.generate(cond, [SamplingSettings(sampler=sampler, steps=steps, guidance_scale=2.0, seed=0)])  # warm-up
            ts = []
            for k in range(max(1, repeats // 2)):
                t0 = time.perf_counter()
                gen.generate(cond, [SamplingSettings(sampler=sampler, steps=steps, guidance_scale=2.0, seed=k)])
                ts.append(time.perf_counter() - t0)
            sampling[f"{sampler}-{steps}"] = statistics.median(ts)
            print(json.dumps({"sampling": f"{sampler}-{steps}", "seconds_median": sampling[f"{sampler}-{steps}"]}), flush=True)
    except Exception as e:
        sampling["error"] = f"{type(e).__name__}: {e}"
        print("sampling not timed:", sampling["error"], flush=True)
    return {"rows": rows, "sampling_s": sampling}


def cliff(frames: int, plot: Path | None) -> dict:
    """Frame delivery against the actual SNR for the MCS chosen at 10 dB (AWGN): the cliff."""
    from gesco.data.synthetic import generate_scene
    from gesco.digital.link import DigitalLink
    from gesco.digital.mcs import select_mcs
    from gesco.digital.source import fit_image, frame_bytes
    from gesco.link import encode_image_frame
    from gesco.semantics.classes import get_class_space

    scene = generate_scene(1, 64, 128)
    frame, _ = encode_image_frame(scene.image, scene.label, scene.instance, space=get_class_space("cityscapes"),
                                  resolution=(64, 128), frame_id="c" * 32)
    mcs = select_mcs(10.0)
    sources = {"semantic frame": frame_bytes(frame), "jpeg@3cu/px": fit_image(scene.image, "jpeg", mcs, 3 * 64 * 128).data}
    link = DigitalLink("awgn")
    snrs = [float(x) for x in np.arange(4.0, 12.01, 0.5)]
    curves: dict[str, list[float]] = {}
    for name, data in sources.items():
        rates = []
        for snr in snrs:
            ok = sum(link.send(data, snr, mcs=mcs, generator=torch.Generator().manual_seed(k)).ok for k in range(frames))
            rates.append(ok / frames)
        curves[name] = rates
        print(json.dumps({"source": name, "bytes": len(data), "delivered": dict(zip(snrs, rates))}), flush=True)
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        for name, rates in curves.items():
            ax.plot(snrs, rates, marker="o", label=f"{name} ({len(sources[name])} bytes)")
        ax.axvline(10.0, color="grey", ls=":", label="PSNR the MCS was chosen for")
        ax.axvline(mcs.awgn_shannon_snr_db(), color="k", ls="--", lw=1, label="Shannon limit of the MCS")
        ax.set_xlabel("actual SNR (dB), AWGN")
        ax.set_ylabel("frames delivered")
        ax.set_title(f"The cliff: {mcs.name} fixed, {frames} frames per point")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(plot, dpi=110)
        plt.close(fig)
    return {"mcs": mcs.name, "frames": frames, "snr_db": snrs, "delivered": curves}


def table(data: dict) -> str:
    lines = []
    if "thresholds" in data:
        t = data["thresholds"]
        lines += [f"thresholds ({t['frames']} frames of {t['payload_bytes']} bytes all decoded, {t['iterations']} iterations):",
                  "| MCS | eta (bit/symbol) | Shannon (dB) | threshold (dB) | gap (dB) |", "|---|---|---|---|---|"]
        lines += [f"| {r['mcs']} | {r['efficiency']:.3f} | {r['shannon_db']:.2f} | {r['threshold_db']:.2f} | {r['gap_db']:.2f} |"
                  for r in t["rows"]]
    if "timing" in data:
        t = data["timing"]
        lines += ["", "| iterations | PSNR | MCS | source | bytes | blocks | uses/px | delivered | encode s | decode s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['iterations']} | {r['psnr_db']:g} | {r['mcs']} | {r['source']} | {r['bytes']} | {r['blocks']} | "
                  f"{r['channel_uses_per_pixel']:.2f} | {r['delivered']} | {r['encode_s_median']:.3f} | {r['decode_s_median']:.3f} |"
                  if "note" not in r else f"| {r['iterations']} | {r['psnr_db']:g} | {r['mcs']} | {r['source']} | - | - | - | "
                  f"{r['note']} | - | - |" for r in t["rows"]]
        lines += ["", "diffusion sampling, s per image: " + json.dumps(t["sampling_s"])]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("thresholds", "timing", "cliff"))
    ap.add_argument("--plot", type=Path, default=None, help="--part cliff: where to save the plot")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--payload-bytes", type=int, default=1500)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    data = _load()
    if args.part:
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        machine = {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                   "torch": torch.__version__, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "load_avg": os.getloadavg()}
        if args.part == "thresholds":
            data["thresholds"] = {"frames": args.frames, "payload_bytes": args.payload_bytes,
                                  "iterations": args.iterations, "machine": machine,
                                  "rows": thresholds(args.frames, args.payload_bytes, args.iterations)}
        elif args.part == "cliff":
            data["cliff"] = {"machine": machine, **cliff(args.frames, args.plot)}
        else:
            data["timing"] = {"repeats": args.repeats, "machine": machine, **timing(args.repeats)}
        _save(data)
    print(table(data))


if __name__ == "__main__":
    main()
