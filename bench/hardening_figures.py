"""Issue 25's attacks replayed against live services, plus a long run of the oversized-field fuzz.

Starts the three services as processes, as ``gesco up`` does with its defaults (no keys, no
TLS; ``bench_services.Stack``, a tiny random-weight model at 32 x 64: the attacks do not
depend on the model), and for each attack of the issue records the inputs tried, the
replies (gRPC codes / HTTP statuses, 5xx counted apart), and the target process's resident
memory before and after (VmRSS) and its peak growth during the attack (VmHWM after a reset,
minus VmRSS before):

1. ``SemanticFrame.upload`` fields carrying 60 MB (notes, source_box, content_box) and 5 MB
   (under the channel's message limit), to the channel; then the receiver's job list;
2. a 10 M-entry and a 100 000-entry ``symbols_shape``, to the receiver (longest status detail,
   longest line in the services' log);
3. 300 000 ``channel_params``, to the channel;
4. a 10 KB sampler name, 7 times, to the channel;
5. ``POST /viewer/label.png`` from 4 clients (2048 x 4096 random label maps) while ``/healthz``
   is polled (median / max latency, against the same poll without uploads);
6. 16 concurrent 60 MB frames, to the channel;
7. a valid frame with a 60 MB and with a 64 KiB unknown field, to the channel (budget log lines);
8. 3 000 requests with made-up HTTP method names, to the sender (``/metrics`` size before / after);
9. 200 connections that send half a request line and headers, to the sender (open after 15 s);
10. the fuzz of ``tests/services/test_fuzz_bounds.py``, ``--examples`` oversized frames per hop;

and last, one valid upload end to end (jobs lost = not ``done``).

    python bench/hardening_figures.py --examples 1000

Results: ``bench/results/hardening_figures.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from attack_figures import reset_peak, status
from bench_services import Stack, scene, tiny_checkpoint
from machine_info import describe_machine

from gesco.uploads import encode_png
from gesco.wire import DeliverAck, ReceivedFrame, SemanticFrame, TransmitAck
from gesco.wire.bounds import message_bounds
from gesco_net.frame_fuzz import apply_oversize, oversize_targets

TRANSMIT, DELIVER = "/gesco.v1.Channel/Transmit", "/gesco.v1.Receiver/Deliver"


def memory(pid: int, action) -> dict:
    """Run ``action``; RSS before / after and peak growth of process ``pid`` (MiB)."""
    reset_peak(pid)
    before = status(pid, "VmRSS")
    t0 = time.perf_counter()
    outcome = action()
    return {"outcome": outcome, "seconds": round(time.perf_counter() - t0, 2), "rss_before_mib": round(before, 1),
            "rss_after_mib": round(status(pid, "VmRSS"), 1), "peak_growth_mib": round(status(pid, "VmHWM") - before, 1)}


def rpc(address: str, method: str, message, reply) -> tuple[str, int]:
    """``(code name, length of the status detail)`` of one call."""
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 256 << 20)]) as ch:
        call = ch.unary_unary(method, request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
                              response_deserializer=reply.FromString)
        try:
            call(message, timeout=120)
            return "OK", 0
        except grpc.RpcError as e:
            return e.code().name, len(e.details() or "")


def tally(results: list[tuple[str, int]]) -> dict:
    codes: dict[str, int] = {}
    for code, _ in results:
        codes[code] = codes.get(code, 0) + 1
    return {"inputs": len(results), "codes": codes, "longest_detail_chars": max((n for _, n in results), default=0)}


def valid_frame(stack: Stack, frame_id: str) -> SemanticFrame:
    from gesco.data.synthetic import generate_scene
    from gesco.link import TransmitSettings, encode_image_frame
    from gesco.semantics.classes import get_class_space

    res = tuple(httpx.get(stack.sender + "/healthz").json()["resolution"])
    s = generate_scene(3, *res)
    frame, _ = encode_image_frame(s.image, s.label, s.instance, space=get_class_space("cityscapes"), resolution=res,
                                  frame_id=frame_id, transmit=TransmitSettings(steps=2))
    return frame


@dataclass
class Attacks:
    """What the attacks need of the running stack: its addresses, two valid frames to start from."""

    stack: Stack
    channel: str  # the channel's gRPC address
    receiver: str  # the receiver's gRPC address
    base: SemanticFrame  # a valid frame, as the sender sends it
    rx_base: ReceivedFrame  # the same after the channel, as the receiver gets it
    budget_log: Path
    examples: int  # fuzzed frames per hop


def upload_fields(ctx: Attacks) -> dict:
    """Attack 1: ``SemanticFrame.upload`` fields of 60 MB and 5 MB, to the channel."""
    results = []
    for size_mb in (60, 5):
        for name in ("notes", "source_box", "content_box"):
            f = SemanticFrame()
            f.CopyFrom(ctx.base)
            f.id = f"fat-{name.replace('_', '-')}-{size_mb}"
            if name == "notes":
                f.upload.notes.extend(["n" * 1000] * (size_mb * 1000))
            else:
                getattr(f.upload, name).extend([2**31] * (size_mb * 200_000))  # 5 bytes each
            results.append(rpc(ctx.channel, TRANSMIT, f, TransmitAck))
    return tally(results)


def long_shape(ctx: Attacks) -> dict:
    """Attack 2: a 10 M-entry and a 100 000-entry ``symbols_shape``, to the receiver."""
    results = []
    for n in (10_000_000, 100_000):
        rx = ReceivedFrame()
        rx.CopyFrom(ctx.rx_base)
        rx.header.id = f"rx-shape-{n}"
        rx.symbols_shape.extend([1] * n)
        results.append(rpc(ctx.receiver, DELIVER, rx, DeliverAck))
    return tally(results)


def many_params(ctx: Attacks) -> dict:
    """Attack 3: 300 000 ``channel_params``, to the channel."""
    f = SemanticFrame()
    f.CopyFrom(ctx.base)
    f.id = "many-params"
    f.transmit.channel_params.update({f"k{i}": "1" for i in range(300_000)})
    return tally([rpc(ctx.channel, TRANSMIT, f, TransmitAck)])


def long_sampler(ctx: Attacks) -> dict:
    """Attack 4: a 10 KB sampler name, 7 times, to the channel."""
    results = []
    for i in range(7):
        f = SemanticFrame()
        f.CopyFrom(ctx.base)
        f.id = f"long-sampler-{i}"
        f.transmit.sampler = "s" * 10_000
        results.append(rpc(ctx.channel, TRANSMIT, f, TransmitAck))
    return tally(results)


def healthz_latencies(ctx: Attacks, seconds: float) -> list[float]:
    """Seconds of each ``/healthz`` poll of the receiver (every 0.1 s for ``seconds``)."""
    lat = []
    end = time.monotonic() + seconds
    with httpx.Client() as c:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            c.get(ctx.stack.receiver + "/healthz", timeout=60)
            lat.append(time.perf_counter() - t0)
            time.sleep(0.1)
    return lat


def label_uploads(ctx: Attacks) -> dict:
    """Attack 5: ``POST /viewer/label.png`` from 4 clients while ``/healthz`` is polled."""
    rng = np.random.default_rng(0)
    label = encode_png(rng.integers(0, 35, (2048, 4096), dtype=np.uint8))
    stop, codes = threading.Event(), []

    def client():
        with httpx.Client() as c:
            while not stop.is_set():
                codes.append(c.post(ctx.stack.receiver + "/viewer/label.png",
                                    files={"label": ("l.png", label)}, timeout=120).status_code)

    quiet = healthz_latencies(ctx, 3)
    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    busy = healthz_latencies(ctx, 8)
    stop.set()
    for t in threads:
        t.join()
    return {"uploads": len(codes), "statuses": {str(s): codes.count(s) for s in set(codes)},
            "label_png_bytes": len(label),
            "healthz_quiet_ms": {"median": round(1000 * statistics.median(quiet), 1),
                                 "max": round(1000 * max(quiet), 1)},
            "healthz_with_4_uploaders_ms": {"median": round(1000 * statistics.median(busy), 1),
                                            "max": round(1000 * max(busy), 1), "polls": len(busy)}}


def concurrent_60mb(ctx: Attacks) -> dict:
    """Attack 6: 16 concurrent 60 MB frames, to the channel."""
    f = SemanticFrame()
    f.CopyFrom(ctx.base)
    f.upload.notes.extend(["n" * 1000] * 60_000)
    data = f.SerializeToString()
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(rpc(ctx.channel, TRANSMIT, data, TransmitAck)))
               for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally(results)


def unknown_fields(ctx: Attacks) -> dict:
    """Attack 7: a valid frame with a 60 MB and a 64 KiB unknown field, to the channel."""
    lines_before = len(ctx.budget_log.read_text().splitlines()) if ctx.budget_log.exists() else 0
    results = []
    for n, fid in ((60 << 20, "unknown-60mb"), (64 << 10, "unknown-64kib")):
        f = SemanticFrame()
        f.CopyFrom(ctx.base)
        f.id = fid
        length = n
        varint = bytearray()
        while True:
            byte, length = length & 0x7F, length >> 7
            varint.append(byte | (0x80 if length else 0))
            if not length:
                break
        results.append(rpc(ctx.channel, TRANSMIT, f.SerializeToString() + b"\xfa\x3f" + bytes(varint)
                           + b"\x00" * n, TransmitAck))
    lines = ctx.budget_log.read_text().splitlines() if ctx.budget_log.exists() else []
    return {**tally(results), "budget_lines_added": len(lines) - lines_before}


def method_names(ctx: Attacks) -> dict:
    """Attack 8: 3 000 requests with made-up HTTP method names, to the sender."""
    with httpx.Client() as c:
        size_before = len(c.get(ctx.stack.sender + "/metrics").content)
        statuses = [c.request(f"M{i:04d}X", ctx.stack.sender + "/healthz").status_code for i in range(3000)]
        size_after = len(c.get(ctx.stack.sender + "/metrics").content)
    return {"inputs": len(statuses), "5xx": sum(s >= 500 for s in statuses),
            "metrics_bytes_before": size_before, "metrics_bytes_after": size_after}


def slow_connections(ctx: Attacks) -> dict:
    """Attack 9: 200 connections sending half a request, to the sender."""
    host, port = ctx.stack.sender.split("//")[1].split(":")
    socks = []
    for _ in range(200):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"POST /transmit HTTP/1.1\r\nhost: x\r\n")
        socks.append(s)
    time.sleep(15)
    still_open, got_408 = 0, 0
    for s in socks:
        s.settimeout(0.05)
        try:
            data = s.recv(4096)
            got_408 += data.startswith(b"HTTP/1.1 408")
        except TimeoutError:
            still_open += 1
        except OSError:
            pass
        s.close()
    return {"connections": len(socks), "open_after_15_s": still_open, "answered_408": got_408}


def fuzz(ctx: Attacks, address, method, reply, root, message, bounds, seed) -> dict:
    """Attack 10: ``examples`` frames with 1 to 3 oversized fields each, to one hop."""
    rng = random.Random(seed)
    targets = oversize_targets(root)
    results = []
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 256 << 20)]) as ch:
        call = ch.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=reply.FromString)
        for _ in range(ctx.examples):
            m = message
            for target in rng.sample(targets, rng.randint(1, 3)):
                m = apply_oversize(m, target, bounds, rng.choice([1, 7, 100, 1 << 12, 1 << 16, 1 << 20,
                                                                  8 << 20]))
            try:
                call(m, timeout=60)
                results.append(("OK", 0))
            except grpc.RpcError as e:
                results.append((e.code().name, len(e.details() or "")))
    return tally(results)


def valid_upload(stack: Stack) -> dict:
    """One valid upload end to end after the attacks: its HTTP status and the job's final status."""
    files = scene(5, 32, 64)
    r = httpx.post(stack.sender + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()},
                   data={"steps": "2"}, timeout=60)
    job = r.json()
    t0 = time.monotonic()
    doc = {"status": "?"}
    while time.monotonic() - t0 < 120:
        doc = httpx.get(f"{stack.receiver}/result/{job['id']}").json()
        if doc["status"] in ("done", "failed"):
            break
        time.sleep(0.2)
    return {"status_code": r.status_code, "job_status": doc["status"]}


def run_attacks(ctx: Attacks, pids: dict[str, int]) -> dict:
    """Every attack, each with the target process's memory (:func:`memory`), in the issue's order."""
    out: dict = {}
    out["1_upload_fields_to_channel"] = memory(pids["channel"], lambda: upload_fields(ctx))
    out["1_upload_fields_to_channel"]["receiver_jobs_after"] = len(
        httpx.get(ctx.stack.receiver + "/results").json()["results"])
    out["2_symbols_shape_to_receiver"] = memory(pids["receiver"], lambda: long_shape(ctx))
    out["3_channel_params_to_channel"] = memory(pids["channel"], lambda: many_params(ctx))
    out["4_long_sampler_to_channel"] = memory(pids["channel"], lambda: long_sampler(ctx))
    out["5_label_png_x4_vs_healthz"] = memory(pids["receiver"], lambda: label_uploads(ctx))
    out["6_16_concurrent_60MB_to_channel"] = memory(pids["channel"], lambda: concurrent_60mb(ctx))
    out["7_unknown_fields_to_channel"] = memory(pids["channel"], lambda: unknown_fields(ctx))
    out["8_method_names_to_sender"] = memory(pids["sender"], lambda: method_names(ctx))
    out["9_slow_connections_to_sender"] = memory(pids["sender"], lambda: slow_connections(ctx))
    ch_bounds = message_bounds(36 * 256 * 512)  # the channel's default element budget
    rx_bounds = message_bounds(36 * 32 * 64)  # the receiver's: (C + 1) x H x W of the tiny model
    out["10_fuzz_channel"] = memory(pids["channel"], lambda: fuzz(
        ctx, ctx.channel, TRANSMIT, TransmitAck, SemanticFrame.DESCRIPTOR, ctx.base, ch_bounds, 1))
    out["10_fuzz_receiver"] = memory(pids["receiver"], lambda: fuzz(
        ctx, ctx.receiver, DELIVER, DeliverAck, ReceivedFrame.DESCRIPTOR, ctx.rx_base, rx_bounds, 2))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=1000, help="fuzzed frames per hop (attack 10)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "hardening_figures.json")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # INFO: the refusals are logged, so the longest log line is measured
        stack = Stack(tiny_checkpoint(tmp / "tiny", (32, 64)), 4, tmp, segmenter=False, threads=1, log_level="INFO")
        pids = {s.name: s.process.pid for s in stack.services}
        try:
            from gesco.link import apply_channel

            rx_base = ReceivedFrame()
            base = valid_frame(stack, "base")
            rx_base.CopyFrom(apply_channel(valid_frame(stack, "rx-base")))
            ctx = Attacks(stack, f"127.0.0.1:{stack.args.channel_port}", f"127.0.0.1:{stack.args.receiver_grpc_port}",
                          base, rx_base, Path(stack.args.data_dir) / "budget.jsonl", args.examples)
            out = run_attacks(ctx, pids)
            out["valid_upload_after"] = valid_upload(stack)
            log_text = (tmp / "services.log").read_text(errors="replace")
            out["services_log"] = {"bytes": len(log_text),
                                   "longest_line_chars": max((len(x) for x in log_text.splitlines()), default=0)}
            out["alive_after"] = all(s.process.poll() is None for s in stack.services)
        finally:
            stack.stop()
    report = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": f"python bench/hardening_figures.py --examples {args.examples}",
              "machine": describe_machine() + ", CPU only, shared", **out}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0

if __name__ == "__main__":
    sys.exit(main())
