"""Cost of the authors' network (the paper's model) on this machine: per pass, per image, memory, import.

What is measured (results to ``bench/results/pretrained_cpu.json`` and a readable ``.md``
next to it, both rewritten after every measurement, so a run cut short keeps what it got):

* ``build``: building ``SpadeUNet(UNetConfig.authors())`` (653,984,518 parameters) with
  **random weights** (speed does not depend on the values; the zero-initialised output
  convs are re-drawn so the output is not trivially zero).
* ``forward``: seconds per network pass at 256x512 (``torch.inference_mode``), batch 1 (one
  conditional pass: a guidance-folded or unguided step) and batch 2 (one guided step:
  conditional + null label in one batch, as :func:`gesco.diffusion.guidance.guided_denoiser`),
  with progress printed per decoder block while it runs (``--progress``). One untimed
  warm-up pass at batch 1, then ``--repeats`` timed passes per batch size.
* ``per_image``: seconds per image **extrapolated** from the measured pass times for the
  samplers the receiver offers: the imported models' default (``dpmpp-2m-sde`` at 20
  guided steps, 40 passes), 10 guided steps and the paper's 1000-step ancestral chain
  (2000 passes).
* ``memory``: peak resident set size of this process (``VmHWM``), weights included.
* ``import``: ``gesco import`` of a full-size random state dict (the authors' keys, GESCO's
  ``spade_norm`` included: 868 keys, 2.7 GB) written to ``--tmp`` first (not kept): seconds
  to read, map and write the safetensors checkpoint, and the file sizes. Needs ~6 GB free.

Usage:
    OMP_NUM_THREADS=2 python bench/bench_pretrained.py --threads 2          # everything, ~15 min here
    python bench/bench_pretrained.py --sections forward --repeats 1
    python bench/bench_pretrained.py --tiny                                 # seconds: keeps the script alive (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from gesco.diffusion.authors_import import AuthorsFlags, import_checkpoint, to_authors_state_dict
from gesco.diffusion.pipeline import sampling_cost
from gesco.diffusion.unet import SpadeUNet, UNetConfig

#: the samplers whose per-image cost is extrapolated: (name, steps), guided at the authors' scale 2
SAMPLER_ROWS = [("dpmpp-2m-sde", 20), ("dpmpp-2m-sde", 10), ("ancestral", None)]
TINY = dict(base_channels=32, channel_mult=(1, 1, 2), num_res_blocks=1, attention_ds=(4,), head_channels=32)


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def randomise(model: SpadeUNet, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (0.5 / p[0].numel() ** 0.5))


def conditioning(batch: int, h: int, w: int) -> torch.Tensor:
    """A block label map of 35 Cityscapes ids + a few edges; the second half the null label."""
    y = torch.zeros(batch, 36, h, w)
    ids = torch.arange(h // 32 * (w // 32)).reshape(h // 32, w // 32) % 35
    ids = ids.repeat_interleave(32, 0).repeat_interleave(32, 1)
    y[0].scatter_(0, ids[None], 1.0)
    y[0, 35, ::32] = 1
    return y  # rows 1.. stay all-zero (the null label of guidance)


class Progress:
    """Prints ``decoder block k/N, t s`` after each decoder block while a pass runs."""

    def __init__(self, model: SpadeUNet, enabled: bool) -> None:
        self.t0 = 0.0
        n = len(model.up)
        if enabled:
            for k, layer in enumerate(model.up):
                layer[0].register_forward_hook(
                    lambda _m, _i, _o, k=k: print(f"    decoder block {k + 1}/{n}, {time.perf_counter() - self.t0:.1f} s",
                                                  flush=True))


def write(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    lines = [f"# The authors' network on {results['machine']['cpu']} ({results['machine']['threads']} threads)", "",
             f"Config: {results['config_name']}, {results.get('parameters', 0):,} parameters, "
             f"{results['height']}x{results['width']}, random weights. Command: `{results['command']}`.",
             f"Load average (1, 5, 15 min) at start {results['machine'].get('load_avg_start')}, at end "
             f"{results['machine'].get('load_avg_end', 'not reached')} on {results['machine']['cores']} cores: "
             "other jobs share the machine, so times are upper bounds.", ""]
    if "build" in results:
        lines.append(f"- build (random init): {results['build']['seconds']:.1f} s")
    for row in results.get("forward", []):
        lines.append(f"- one pass, batch {row['batch']}: median {row['median_s']:.1f} s "
                     f"(runs {', '.join(f'{s:.1f}' for s in row['seconds'])})")
    for row in results.get("per_image", []):
        lines.append(f"- per image, {row['sampler']} {row['steps'] or ''} guided: {row['passes']} passes = "
                     f"{row['seconds']:.0f} s ({row['seconds'] / 3600:.2f} h), extrapolated from the batch-2 pass")
    if "memory" in results:
        lines.append(f"- peak resident memory: {results['memory']['peak_rss_mb']:.0f} MB")
    if "import" in results:
        imp = results["import"]
        lines.append(f"- gesco import of a full-size random state dict ({imp['source_mb']:.0f} MB, {imp['keys']} keys): "
                     f"{imp['seconds']:.1f} s, wrote {imp['safetensors_mb']:.0f} MB")
    (out.with_suffix(".md")).write_text("\n".join(lines) + "\n")


def forward_section(cfg: UNetConfig, h: int, w: int, args: argparse.Namespace, results: dict, out: Path) -> None:
    """Build the network (random weights), time one pass at batch 1 and 2, extrapolate per image and sampler."""
    t0 = time.perf_counter()
    model = SpadeUNet(cfg).eval()
    randomise(model)
    results["build"] = {"seconds": time.perf_counter() - t0}
    results["parameters"] = sum(p.numel() for p in model.parameters())
    prog = Progress(model, not args.no_progress)
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(1))
    y = conditioning(2, h, w)
    rows = []
    with torch.inference_mode():
        print("warm-up pass, batch 1", flush=True)
        prog.t0 = time.perf_counter()
        model(x[:1], torch.tensor([500]), y[:1])
        for batch in (1, 2):
            secs = []
            for r in range(args.repeats):
                print(f"timed pass, batch {batch}, run {r + 1}/{args.repeats}", flush=True)
                prog.t0 = t = time.perf_counter()
                o = model(x[:batch], torch.full((batch,), 500), y[:batch])
                secs.append(time.perf_counter() - t)
            assert torch.isfinite(o).all()
            rows.append({"batch": batch, "seconds": secs, "median_s": statistics.median(secs)})
            results["forward"] = rows
            results["memory"] = {"peak_rss_mb": peak_rss_mb()}
            write(results, out)
    guided = next(r["median_s"] for r in rows if r["batch"] == 2)
    results["per_image"] = []
    for sampler, steps in SAMPLER_ROWS:
        cost = sampling_cost(None, sampler, steps, 2.0)
        results["per_image"].append({"sampler": sampler, "steps": steps, "passes": cost.forwards * cost.batch_factor,
                                     "forwards": cost.forwards, "seconds": cost.forwards * guided,
                                     "extrapolated": True})
    del model
    write(results, out)


def import_section(cfg: UNetConfig, args: argparse.Namespace, results: dict, out: Path) -> None:
    """``gesco import`` of a full-size random state dict in the authors' layout, timed."""
    tmp = Path(tempfile.mkdtemp(prefix="gesco-import-bench-", dir=args.tmp))
    try:
        free = shutil.disk_usage(tmp).free / 2**30
        need = 0.05 if args.tiny else 6.0
        if free < need:
            raise SystemExit(f"{tmp}: {free:.1f} GiB free, the import section needs {need} GiB")
        with torch.device("meta"):
            meta = SpadeUNet(cfg)
        flags = AuthorsFlags() if not args.tiny else AuthorsFlags(
            image_size=64, num_channels=32, num_res_blocks=1, channel_mult=(1, 1, 2), attention_resolutions=(16,),
            num_head_channels=32)
        g = torch.Generator().manual_seed(2)
        sd = {k: torch.randn(v.shape, generator=g) * 0.01 for k, v in to_authors_state_dict(meta).items()}
        # GESCO's unused spade_norm, as in the published checkpoint: one per encoder residual block
        for k in [k for k in sd if k.startswith("input_blocks.") and k.endswith(".in_layers.0.weight")]:
            blk, ch = k[: -len(".in_layers.0.weight")], sd[k].shape[0]
            sd[f"{blk}.spade_norm.mlp_shared.0.weight"] = torch.zeros(128, 3, 3, 3)
            sd[f"{blk}.spade_norm.mlp_shared.0.bias"] = torch.zeros(128)
            for part in ("mlp_gamma", "mlp_beta"):
                sd[f"{blk}.spade_norm.{part}.weight"] = torch.zeros(ch, 128, 3, 3)
                sd[f"{blk}.spade_norm.{part}.bias"] = torch.zeros(ch)
        src = tmp / "random_gesco_cityscapes.pt"
        torch.save(sd, src)
        keys = len(sd)
        del sd
        t0 = time.perf_counter()
        path, _card, report = import_checkpoint(src, tmp / "imported", "cityscapes", flags,
                                                progress=lambda m: print(f"  import: {m}", flush=True))
        secs = time.perf_counter() - t0
        results["import"] = {"seconds": secs, "keys": keys, "source_mb": src.stat().st_size / 2**20,
                             "safetensors_mb": path.stat().st_size / 2**20, "parameters": report.parameters,
                             "dropped_keys": report.dropped_keys}
        results["memory"] = {"peak_rss_mb": peak_rss_mb()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write(results, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", nargs="+", default=["forward", "import"], choices=["forward", "import"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--tiny", action="store_true", help="a small network at 64x128 (seconds)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--tmp", default=tempfile.gettempdir(), help="where the import's full-size files go (deleted)")
    ap.add_argument("--out", default="bench/results/pretrained_cpu.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    cfg = UNetConfig.authors(**TINY) if args.tiny else UNetConfig.authors()
    h, w = (64, 128) if args.tiny else (256, 512)
    results: dict = {
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "config_name": "tiny authors' layout" if args.tiny else "UNetConfig.authors() (the published Cityscapes flags)",
        "height": h, "width": w, "unet": cfg.to_dict(),
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                    "cores": os.cpu_count(), "torch": torch.__version__,
                    "load_avg_start": list(os.getloadavg())},
    }
    if "forward" in args.sections:
        forward_section(cfg, h, w, args, results, out)
    if "import" in args.sections:
        import_section(cfg, args, results, out)
    results["machine"]["load_avg_end"] = list(os.getloadavg())
    write(results, out)
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
