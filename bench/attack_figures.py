"""The issue-14 attacks, replayed against live services, with memory and status figures.

Starts the three services as processes (``bench_services.Stack``, a tiny random-weight
model at 32 x 64: the attacks do not depend on the model) and replays what the attack
on the old main did, measuring each target process's peak resident memory growth
(VmHWM after minus VmRSS before) and the reply:

1. a ~140-byte ``SemanticFrame`` declaring 12 contour maps of 4096 x 4096, to the channel;
2. a ~295 KB ``ReceivedFrame`` of 36 maps, downsample factor 64, declaring 4096 x 4096,
   to the receiver;
3. 4 concurrent uploads of a 16-bit RGBA 4000 x 4000 PNG with 16-bit label and
   instance maps (~0.4 MB in all per request), to the sender;
4. a 76 MiB chunked upload and the same body with Content-Length, to the sender.

    python bench/attack_figures.py

Results: ``bench/results/attack_figures.json``.
"""

from __future__ import annotations

import json
import struct
import sys
import tempfile
import threading
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_services import Stack, scene, tiny_checkpoint

from gesco.wire import DeliverAck, ReceivedFrame, SemanticFrame, TransmitAck


def status(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def measure(pid: int, action) -> dict:
    reset_peak(pid)
    before = status(pid, "VmRSS")
    t0 = time.perf_counter()
    outcome = action()
    elapsed = time.perf_counter() - t0
    return {"outcome": outcome, "seconds": round(elapsed, 3), "peak_growth_mib": round(status(pid, "VmHWM") - before, 1)}


def png(height: int, width: int, channels: int, depth: int = 16) -> bytes:
    colour = {1: 0, 4: 6}[channels]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + width * channels * depth // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def rpc(address: str, method: str, message, reply) -> str:
    with grpc.insecure_channel(address) as ch:
        call = ch.unary_unary(method, request_serializer=type(message).SerializeToString,
                              response_deserializer=reply.FromString)
        try:
            call(message, timeout=120)
            return "OK"
        except grpc.RpcError as e:
            return f"{e.code().name}: {e.details()[:160]}"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stack = Stack(tiny_checkpoint(tmp / "tiny", (32, 64)), 4, tmp, segmenter=False, threads=1)
        pids = {s.name: s.process.pid for s in stack.services}
        channel = f"127.0.0.1:{stack.args.channel_port}"
        receiver = f"127.0.0.1:{stack.args.receiver_grpc_port}"
        out = {}
        try:
            bomb = SemanticFrame(id="bomb", height=4096, width=4096, num_classes=35, class_space="cityscapes",
                                 class_ids=list(range(12)), codec="contour", payload=b"\x00" * 64)
            bomb.transmit.psnr_db = 10
            out["channel_bomb"] = {"frame_bytes": len(bomb.SerializeToString()),
                                   **measure(pids["channel"], lambda: rpc(channel, "/gesco.v1.Channel/Transmit", bomb,
                                                                           TransmitAck))}
            header = SemanticFrame(id="rx-bomb", height=4096, width=4096, num_classes=35, class_space="cityscapes",
                                   class_ids=list(range(35)), has_edges=True, codec="downsample")
            header.codec_params.factor = 64
            header.transmit.psnr_db = 10
            rx = ReceivedFrame(header=header, symbols=np.zeros((36, 64, 64), "<f2").tobytes(), symbols_shape=[36, 64, 64])
            rx.report.psnr_db, rx.report.channel_uses, rx.report.channel = 10.0, 36 * 64 * 64, "awgn"
            out["receiver_bomb"] = {"frame_bytes": len(rx.SerializeToString()),
                                    **measure(pids["receiver"], lambda: rpc(receiver, "/gesco.v1.Receiver/Deliver", rx,
                                                                             DeliverAck))}
            files = {"image": png(4000, 4000, 4), "label": png(4000, 4000, 1), "instance": png(4000, 4000, 1)}

            def four_uploads():
                codes = []

                def one():
                    r = httpx.post(stack.sender + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()},
                                   timeout=120)
                    codes.append(r.status_code)

                threads = [threading.Thread(target=one) for _ in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                return sorted(codes)

            out["sender_amplification_x4"] = {"request_bytes": sum(map(len, files.values())),
                                              **measure(pids["sender"], four_uploads)}
            res = httpx.get(stack.sender + "/healthz").json()["resolution"]
            real = scene(3, *res)
            boundary = "gescoBOUNDARY"
            body = b"".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{k}.png"\r\n\r\n'.encode() + v + b"\r\n"
                for k, v in real.items()) + f"--{boundary}--\r\n".encode() + b"x" * (76 * 1024 * 1024)
            headers = {"content-type": f"multipart/form-data; boundary={boundary}"}

            def chunked():
                def gen():
                    for i in range(0, len(body), 1 << 20):
                        yield body[i : i + (1 << 20)]
                try:
                    return httpx.post(stack.sender + "/transmit", content=gen(), headers=headers, timeout=120).status_code
                except httpx.HTTPError as e:  # the server may close while the client still sends
                    return f"{type(e).__name__}"

            out["chunked_76MiB"] = measure(pids["sender"], chunked)
            out["content_length_76MiB"] = measure(
                pids["sender"], lambda: httpx.post(stack.sender + "/transmit", content=body, headers=headers,
                                                   timeout=120).status_code)
            out["alive_after"] = all(s.process.poll() is None for s in stack.services)
        finally:
            stack.stop()
    report = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "command": "python bench/attack_figures.py",
              **out}
    target = REPO / "bench" / "results" / "attack_figures.json"
    target.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
