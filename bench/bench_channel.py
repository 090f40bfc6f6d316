"""Channel throughput: real symbols per second through gesco.channel.

For each channel model (``awgn`` with power normalisation, ``awgn`` with a mask as in a
padded training batch, and ``authors-code``), each map-batch shape, and each torch thread
count, time ``ChannelModel.transmit`` on float32 one-hot maps and report the median over
repeats. One symbol = one real channel use (one element of the map tensor).

Usage:
    python bench/bench_channel.py                        # threads 1 and the default
    OMP_NUM_THREADS=1 python bench/bench_channel.py      # a run with the default set to 1
    python bench/bench_channel.py --repeats 11 --out bench/results/channel.json
    python bench/bench_channel.py --table                # the results file as Markdown

Results are merged into the JSON file under the key ``"OMP_NUM_THREADS=<value or unset>"``
so the runs with and without the environment variable sit side by side. The host's load
average is recorded too: on a shared machine, other processes slow the timings down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from gesco.channel import get_channel

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: machine_info (also when loaded by the tests)
from machine_info import cpu_model

#: (B, K, H, W): K present-class maps of an H x W image, B samples
SHAPES: tuple[tuple[int, int, int, int], ...] = ((1, 20, 256, 512), (1, 20, 64, 128), (4, 20, 64, 128))
#: (label, channel name, PSNR dB, use a mask)
CASES: tuple[tuple[str, str, float, bool], ...] = (
    ("awgn", "awgn", 10.0, False),
    ("awgn+mask", "awgn", 10.0, True),
    ("authors-code", "authors-code", 10.0, False),
)


def one_hot_maps(shape: tuple[int, int, int, int], seed: int = 0) -> torch.Tensor:
    """``(B, K, H, W)`` float32 one-hot maps (each pixel belongs to one of the K classes)."""
    b, k, h, w = shape
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, k, (b, h, w), generator=g)
    return torch.nn.functional.one_hot(label, k).permute(0, 3, 1, 2).contiguous().float()


def time_transmit(case: tuple[str, str, float, bool], x: torch.Tensor, repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls (after one warm-up call)."""
    _, name, psnr, use_mask = case
    channel = get_channel(name)
    mask = None
    if use_mask:  # the last quarter of the map slots are padding (not sent)
        mask = torch.ones(x.shape[0], x.shape[1], 1, 1)
        mask[:, -(x.shape[1] // 4) :] = 0
    gen = torch.Generator().manual_seed(1)
    channel.transmit(x, psnr, mask=mask, generator=gen)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        channel.transmit(x, psnr, mask=mask, generator=gen)
        times.append(time.perf_counter() - t0)
    return times


def run(repeats: int, thread_counts: list[int]) -> list[dict]:
    rows = []
    for shape in SHAPES:
        x = one_hot_maps(shape)
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for case in CASES:
                times = time_transmit(case, x, repeats)
                med = statistics.median(times)
                row = {
                    "channel": case[0],
                    "shape": list(shape),
                    "symbols": x.numel(),
                    "threads": threads,
                    "repeats": repeats,
                    "median_s": med,
                    "min_s": min(times),
                    "max_s": max(times),
                    "symbols_per_s": x.numel() / med,
                }
                rows.append(row)
                print(
                    f"{case[0]:13s} {'x'.join(map(str, shape)):14s} threads={threads}  "
                    f"median {med * 1e3:8.2f} ms  {row['symbols_per_s'] / 1e6:7.1f} M symbols/s"
                )
    return rows


def machine() -> dict:
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def markdown_table(results: dict) -> str:
    """The results file as a Markdown table (M symbols/s: median, and best of the repeats)."""
    lines = [
        "| run | channel | B x K x H x W | threads | median ms | M symbols/s (median) | M symbols/s (best) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, run_ in results.items():
        load = run_.get("load_avg_1min", ["?", "?"])
        for r in run_["results"]:
            lines.append(
                f"| {key} (load {load[0]}-{load[1]}) | {r['channel']} | {'x'.join(map(str, r['shape']))} "
                f"| {r['threads']} | {r['median_s'] * 1e3:.1f} | {r['symbols_per_s'] / 1e6:.1f} "
                f"| {r['symbols'] / r['min_s'] / 1e6:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "channel.json")
    parser.add_argument("--table", action="store_true", help="print the results file as Markdown and exit")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(args.out.read_text())))
        return

    default_threads = torch.get_num_threads()
    thread_counts = sorted({1, default_threads})
    load_before = os.getloadavg()
    rows = run(args.repeats, thread_counts)
    load_after = os.getloadavg()

    key = f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[key] = {
        "machine": machine(),
        "default_threads": default_threads,
        # 1-minute load average of the host before/after: other processes share the cores
        "load_avg_1min": [round(load_before[0], 2), round(load_after[0], 2)],
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} [{key}]")


if __name__ == "__main__":
    main()
