"""A long schemathesis run against both OpenAPI schemas of live services.

Starts the three services (``bench_services.Stack``, as ``gesco up``; a tiny random-weight
model by default, since fuzzing tests the plumbing, or ``--shipped``), then runs
:func:`gesco_net.api_fuzz.fuzz_openapi` on the sender and on the receiver with
``--examples`` examples per operation and generation mode (positive and negative),
seeded. The positive cases of ``POST /transmit`` carry a real scene (image, label and
instance map) in the file fields they generate, so the generated parameters run through
the channel and the receiver. The sender has its shipped segmenter (an upload without a
label map is segmented), so no reply has a reason to be a 5xx: a 5xx reply or a broken
connection is a failure, except the documented 503 of a channel model whose optional
extra is not installed (counted apart as ``accepted_5xx``).

    python bench/fuzz_services.py --examples 500

Results: ``bench/results/fuzz_services.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import httpx
from bench_services import Stack, scene, tiny_checkpoint

from gesco_net.api_fuzz import fuzz_openapi


def missing_optional_extra(status: int, body: str) -> bool:
    """The documented 503 of a channel model whose optional extra is not installed (e.g. 'tdl' without Sionna)."""
    return status == 503 and "the channel cannot serve this request" in body and "pip install" in body


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=500, help="examples per operation and mode")
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--shipped", action="store_true", help="the shipped checkpoint instead of a tiny one")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fuzz_services.json")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = None if args.shipped else tiny_checkpoint(tmp / "tiny", (32, 64))
        stack = Stack(checkpoint, 4, tmp, segmenter=True, threads=1)  # the shipped segmenter
        try:
            t0 = time.monotonic()
            runs = {}
            resolution = httpx.get(stack.sender + "/healthz").json()["resolution"]
            files = scene(7, *resolution)
            for name, url in (("sender", stack.sender), ("receiver", stack.receiver)):
                r = fuzz_openapi(url, max_examples=args.examples, seed=args.seed,
                                 files=files if name == "sender" else None, accept=missing_optional_extra)
                runs[name] = {"requests": r.total, "by_operation": dict(r.cases),
                              "statuses": {str(k): v for k, v in sorted(r.statuses.items())},
                              "accepted_5xx": {str(k): v for k, v in r.accepted_5xx.items()},
                              "examples": {str(k): v for k, v in sorted(r.examples.items())},
                              "failures": len(r.failures), "failure_examples": r.failures[:10],
                              "no_cases": r.no_cases}
            elapsed = time.monotonic() - t0
            alive = all(s.process.poll() is None for s in stack.services)
        finally:
            stack.stop()
    report = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": "python bench/fuzz_services.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "examples_per_operation_and_mode": args.examples, "seed": args.seed, "elapsed_s": round(elapsed, 1),
              "services_alive_after": alive, **runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if alive and not any(run["failures"] for run in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
