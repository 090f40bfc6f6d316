"""Soak test: 8 clients against the three services for 5 minutes; errors, latency, memory.

Starts the services as processes (``bench_services.Stack``: exactly as ``gesco up``) on
free loopback ports, then runs ``--clients`` closed-loop clients for ``--duration``
seconds. Each client sends a synthetic scene (image + label + instance map, a new seed
each time) to ``POST /transmit``, polls the result until it is done, and downloads the
image, then starts again. Recorded:

* every request's outcome: 202 + done is a success; any other status, a failed job or a
  transport error is an error (5xx counted apart);
* latency of ``POST /transmit`` (the sender's 202) and end to end (POST to image),
  p50 / p95;
* resident memory (VmRSS) of the receiver, channel and sender at the start (after
  ``--warmup`` seconds of the same load, counted apart) and at the end, sampled every
  10 s in between (min / max reported).

    python bench/soak.py                                  # shipped checkpoint, 8 clients, 300 s
    python bench/soak.py --tiny --duration 30             # plumbing only

Results: ``bench/results/soak.json`` (and a summary on stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_services import Stack, scene, tiny_checkpoint


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def one(client: httpx.Client, sender: str, seed: int, resolution: list[int], form: dict[str, str]) -> dict:
    """One transmission of scene ``seed`` until its image is fetched: ok, status, POST and end-to-end seconds."""
    files = scene(seed, *resolution)
    t0 = time.perf_counter()
    try:
        r = client.post(sender + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()},
                        data=form)
        post_s = time.perf_counter() - t0
        if r.status_code != 202:
            return {"ok": False, "status": r.status_code, "post_s": post_s, "error": r.text[:200]}
        url = r.json()["result_url"]
        while True:
            doc = client.get(url).json()
            if doc["status"] in ("done", "failed"):
                break
            time.sleep(0.05)
        if doc["status"] != "done":
            return {"ok": False, "status": 202, "post_s": post_s, "error": f"job failed: {doc['reason']}"}
        image = client.get(doc["links"]["image"])
        ok = image.status_code == 200
        return {"ok": ok, "status": 202 if ok else image.status_code, "post_s": post_s,
                "e2e_s": time.perf_counter() - t0, "error": None if ok else image.text[:200]}
    except httpx.HTTPError as e:
        return {"ok": False, "status": None, "post_s": time.perf_counter() - t0,
                "error": f"{type(e).__name__}: {e}"}


class Load:
    """``clients`` threads posting scenes back to back (:func:`one`) until :meth:`stop`."""

    def __init__(self, clients: int, sender: str, resolution: list[int], form: dict[str, str]) -> None:
        self.sender, self.resolution, self.form = sender, resolution, form
        self.results: list[dict] = []
        self.warm: list[dict] = []
        self.memory: list[dict] = []
        self.elapsed = 0.0
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self.client_loop, args=(i,), daemon=True) for i in range(clients)]

    def client_loop(self, index: int) -> None:
        seed = 1000 * index
        with httpx.Client(timeout=120) as client:
            while not self.stop_event.is_set():
                row = one(client, self.sender, seed, self.resolution, self.form)
                seed += 1
                with self.lock:
                    self.results.append(row)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def end_warm_up(self) -> None:
        """Set the requests so far apart as the warm-up's."""
        with self.lock:
            self.warm = self.results[:]
            self.results.clear()

    def measure(self, duration: float, pids: dict[str, int]) -> None:
        """Keep the load for ``duration`` seconds, sampling each service's RSS every 10 s; then stop."""
        t_start = time.monotonic()
        while time.monotonic() - t_start < duration:
            time.sleep(min(10.0, max(0.0, duration - (time.monotonic() - t_start))))
            self.memory.append({"t_s": round(time.monotonic() - t_start, 1),
                                **{name: round(rss_mib(pid), 1) for name, pid in pids.items()}})
        self.stop_event.set()
        for t in self.threads:
            t.join(180)
        self.elapsed = time.monotonic() - t_start


def make_report(args: argparse.Namespace, argv: list[str] | None, resolution: list[int], load: Load,
                start_rss: dict[str, float], end_rss: dict[str, float], counts: dict) -> dict:
    """The results file: settings, requests, errors, throughput, latencies, memory drift."""
    results, warm, memory, elapsed = load.results, load.warm, load.memory, load.elapsed
    ok = [r for r in results if r["ok"]]
    errors = [r for r in results if not r["ok"]]
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python bench/soak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "cores": os.cpu_count(), "load_avg_1min_end": round(os.getloadavg()[0], 2)},
        "model": "tiny random-weight" if args.tiny else "shipped checkpoint",
        "resolution": resolution,
        "settings": {"clients": args.clients, "duration_s": args.duration, "sampler": args.sampler,
                     "steps": args.steps, "batch_size": args.batch_size, "threads": args.threads},
        "warm_up": {"seconds": args.warmup, "requests": len(warm), "errors": sum(not r["ok"] for r in warm)},
        "requests": len(results),
        "succeeded": len(ok),
        "errors": len(errors),
        "server_errors_5xx": sum(1 for r in errors if r["status"] is not None and r["status"] >= 500),
        "error_examples": [r["error"] for r in errors[:5]],
        "throughput_per_s": round(len(ok) / elapsed, 3),
        "post_latency_s": {"p50": percentile([r["post_s"] for r in ok], 0.5),
                           "p95": percentile([r["post_s"] for r in ok], 0.95)},
        "end_to_end_latency_s": {"p50": percentile([r["e2e_s"] for r in ok], 0.5),
                                 "p95": percentile([r["e2e_s"] for r in ok], 0.95),
                                 "mean": statistics.fmean(r["e2e_s"] for r in ok) if ok else None},
        "rss_mib": {"start": {k: round(v, 1) for k, v in start_rss.items()},
                    "end": {k: round(v, 1) for k, v in end_rss.items()},
                    "drift": {k: round(end_rss[k] - start_rss[k], 1) for k in start_rss},
                    "range_during": {k: [min(m[k] for m in memory), max(m[k] for m in memory)] for k in start_rss}
                    if memory else {}},
        "rss_samples": memory,
        "receiver_jobs_at_end": counts,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--duration", type=float, default=300.0, help="seconds of load after the warm-up")
    p.add_argument("--sampler", default="ddim")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=float, default=30.0, help="seconds of the same load before measuring")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tiny", action="store_true", help="a random-weight tiny model (plumbing only)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "soak.json")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = tiny_checkpoint(tmp / "tiny", (32, 64)) if args.tiny else None
        stack = Stack(checkpoint, args.batch_size, tmp, segmenter=False, threads=args.threads)
        pids = {s.name: s.process.pid for s in stack.services}
        resolution = httpx.get(stack.sender + "/healthz").json()["resolution"]
        form = {"sampler": args.sampler, "steps": str(args.steps), "psnr_db": "10"}
        load = Load(args.clients, stack.sender, resolution, form)
        # warm-up: the same load for --warmup seconds (model loaded, allocator pools at the
        # batch sizes the load produces), its requests counted apart
        load.start()
        time.sleep(args.warmup)
        load.end_warm_up()
        start_rss = {name: rss_mib(pid) for name, pid in pids.items()}
        load.measure(args.duration, pids)
        end_rss = {name: rss_mib(pid) for name, pid in pids.items()}
        counts = httpx.get(stack.receiver + "/healthz").json()["jobs"]
        stack.stop()

    report = make_report(args, argv, resolution, load, start_rss, end_rss, counts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "rss_samples"}, indent=2))
    return 0 if not report["errors"] else 1

if __name__ == "__main__":
    sys.exit(main())
