"""Access-control figures against the real services (processes, as ``gesco up`` starts them).

1. **flood**: one client POSTs ``--flood`` full uploads to ``/transmit`` back to back at
   the default rate limit (10 per second, bursts of 20): how many are accepted (202) and
   how many refused (429), at what request rate, and whether any answer is a 5xx;
2. **keys**: ``--repeats`` sequential transmissions with API keys off and on (the same
   upload): the median POST wall time, i.e. what checking a bearer key costs;
3. **isolation**: with keys on, a second key reading the first key's result (must be 403)
   and no key at all (must be 401).

A random-weight tiny model serves (plumbing only: these figures are about HTTP, not
images). Results: ``bench/results/access.json`` and a summary on stdout.

    python bench/bench_access.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_services import Stack, scene, tiny_checkpoint

KEY_A, KEY_B = "bench-key-a-0123456789abcdef", "bench-key-b-0123456789abcdef"
RESOLUTION = (32, 64)


def post(client: httpx.Client, url: str, files: dict[str, bytes], key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post(url + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()},
                       data={"steps": "2"}, headers=headers)


def flood(stack: Stack, files: dict[str, bytes], n: int) -> dict:
    with httpx.Client(timeout=60) as c:
        t0 = time.perf_counter()
        codes = [post(c, stack.sender, files).status_code for _ in range(n)]
        elapsed = time.perf_counter() - t0
    counts = Counter(codes)
    return {"requests": n, "seconds": round(elapsed, 3), "requests_per_s": round(n / elapsed, 1),
            "status_counts": {str(k): v for k, v in sorted(counts.items())},
            "5xx": sum(v for k, v in counts.items() if k >= 500)}


def latency(stack: Stack, files: dict[str, bytes], repeats: int, key: str | None) -> dict:
    times = []
    with httpx.Client(timeout=60) as c:
        for _ in range(repeats):
            t0 = time.perf_counter()
            r = post(c, stack.sender, files, key)
            times.append(time.perf_counter() - t0)
            assert r.status_code == 202, r.text
            time.sleep(0.15)  # stay under the rate limit: this measures the key check, not 429s
    return {"repeats": repeats, "median_post_s": round(statistics.median(times), 4),
            "p90_post_s": round(sorted(times)[int(0.9 * (len(times) - 1))], 4)}


def isolation(stack: Stack, files: dict[str, bytes]) -> dict:
    with httpx.Client(timeout=60) as c:
        r = post(c, stack.sender, files, KEY_A)
        url = r.json()["result_url"]
        return {"owner": c.get(url, headers={"Authorization": f"Bearer {KEY_A}"}).status_code,
                "other_key": c.get(url, headers={"Authorization": f"Bearer {KEY_B}"}).status_code,
                "no_key": c.get(url).status_code,
                "no_key_on_sender": post(c, stack.sender, files).status_code}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flood", type=int, default=200)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "access.json"))
    args = p.parse_args()
    files = scene(3, 48, 96)
    out: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
                 "when": datetime.now(UTC).isoformat(timespec="seconds"), "model": "tiny random weights"}
    from sender.settings import SenderSettings

    defaults = SenderSettings.model_fields
    # the sender's default limit (bench_services.Stack turns it off unless the environment sets it)
    os.environ["GESCO_SENDER_RATE_LIMIT_PER_S"] = str(defaults["rate_limit_per_s"].default)
    os.environ["GESCO_SENDER_RATE_LIMIT_BURST"] = str(defaults["rate_limit_burst"].default)
    out["rate_limit"] = {"per_s": defaults["rate_limit_per_s"].default, "burst": defaults["rate_limit_burst"].default}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = tiny_checkpoint(Path(tmp), RESOLUTION)
        stack = Stack(ckpt, 4, Path(tmp) / "open", segmenter=False, threads=1)
        try:
            out["flood_default_limit"] = flood(stack, files, args.flood)
            time.sleep(3)  # refill
            out["keys_off"] = latency(stack, files, args.repeats, None)
        finally:
            stack.stop()
        os.environ["GESCO_SENDER_API_KEYS"] = os.environ["GESCO_RECEIVER_API_KEYS"] = f"{KEY_A},{KEY_B}"
        try:
            stack = Stack(ckpt, 4, Path(tmp) / "keys", segmenter=False, threads=1)
            try:
                out["keys_on"] = latency(stack, files, args.repeats, KEY_A)
                out["isolation"] = isolation(stack, files)
            finally:
                stack.stop()
        finally:
            del os.environ["GESCO_SENDER_API_KEYS"], os.environ["GESCO_RECEIVER_API_KEYS"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
