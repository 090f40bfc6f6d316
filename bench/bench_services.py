"""Benchmark of the three services: latency by stage, throughput, receiver memory.

Starts the real services as processes (exactly as ``gesco up`` does) on free loopback
ports and measures, over real HTTP and gRPC:

1. **latency**: one transmission at a time at the default settings (PSNR 10 dB, AWGN,
   contour codec, the default sampler and steps, guidance 2, FDS), repeated; per stage: decode,
   segment, encode (+ PNG/JPEG reference sizes), channel round trip (bits, noise,
   forwarding, durable store), queue wait, FDS, sampling, PNG, and the client's
   end-to-end wall time (POST to result observed done);
2. **throughput**: 8 concurrent clients, each sending transmissions back to back,
   at receiver batch sizes 1 and 4 (jobs per second);
3. **memory**: the receiver process's peak resident set (VmHWM) after each run.

Without ``--label-free`` uploads carry their label map (no segmentation); with it the
sender segments with the shipped segmenter (the default user path when no map is
given). ``--tiny`` benchmarks a random-weight tiny model instead of the shipped one
(plumbing only; the result file says so).

    python bench/bench_services.py                       # the receiver's default checkpoint
    python bench/bench_services.py --tiny --repeats 3    # no trained model yet

``--compare LABEL=SAMPLER:STEPS:GUIDANCE[@CHECKPOINT]`` also times other settings end to
end, interleaved with the first; a setting with its own checkpoint goes to a second stack
of the three services started with that checkpoint (e.g. the guided model the student was
distilled from), idle while the other runs.

Results: ``bench/results/services.json`` (and a summary on stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gesco.diffusion.samplers import DEFAULT_SAMPLER, DEFAULT_STEPS
from gesco_net.cli import build_parser
from gesco_net.commands.up import healthy, services_for, stop_services
from gesco_net.probes import free_port

STAGES_SENDER = ("decode_s", "resize_s", "segment_s", "encode_s", "reference_s", "channel_s")
STAGES_RECEIVER = ("queue_wait_s", "fds_s", "sampling_s", "png_s")


def tiny_checkpoint(folder: Path, resolution: tuple[int, int]) -> Path:
    """A random-weight tiny checkpoint (same recipe as the service tests)."""
    import torch

    from gesco.diffusion.checkpoint import ModelCard, save_checkpoint
    from gesco.diffusion.gaussian import DiffusionConfig
    from gesco.diffusion.unet import SpadeUNet, UNetConfig

    cfg = UNetConfig(label_channels=36, base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(),
                     head_channels=8, spade_hidden=8, num_groups=8)
    torch.manual_seed(0)
    card = ModelCard(unet=cfg, diffusion=DiffusionConfig(), class_space="cityscapes", resolution=resolution,
                     training={"steps": 0, "note": "random weights (benchmark of the plumbing only)"})
    return Path(str(save_checkpoint(folder / "tiny", SpadeUNet(cfg), card))).with_suffix("")


class Stack:
    """The three services as processes, like ``gesco up``."""

    def __init__(self, checkpoint: Path | None, batch_size: int, data_dir: Path, segmenter: bool, threads: int,
                 extra_args: tuple[str, ...] = (), log_level: str = "WARNING") -> None:
        """``extra_args``: more ``gesco up`` options (``--store URL``, ``--workers N``; bench_scale.py);
        ``log_level``: the services' logging level."""
        ports = [free_port() for _ in range(4)]
        argv = ["up", "--data-dir", str(data_dir), "--sender-port", str(ports[0]), "--channel-port", str(ports[1]),
                "--receiver-port", str(ports[2]), "--receiver-grpc-port", str(ports[3]), "--device", "cpu",
                "--batch-size", str(batch_size), *extra_args]
        if checkpoint is not None:
            argv += ["--checkpoint", str(checkpoint)]
        if not segmenter:
            argv.append("--no-segmenter")
        self.args = build_parser().parse_args(argv)
        self.services = services_for(self.args)
        self.sender = f"http://127.0.0.1:{ports[0]}"
        self.receiver = f"http://127.0.0.1:{ports[2]}"
        self.log = open(data_dir / "services.log", "ab")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "GESCO_RECEIVER_TORCH_THREADS": str(threads),
               "GESCO_RECEIVER_LOG_LEVEL": log_level, "GESCO_SENDER_LOG_LEVEL": log_level,
               "GESCO_CHANNEL_LOG_LEVEL": log_level, "GESCO_RECEIVER_FSYNC": "true",
               # throughput is measured, not the per-client limit (bench_access.py measures that)
               "GESCO_SENDER_RATE_LIMIT_PER_S": os.environ.get("GESCO_SENDER_RATE_LIMIT_PER_S", "0"),
               "GESCO_RECEIVER_RATE_LIMIT_PER_S": os.environ.get("GESCO_RECEIVER_RATE_LIMIT_PER_S", "0")}
        for s in self.services:
            s.process = subprocess.Popen([sys.executable, "-m", s.module], env={**env, **s.env}, cwd=REPO,
                                         stdout=self.log, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while not all(healthy(s.name, self.args) for s in self.services):
            if any(s.process.poll() is not None for s in self.services) or time.monotonic() - t0 > 300:
                self.stop()
                raise RuntimeError(f"services did not start; see {data_dir / 'services.log'}")
            time.sleep(0.2)
        self.startup_s = time.monotonic() - t0

    @property
    def receiver_pid(self) -> int:
        return next(s.process.pid for s in self.services if s.name == "receiver")

    def receiver_peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.receiver_pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        stop_services(self.services)
        self.log.close()


def scene(seed: int, height: int, width: int) -> dict[str, bytes]:
    import cv2
    import numpy as np

    from gesco.data.synthetic import generate_scene
    from gesco.link import encode_png

    s = generate_scene(seed, height, width)
    ok, inst = cv2.imencode(".png", s.instance.astype(np.uint16))
    return {"image": encode_png(s.image), "label": encode_png(s.label.astype(np.uint8)), "instance": inst.tobytes()}


def parse_setting(spec: str) -> tuple[str, dict[str, str], str | None]:
    """``LABEL=SAMPLER:STEPS:GUIDANCE[@CHECKPOINT]`` -> ``(label, form fields, checkpoint or None)``;
    ``LABEL=default`` sends no field (the receiver's defaults)."""
    label, sep, rest = spec.partition("=")
    rest, at, checkpoint = rest.partition("@")
    if not sep or not label or (at and not checkpoint):
        raise SystemExit(f"--compare {spec!r}: expected LABEL=SAMPLER:STEPS:GUIDANCE[@CHECKPOINT] or LABEL=default")
    if rest == "default":
        return label, {}, checkpoint or None
    parts = rest.split(":")
    if len(parts) != 3:
        raise SystemExit(f"--compare {spec!r}: expected LABEL=SAMPLER:STEPS:GUIDANCE[@CHECKPOINT]")
    return label, {"sampler": parts[0], "steps": parts[1], "guidance_scale": parts[2]}, checkpoint or None


def transmit(client: httpx.Client, stack: Stack, files: dict[str, bytes], poll_s: float = 0.02,
             form: dict[str, str] | None = None) -> dict:
    """POST one transmission (with optional form fields) and poll until done; return timings."""
    t0 = time.perf_counter()
    r = client.post(stack.sender + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()}, data=form or {})
    if r.status_code != 202:
        raise RuntimeError(f"POST /transmit: HTTP {r.status_code}: {r.text}")
    accepted = r.json()
    while True:
        doc = client.get(accepted["result_url"]).json()
        if doc["status"] in ("done", "failed"):
            break
        time.sleep(poll_s)
    if doc["status"] != "done":
        raise RuntimeError(f"job failed: {doc['reason']}")
    wall = time.perf_counter() - t0
    client.get(doc["links"]["image"]).raise_for_status()
    return {"wall_s": wall, **accepted["timings"], **{k: doc["timings"][k] for k in STAGES_RECEIVER},
            "batch_size": doc["timings"]["batch_size"], "total_bits": accepted["budget"]["total_bits"]}


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def bench_latency(stack: Stack, repeats: int, label_free: bool, resolution) -> dict:
    files = [scene(1000 + i, 2 * resolution[0], 2 * resolution[1]) for i in range(repeats + 1)]
    if label_free:
        files = [{"image": f["image"]} for f in files]
    with httpx.Client(timeout=600) as client:
        transmit(client, stack, files[0])  # warm-up (first sampling call, caches)
        rows = [transmit(client, stack, f) for f in files[1:]]
    stages = {k: round(median(rows, k), 4) for k in (*STAGES_SENDER, *STAGES_RECEIVER, "wall_s")}
    return {"repeats": repeats, "median_s": stages, "runs": rows}


def bench_compare(stacks: dict[str, Stack], settings: list[tuple[str, dict]], repeats: int, label_free: bool,
                  resolution) -> dict:
    """End-to-end latency of several sampling settings, interleaved (A, B, A, B, ...).

    ``stacks`` maps each label to the services it is sent to (the same stack for settings of
    one checkpoint). Interleaving makes the settings share the machine's load, so their
    ratio is fair on a noisy machine; one transmission runs at a time. Returns per setting
    the median stages and the ratio of its median wall time to the first setting's.
    """
    files = [scene(3000 + i, 2 * resolution[0], 2 * resolution[1]) for i in range(repeats)]
    if label_free:
        files = [{"image": f["image"]} for f in files]
    rows: dict[str, list[dict]] = {label: [] for label, _ in settings}
    with httpx.Client(timeout=1200) as client:
        for label, form in settings:
            transmit(client, stacks[label], files[0], form=form)  # warm-up of each setting
        for f in files:
            for label, form in settings:
                rows[label].append(transmit(client, stacks[label], f, form=form))
    out = {}
    base = median(rows[settings[0][0]], "wall_s")
    for label, form in settings:
        med = {k: round(median(rows[label], k), 4) for k in (*STAGES_SENDER, *STAGES_RECEIVER, "wall_s")}
        out[label] = {"form": form or "receiver defaults", "median_s": med,
                      "wall_ratio_to_first": round(med["wall_s"] / base, 3), "runs": rows[label]}
    return {"repeats": repeats, "settings": out}


def compare_on_stacks(stack: Stack, specs: list[tuple[str, dict, str | None]], batch_size: int, tmp: Path,
                      resolution: tuple[int, int], args: argparse.Namespace) -> dict:
    """:func:`bench_compare` with a second stack for each other checkpoint named in ``specs``."""
    from gesco.diffusion.checkpoint import read_card

    extra: dict[str, Stack] = {}
    stacks: dict[str, Stack] = {}
    try:
        for label, _form, checkpoint in specs:
            if checkpoint is not None and checkpoint not in extra:
                if tuple(read_card(checkpoint).resolution) != tuple(resolution):
                    raise SystemExit(f"--compare {label}: {checkpoint} is not {resolution[0]}x{resolution[1]} like "
                                     "the benchmarked checkpoint")
                data = tmp / f"data-compare-{len(extra)}"
                data.mkdir()
                extra[checkpoint] = Stack(Path(checkpoint), batch_size, data, segmenter=args.label_free,
                                          threads=args.threads)
            stacks[label] = extra[checkpoint] if checkpoint is not None else stack
        out = bench_compare(stacks, [(label, form) for label, form, _ in specs], args.repeats, args.label_free,
                            resolution)
    finally:
        for s in extra.values():
            s.stop()
    for label, _form, checkpoint in specs:
        out["settings"][label]["checkpoint"] = checkpoint or "the benchmarked checkpoint"
    return out


def bench_throughput(stack: Stack, clients: int, per_client: int, resolution) -> dict:
    files = [scene(2000 + i, 2 * resolution[0], 2 * resolution[1]) for i in range(clients)]
    rows: list[dict] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client_loop(i: int) -> None:
        with httpx.Client(timeout=1800) as client:
            for _ in range(per_client):
                try:
                    row = transmit(client, stack, files[i], poll_s=0.1)
                except Exception as e:
                    with lock:
                        errors.append(str(e))
                    return
                with lock:
                    rows.append(row)

    with httpx.Client(timeout=600) as client:
        transmit(client, stack, files[0])  # warm-up
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients, "jobs": len(rows), "errors": errors, "wall_s": round(wall, 3),
        "jobs_per_s": round(len(rows) / wall, 4),
        "mean_batch_size": round(statistics.fmean(r["batch_size"] for r in rows), 3) if rows else None,
        "median_latency_s": round(median(rows, "wall_s"), 3) if rows else None,
        "median_sampling_s": round(median(rows, "sampling_s"), 3) if rows else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="diffusion checkpoint (default: the receiver's, the distilled student)")
    p.add_argument("--tiny", action="store_true", help="benchmark a random-weight tiny model (plumbing only)")
    p.add_argument("--label-free", action="store_true", help="upload images only: the sender segments them")
    p.add_argument("--repeats", type=int, default=5, help="sequential transmissions for the latency")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--per-client", type=int, default=2, help="transmissions per client in the throughput runs")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or os.cpu_count(),
                   help="torch threads of each service")
    p.add_argument("--compare", action="append", default=[], metavar="LABEL=SAMPLER:STEPS:GUIDANCE[@CHECKPOINT]",
                   help="also time these settings end to end, interleaved on the first stack (LABEL=default: the "
                        "receiver's defaults; @CHECKPOINT: on a second stack with that checkpoint); e.g. --compare "
                        "new=default --compare guided=dpmpp-2m-sde:20:2@checkpoints/diffusion-synthetic-64x128")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "services.json"))
    args = p.parse_args(argv)

    from gesco.diffusion.checkpoint import read_card
    from gesco.paths import DEFAULT_RECEIVER, shipped_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="gesco-bench-"))
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    if args.tiny:
        checkpoint = tiny_checkpoint(tmp, (64, 128))
    card = read_card(checkpoint or shipped_checkpoint(DEFAULT_RECEIVER))
    resolution = tuple(card.resolution)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "load_avg_at_start": os.getloadavg(), "python": platform.python_version()},
        "checkpoint": str(checkpoint or shipped_checkpoint(DEFAULT_RECEIVER)),
        "model": ("TINY RANDOM-WEIGHT MODEL (not the shipped one)" if args.tiny
                  else "checkpoint given with --checkpoint" if args.checkpoint else "shipped (the receiver's default)"),
        "model_training_steps": card.training.get("steps"),
        "resolution": list(resolution),
        "settings": f"defaults: PSNR 10 dB, awgn, contour, {DEFAULT_SAMPLER}, {DEFAULT_STEPS} steps, guidance 2, FDS",
        "uploads": "image only (sender segments)" if args.label_free else "image + label + instance maps",
        "torch_threads_per_service": args.threads,
        "device": "cpu",
    }
    import torch

    result["torch"] = torch.__version__
    runs = {}
    for bs in args.batch_sizes:
        data = tmp / f"data-bs{bs}"
        data.mkdir()
        stack = Stack(checkpoint, bs, data, segmenter=args.label_free, threads=args.threads)
        try:
            run = {"startup_s": round(stack.startup_s, 2)}
            if bs == args.batch_sizes[0]:
                run["latency"] = bench_latency(stack, args.repeats, args.label_free, resolution)
                if args.compare:
                    run["compare"] = compare_on_stacks(stack, [parse_setting(c) for c in args.compare], bs, tmp,
                                                       resolution, args)
                    for label, r in run["compare"]["settings"].items():
                        print(f"compare {label}: wall {r['median_s']['wall_s']} s, sampling {r['median_s']['sampling_s']} s, "
                              f"ratio to first {r['wall_ratio_to_first']}", flush=True)
            run["throughput"] = bench_throughput(stack, args.clients, args.per_client, resolution)
            run["receiver_peak_rss_mib"] = round(stack.receiver_peak_rss_mib(), 1)
        finally:
            stack.stop()
        runs[f"batch_{bs}"] = run
        print(f"batch size {bs}: {json.dumps({k: v for k, v in run.items() if k != 'latency'})}", flush=True)
    result["runs"] = runs
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    lat = runs[f"batch_{args.batch_sizes[0]}"]["latency"]["median_s"]
    print("latency by stage (median s): " + ", ".join(f"{k} {v}" for k, v in lat.items()))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
