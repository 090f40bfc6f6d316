"""The compose stack for real: build (or reuse) the image, ``up``, send a scene, ``down``.

What a newcomer does with ``docker compose up`` (or Debian's ``docker-compose``), checked
and timed on a real Docker engine:

1. ``build`` (with ``--build``; otherwise the image named by ``--image`` must exist);
2. ``up -d`` of ``docker-compose.yml`` under its own project name (``-p``), the host ports
   as variables (``GESCO_SENDER_PORT``, ``GESCO_RECEIVER_PORT``, free ports here);
3. wait until postgres and the three services are ``healthy`` (their compose health checks)
   and the receiver-worker is running;
4. ``GET /`` of the sender and the receiver (a redirect to ``/docs`` and ``/viewer``);
5. ``POST /transmit`` of ``examples/street_scene.png`` with its label map at PSNR 10 dB,
   poll the result until ``done``, fetch the generated PNG (must be the model's 64x128);
6. the bit-budget log line in the volume (``/data/logs/budget.jsonl`` via the channel);
7. ``down -v`` (always, also after a failure).

It is not a pytest test: it needs a Docker engine, which the CI machine does not have (no
Docker Hub there either). On this project's machines the engine and local stand-ins for
the base images come from ``/work/shared/tools/local-docker/setup.sh --torch 2.13.0``;
other engineers share the engine, so run it under the lock:

    flock /work/docker.lock python bench/compose_smoke.py --build \\
        --build-arg TORCH_INDEX=http://127.0.0.1:8765/simple

Results: ``bench/results/compose.json`` (each step's seconds, the checks, versions); the
exit status is 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "examples" / "street_scene.png"
LABELS = REPO / "examples" / "street_scene_labels.png"
#: services with a health check (the receiver-workers have none: they must be running)
SERVICES = ("postgres", "receiver", "channel", "sender")
WORKERS = "receiver-worker"
#: the model's H x W (the shipped checkpoints)
RESOLUTION = (64, 128)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compose_command() -> list[str]:
    """``docker compose`` (v2) where it exists, else Debian's ``docker-compose`` (v1)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise SystemExit("neither `docker compose` nor `docker-compose` is installed")


def run(args: list[str], env: dict[str, str], timeout: float, log: list[str]) -> tuple[float, str]:
    """Run a command, return (seconds, output); raise with its output when it fails."""
    t0 = time.perf_counter()
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    output = done.stdout + done.stderr
    log.append(f"$ {' '.join(args)}  ({seconds:.1f} s, exit {done.returncode})\n{output[-4000:]}")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (exit {done.returncode}):\n{output[-3000:]}")
    return seconds, output


def health(project: str) -> dict[str, str]:
    """service -> health status of the project's containers (``docker inspect``)."""
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
                          "--format", "{{.Label \"com.docker.compose.service\"}} {{.ID}}"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    status = {}
    for line in filter(None, out):
        service, cid = line.split()
        fmt = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"  # no check: running
        status[service] = subprocess.run(["docker", "inspect", "--format", fmt, cid],
                                         capture_output=True, text=True).stdout.strip() or "unknown"
    return status


def png_size(data: bytes) -> tuple[int, int]:
    """(H, W) from a PNG header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")


def build_image(args: argparse.Namespace, env: dict[str, str], log: list[str], result: dict[str, object]) -> float:
    """``docker build`` of the repository as ``args.image``; returns its seconds (the context size in ``result``)."""
    build_args = [a for b in args.build_arg for a in ("--build-arg", b)]
    seconds, out = run(["docker", "build", "--network", "host", *build_args, "-t", args.image, "."], env, 1800, log)
    sent = re.search(r"Sending build context to Docker daemon\s+([\d.]+\s*\w+)", out)
    if sent:
        result["build_context"] = sent.group(1)
    return seconds


def wait_healthy(project: str, timeout: float) -> float:
    """Seconds until postgres and the services are healthy and the worker runs (raises on unhealthy / timeout)."""
    t0 = time.perf_counter()
    while True:
        status = health(project)
        if all(status.get(s) == "healthy" for s in SERVICES) and status.get(WORKERS) == "running":
            return time.perf_counter() - t0
        if any(s == "unhealthy" for s in status.values()) or time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"not healthy after {time.perf_counter() - t0:.0f} s: {status}")
        time.sleep(1)


def one_transmission(client: httpx.Client, sender: str, steps: dict[str, float], checks: dict[str, object]) -> dict:
    """POST the example scene at 10 dB, poll its result until done, fetch the image; fills
    ``steps`` (seconds) and ``checks``; returns the sender's 202 reply."""
    t0 = time.perf_counter()
    r = client.post(sender + "/transmit", data={"psnr_db": "10"},
                    files={"image": (SCENE.name, SCENE.read_bytes()), "label": (LABELS.name, LABELS.read_bytes())})
    steps["transmit_post_s"] = time.perf_counter() - t0
    if r.status_code != 202:
        raise RuntimeError(f"POST /transmit: {r.status_code} {r.text[:500]}")
    accepted = r.json()
    checks["result_url"] = accepted["result_url"]
    while True:
        doc = client.get(accepted["result_url"]).json()
        if doc["status"] in ("done", "failed"):
            break
        if time.perf_counter() - t0 > 600:
            raise RuntimeError(f"result still {doc['status']} after 600 s")
        time.sleep(0.2)
    steps["transmit_to_done_s"] = time.perf_counter() - t0
    checks["status"] = doc["status"]
    if doc["status"] != "done":
        raise RuntimeError(f"the job failed: {doc.get('reason')}")
    image_png = client.get(doc["links"]["image"])
    checks["image_hw"] = list(png_size(image_png.content))
    checks["total_bits"] = doc["budget"]["total_bits"]
    checks["receiver_total_s"] = doc["timings"]["total_s"]
    return accepted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="gesco-compose-smoke:latest", help="image tag the stack runs (GESCO_IMAGE)")
    ap.add_argument("--build", action="store_true", help="build the image first (docker build, context = repository)")
    ap.add_argument("--build-arg", action="append", default=[], help="passed to docker build (repeatable)")
    ap.add_argument("--project", default="gesco-smoke", help="compose project name (-p)")
    ap.add_argument("--healthy-timeout", type=float, default=240.0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "compose.json"))
    args = ap.parse_args()

    compose = compose_command() + ["-p", args.project, "-f", str(REPO / "docker-compose.yml")]
    sender_port, receiver_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GESCO_")}
    env.update(GESCO_IMAGE=args.image, GESCO_SENDER_PORT=str(sender_port), GESCO_RECEIVER_PORT=str(receiver_port),
               GESCO_RECEIVER_URL=f"http://localhost:{receiver_port}")
    sender, receiver = f"http://127.0.0.1:{sender_port}", f"http://127.0.0.1:{receiver_port}"
    log: list[str] = []
    steps: dict[str, float] = {}
    checks: dict[str, object] = {}
    result: dict[str, object] = {
        "what": "docker-compose.yml for real: up, health, GET /, one transmission, down -v",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()}: {os.cpu_count()} CPUs, {platform.platform()}",
        "compose": " ".join(compose_command()), "image": args.image, "project": args.project,
        "ports": {"sender": sender_port, "receiver": receiver_port},
    }
    failure = None
    try:
        result["docker_version"] = run(["docker", "version", "--format", "{{.Server.Version}}"], env, 60, log)[1].strip()
        result["compose_version"] = run(compose_command() + ["version"], env, 60, log)[1].strip().splitlines()[0]
        if args.build:
            steps["build_s"] = build_image(args, env, log, result)
        image = json.loads(run(["docker", "image", "inspect", args.image], env, 60, log)[1])[0]
        result["image_size_mb"] = round(image["Size"] / 1e6)
        steps["up_s"], _ = run(compose + ["up", "-d", "--no-build"], env, 600, log)
        steps["healthy_after_up_s"] = wait_healthy(args.project, args.healthy_timeout)
        with httpx.Client(timeout=60) as client:
            home = {name: client.get(url + "/", follow_redirects=False) for name, url in (("sender", sender),
                                                                                         ("receiver", receiver))}
            checks["sender_root"] = f"{home['sender'].status_code} -> {home['sender'].headers.get('location')}"
            checks["receiver_root"] = f"{home['receiver'].status_code} -> {home['receiver'].headers.get('location')}"
            accepted = one_transmission(client, sender, steps, checks)
            checks["viewer_page"] = client.get(receiver + "/viewer").status_code
        _, logged = run(compose + ["exec", "-T", "channel", "tail", "-n", "1", "/data/logs/budget.jsonl"], env, 60, log)
        checks["budget_log_has_job"] = json.loads(logged.strip().splitlines()[-1])["id"] == accepted["id"]
        expected = {"sender_root": "307 -> /docs", "receiver_root": "307 -> /viewer", "status": "done",
                    "image_hw": list(RESOLUTION), "viewer_page": 200, "budget_log_has_job": True}
        wrong = {k: (checks.get(k), v) for k, v in expected.items() if checks.get(k) != v}
        if wrong:
            failure = f"checks that failed (got, expected): {wrong}"
    except Exception as e:  # recorded and reported; the stack still goes down below
        failure = f"{type(e).__name__}: {e}"
    finally:
        try:
            steps["down_s"], _ = run(compose + ["down", "-v"], env, 300, log)
        except Exception as e:
            failure = failure or f"down failed: {e}"
    result["steps_s"] = {k: round(v, 2) for k, v in steps.items()}
    result["checks"] = checks
    result["ok"] = failure is None
    result["failure"] = failure
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if failure:
        print("\n".join(log[-6:]), file=sys.stderr)
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
