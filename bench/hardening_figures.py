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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=1000, help="fuzzed frames per hop (attack 10)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "hardening_figures.json")
    args = p.parse_args(argv)
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # INFO: the refusals are logged, so the longest log line is measured
        stack = Stack(tiny_checkpoint(tmp / "tiny", (32, 64)), 4, tmp, segmenter=False, threads=1, log_level="INFO")
        pids = {s.name: s.process.pid for s in stack.services}
        channel = f"127.0.0.1:{stack.args.channel_port}"
        receiver = f"127.0.0.1:{stack.args.receiver_grpc_port}"
        budget_log = Path(stack.args.data_dir) / "budget.jsonl"
        try:
            base = valid_frame(stack, "base")

            def upload_fields():
                results = []
                for size_mb in (60, 5):
                    for name in ("notes", "source_box", "content_box"):
                        f = SemanticFrame()
                        f.CopyFrom(base)
                        f.id = f"fat-{name.replace('_', '-')}-{size_mb}"
                        if name == "notes":
                            f.upload.notes.extend(["n" * 1000] * (size_mb * 1000))
                        else:
                            getattr(f.upload, name).extend([2**31] * (size_mb * 200_000))  # 5 bytes each
                        results.append(rpc(channel, TRANSMIT, f, TransmitAck))
                return tally(results)

            out["1_upload_fields_to_channel"] = memory(pids["channel"], upload_fields)
            out["1_upload_fields_to_channel"]["receiver_jobs_after"] = len(
                httpx.get(stack.receiver + "/results").json()["results"])

            rx_base = ReceivedFrame()
            from gesco.link import apply_channel
            rx_base.CopyFrom(apply_channel(valid_frame(stack, "rx-base")))

            def long_shape():
                results = []
                for n in (10_000_000, 100_000):
                    rx = ReceivedFrame()
                    rx.CopyFrom(rx_base)
                    rx.header.id = f"rx-shape-{n}"
                    rx.symbols_shape.extend([1] * n)
                    results.append(rpc(receiver, DELIVER, rx, DeliverAck))
                return tally(results)

            out["2_symbols_shape_to_receiver"] = memory(pids["receiver"], long_shape)

            def many_params():
                f = SemanticFrame()
                f.CopyFrom(base)
                f.id = "many-params"
                f.transmit.channel_params.update({f"k{i}": "1" for i in range(300_000)})
                return tally([rpc(channel, TRANSMIT, f, TransmitAck)])

            out["3_channel_params_to_channel"] = memory(pids["channel"], many_params)

            def long_sampler():
                results = []
                for i in range(7):
                    f = SemanticFrame()
                    f.CopyFrom(base)
                    f.id = f"long-sampler-{i}"
                    f.transmit.sampler = "s" * 10_000
                    results.append(rpc(channel, TRANSMIT, f, TransmitAck))
                return tally(results)

            out["4_long_sampler_to_channel"] = memory(pids["channel"], long_sampler)

            def healthz_latencies(seconds: float) -> list[float]:
                lat = []
                end = time.monotonic() + seconds
                with httpx.Client() as c:
                    while time.monotonic() < end:
                        t0 = time.perf_counter()
                        c.get(stack.receiver + "/healthz", timeout=60)
                        lat.append(time.perf_counter() - t0)
                        time.sleep(0.1)
                return lat

            def label_uploads():
                rng = np.random.default_rng(0)
                label = encode_png(rng.integers(0, 35, (2048, 4096), dtype=np.uint8))
                stop, codes = threading.Event(), []

                def client():
                    with httpx.Client() as c:
                        while not stop.is_set():
                            codes.append(c.post(stack.receiver + "/viewer/label.png",
                                                files={"label": ("l.png", label)}, timeout=120).status_code)

                quiet = healthz_latencies(3)
                threads = [threading.Thread(target=client) for _ in range(4)]
                for t in threads:
                    t.start()
                busy = healthz_latencies(8)
                stop.set()
                for t in threads:
                    t.join()
                return {"uploads": len(codes), "statuses": {str(s): codes.count(s) for s in set(codes)},
                        "label_png_bytes": len(label),
                        "healthz_quiet_ms": {"median": round(1000 * statistics.median(quiet), 1),
                                             "max": round(1000 * max(quiet), 1)},
                        "healthz_with_4_uploaders_ms": {"median": round(1000 * statistics.median(busy), 1),
                                                        "max": round(1000 * max(busy), 1), "polls": len(busy)}}

            out["5_label_png_x4_vs_healthz"] = memory(pids["receiver"], label_uploads)

            def concurrent_60mb():
                f = SemanticFrame()
                f.CopyFrom(base)
                f.upload.notes.extend(["n" * 1000] * 60_000)
                data = f.SerializeToString()
                results: list = []
                threads = [threading.Thread(target=lambda: results.append(rpc(channel, TRANSMIT, data, TransmitAck)))
                           for _ in range(16)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                return tally(results)

            out["6_16_concurrent_60MB_to_channel"] = memory(pids["channel"], concurrent_60mb)

            def unknown_fields():
                lines_before = len(budget_log.read_text().splitlines()) if budget_log.exists() else 0
                results = []
                for n, fid in ((60 << 20, "unknown-60mb"), (64 << 10, "unknown-64kib")):
                    f = SemanticFrame()
                    f.CopyFrom(base)
                    f.id = fid
                    length = n
                    varint = bytearray()
                    while True:
                        byte, length = length & 0x7F, length >> 7
                        varint.append(byte | (0x80 if length else 0))
                        if not length:
                            break
                    results.append(rpc(channel, TRANSMIT, f.SerializeToString() + b"\xfa\x3f" + bytes(varint)
                                       + b"\x00" * n, TransmitAck))
                lines = budget_log.read_text().splitlines() if budget_log.exists() else []
                return {**tally(results), "budget_lines_added": len(lines) - lines_before}

            out["7_unknown_fields_to_channel"] = memory(pids["channel"], unknown_fields)

            def method_names():
                with httpx.Client() as c:
                    size_before = len(c.get(stack.sender + "/metrics").content)
                    statuses = [c.request(f"M{i:04d}X", stack.sender + "/healthz").status_code for i in range(3000)]
                    size_after = len(c.get(stack.sender + "/metrics").content)
                return {"inputs": len(statuses), "5xx": sum(s >= 500 for s in statuses),
                        "metrics_bytes_before": size_before, "metrics_bytes_after": size_after}

            out["8_method_names_to_sender"] = memory(pids["sender"], method_names)

            def slow_connections():
                host, port = stack.sender.split("//")[1].split(":")
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

            out["9_slow_connections_to_sender"] = memory(pids["sender"], slow_connections)

            def fuzz(address, method, reply, root, message, bounds, seed):
                rng = random.Random(seed)
                targets = oversize_targets(root)
                results = []
                with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 256 << 20)]) as ch:
                    call = ch.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                                          response_deserializer=reply.FromString)
                    for _ in range(args.examples):
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

            ch_bounds = message_bounds(36 * 256 * 512)  # the channel's default element budget
            rx_bounds = message_bounds(36 * 32 * 64)  # the receiver's: (C + 1) x H x W of the tiny model
            out["10_fuzz_channel"] = memory(pids["channel"], lambda: fuzz(
                channel, TRANSMIT, TransmitAck, SemanticFrame.DESCRIPTOR, base, ch_bounds, 1))
            out["10_fuzz_receiver"] = memory(pids["receiver"], lambda: fuzz(
                receiver, DELIVER, DeliverAck, ReceivedFrame.DESCRIPTOR, rx_base, rx_bounds, 2))

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
            out["valid_upload_after"] = {"status_code": r.status_code, "job_status": doc["status"]}
            log_text = (tmp / "services.log").read_text(errors="replace")
            out["services_log"] = {"bytes": len(log_text),
                                   "longest_line_chars": max((len(x) for x in log_text.splitlines()), default=0)}
            out["alive_after"] = all(s.process.poll() is None for s in stack.services)
        finally:
            stack.stop()
    report = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": f"python bench/hardening_figures.py --examples {args.examples}",
              "machine": "2-core AMD EPYC VM, CPU only, shared", **out}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
