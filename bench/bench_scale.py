"""Benchmark of scaling out the receiver (issue 23): workers on one Postgres store, and what Postgres costs.

1. **throughput**: ``K`` = 1 and 2 ``receiver-worker`` processes (``python -m receiver --role
   worker``, one torch thread each, ``OMP_NUM_THREADS=1``) on one Postgres store drain the
   same burst of ``--jobs`` real jobs (the shipped model, its default sampler; frames made by
   the real sender and channel code, stored by the real ingest). The clock runs from the
   first job stored to the last one done (workers are started and have loaded their model
   before). Rounds alternate 1, 2, 1, 2, ... so both share the machine's load; the ratio
   of the median jobs/s is the speed-up. Each worker's CPU seconds are read from /proc.
2. **latency**: one transmission at a time through the whole stack (``gesco up`` as
   processes: sender, channel, receiver) with the SQLite store and with the Postgres
   store, interleaved; median end-to-end wall time (POST to result done, polled every 20
   ms) and the stages where the store is on the path (the channel's round trip includes
   the receiver's durable store, the queue wait includes the claim).
3. **store operations**: add + claim + finish of one job, per backend, in one process.

The Postgres server is a throw-away one in a temporary folder (tests/services/pg_helpers.py).

    OMP_NUM_THREADS=1 python bench/bench_scale.py                 # -> bench/results/scale.json
    python bench/bench_scale.py --jobs 16 --rounds 1 --repeats 3  # quicker

Results: ``bench/results/scale.json`` and a summary on stdout.
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
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests" / "services")]

import bench_services
from pg_helpers import PostgresServer, find_bin

from gesco_net.probes import wait_until


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_frames(n: int, generator) -> list:
    """``n`` received frames of synthetic scenes at the model's resolution (sender + channel code)."""
    from gesco.data.synthetic import generate_scene
    from gesco.link import TransmitSettings, apply_channel, encode_image_frame

    h, w = generator.resolution
    frames = []
    for i in range(n):
        s = generate_scene(5000 + i, 2 * h, 2 * w)
        frame, _ = encode_image_frame(s.image, s.label, s.instance, space=generator.space, resolution=(h, w),
                                      frame_id=f"scale-{i:04d}", transmit=TransmitSettings(seed=i, psnr_db=10.0))
        frames.append(apply_channel(frame))
    return frames


def start_workers(k: int, url: str, data: Path, tmp: Path, batch: int) -> list[subprocess.Popen]:
    procs = []
    for i in range(k):
        log = tmp / f"worker-{len(list(tmp.glob('worker-*.log')))}.log"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
               "GESCO_RECEIVER_ROLE": "worker", "GESCO_RECEIVER_STORE": url, "GESCO_RECEIVER_DATA_DIR": str(data),
               "GESCO_RECEIVER_DEVICE": "cpu", "GESCO_RECEIVER_TORCH_THREADS": "1",
               "GESCO_RECEIVER_MAX_BATCH": str(batch), "GESCO_RECEIVER_WORKER_NAME": f"w{i}",
               "GESCO_RECEIVER_FSYNC": "true", "GESCO_RECEIVER_LOG_LEVEL": "INFO"}
        p = subprocess.Popen([sys.executable, "-m", "receiver"], env=env, cwd=REPO,
                             stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        wait_until(lambda log=log: f"receiver-worker w{i}:" in log.read_text(), timeout=300, what=f"worker w{i}",
                   alive=lambda p=p: p.poll() is None)
        procs.append(p)
    return procs


def throughput_round(k: int, pg: PostgresServer, generator, frames: list, tmp: Path, batch: int) -> dict:
    """One burst of ``len(frames)`` jobs drained by ``k`` worker processes."""
    from gesco.link import budget_record
    from receiver.ingest import Ingest, batch_key
    from receiver.stores import open_store

    url = pg.database()
    data = tmp / f"data-{k}-{time.time_ns()}"
    store = open_store(url, data, fsync=True)
    ingest = Ingest(store, generator)
    procs = start_workers(k, url, data, tmp, batch)
    try:
        cpu0 = [cpu_seconds(p.pid) for p in procs]
        t0 = time.perf_counter()
        for rx in frames:
            settings = ingest.check(rx)
            store.add(rx.header.id, rx.SerializeToString(deterministic=True), settings.to_dict(),
                      budget_record(rx.header, rx.report), batch_key(settings), model=ingest.model)
        stored_s = time.perf_counter() - t0
        while store.counts()["done"] + store.counts()["failed"] < len(frames):
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        cpu = [cpu_seconds(p.pid) - c for p, c in zip(procs, cpu0)]
        counts = store.counts()
        jobs = store.recent(len(frames))
        per_worker = {w: sum(1 for j in jobs if j.worker == w) for w in sorted({j.worker for j in jobs})}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
        store.close()
    if counts["failed"]:
        raise RuntimeError(f"{counts['failed']} jobs failed")
    return {"workers": k, "jobs": len(frames), "wall_s": round(wall, 3), "jobs_per_s": round(len(frames) / wall, 4),
            "store_all_s": round(stored_s, 3), "worker_cpu_s": [round(c, 2) for c in cpu],
            "jobs_per_worker": per_worker, "load_avg_1m_after": os.getloadavg()[0]}


def store_ops(pg: PostgresServer, tmp: Path, n: int) -> dict:
    """Median seconds of add / claim / finish of one job on each backend (fsync on, as served)."""
    from receiver.stores import open_store

    out = {}
    for name, url in (("sqlite", ""), ("postgres", pg.database())):
        store = open_store(url, tmp / f"ops-{name}", fsync=True)
        times: dict[str, list[float]] = {"add_s": [], "claim_s": [], "finish_s": []}
        for i in range(n):
            t0 = time.perf_counter()
            store.add(f"op{i}", b"x" * 2000, {"steps": 8}, {"total_bits": 1}, "k", model="m")
            t1 = time.perf_counter()
            [job] = store.claim_batch(1, worker="w", model="m")
            t2 = time.perf_counter()
            store.mark_done(job.id, {}, claim=job.claim)
            t3 = time.perf_counter()
            for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
                times[key].append(dt)
        store.close()
        out[name] = {k: round(statistics.median(v) * 1000, 3) for k, v in times.items()}
        out[name]["unit"] = "ms (median)"
    return out


def latency(pg: PostgresServer, tmp: Path, repeats: int, batch: int) -> dict:
    """One transmission at a time through gesco up with each store, interleaved."""
    import httpx

    stacks = {}
    try:
        for name, extra in (("sqlite", ()), ("postgres", ("--store", pg.database()))):
            data = tmp / f"stack-{name}"
            data.mkdir()
            stacks[name] = bench_services.Stack(None, batch, data, segmenter=False, threads=1, extra_args=extra)
        resolution = (64, 128)
        files = [bench_services.scene(7000 + i, 2 * resolution[0], 2 * resolution[1]) for i in range(repeats + 1)]
        rows: dict[str, list[dict]] = {n: [] for n in stacks}
        with httpx.Client(timeout=600) as client:
            for stack in stacks.values():
                bench_services.transmit(client, stack, files[0])  # warm-up
            for f in files[1:]:
                for name, stack in stacks.items():
                    rows[name].append(bench_services.transmit(client, stack, f))
    finally:
        for s in stacks.values():
            s.stop()
    keys = ("wall_s", "channel_s", "queue_wait_s", "fds_s", "sampling_s", "png_s")
    med = {n: {k: round(statistics.median(r[k] for r in rs), 4) for k in keys} for n, rs in rows.items()}
    added = {k: round(med["postgres"][k] - med["sqlite"][k], 4) for k in keys}
    return {"repeats": repeats, "median_s": med, "postgres_minus_sqlite_s": added, "runs": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=24, help="jobs per throughput burst")
    p.add_argument("--rounds", type=int, default=2, help="rounds of (1 worker, 2 workers)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--repeats", type=int, default=8, help="transmissions per store in the latency part")
    p.add_argument("--ops", type=int, default=200, help="jobs in the store-operation part")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "scale.json"))
    args = p.parse_args(argv)
    bin_dir = find_bin()
    if bin_dir is None:
        raise SystemExit("Postgres binaries (initdb, pg_ctl) not found; install postgresql or set GESCO_PG_BIN")
    import torch

    torch.set_num_threads(1)
    from receiver.generation import load_generator

    generator = load_generator(None, "cpu")
    frames = make_frames(args.jobs, generator)
    pg = PostgresServer(bin_dir, fsync=True)  # durable commits, as SQLite's synchronous=FULL
    result: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "load_avg_1m_at_start": os.getloadavg()[0],
                    "note": "a 2-core machine shared with other engineers' jobs: the load average says how busy"},
        "model": "the shipped default receiver checkpoint, its default sampler and steps, 64x128",
        "postgres": "throw-away Postgres 15 on a unix socket, fsync on (tests/services/pg_helpers.py)",
    }
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            rounds = []
            for _ in range(args.rounds):
                for k in (1, 2):
                    r = throughput_round(k, pg, generator, frames, tmp, args.batch_size)
                    print(f"{k} worker(s): {r['jobs_per_s']:.3f} jobs/s ({r['wall_s']:.1f} s, load {r['load_avg_1m_after']:.1f})",
                          flush=True)
                    rounds.append(r)
            med = {k: statistics.median(r["jobs_per_s"] for r in rounds if r["workers"] == k) for k in (1, 2)}
            result["throughput"] = {"jobs": args.jobs, "batch_size": args.batch_size, "rounds": rounds,
                                    "median_jobs_per_s": med, "speedup_2_over_1": round(med[2] / med[1], 3)}
            print(f"speed-up 2 workers / 1 worker: {med[2] / med[1]:.2f}x", flush=True)
            result["store_ops"] = store_ops(pg, tmp, args.ops)
            print("store operations:", json.dumps(result["store_ops"]), flush=True)
            if not args.skip_latency:
                result["latency"] = latency(pg, tmp, args.repeats, args.batch_size)
                print("latency medians:", json.dumps(result["latency"]["median_s"]), flush=True)
                print("postgres - sqlite:", json.dumps(result["latency"]["postgres_minus_sqlite_s"]), flush=True)
    finally:
        pg.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
