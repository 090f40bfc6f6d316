"""Helpers of the service tests: a tiny checkpoint, servers on threads, subprocesses, scenes.

The tiny diffusion checkpoint has random weights on purpose: these tests check the
plumbing (HTTP, gRPC, store, worker), not image quality. It is explicit test
configuration, never used by the services themselves.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import uvicorn

from gesco.link import encode_png

#: resolution of the tiny test model (small, so that sampling takes milliseconds)
TINY_RESOLUTION = (32, 64)
REPO = Path(__file__).resolve().parents[2]


def skip_unless_required(env_var: str, reason: str) -> None:
    """Skip a test whose tool is missing, or FAIL it when ``env_var=1`` says the tool must be there.

    ``.ci/run`` installs the tools (Debian's chromium, chromium-driver, docker-compose) and
    sets ``GESCO_REQUIRE_BROWSER=1`` / ``GESCO_REQUIRE_COMPOSE=1``, so a failed install turns
    these tests red instead of skipping them quietly; a developer's machine without the tools
    still skips them.
    """
    import pytest

    if os.environ.get(env_var) == "1":
        pytest.fail(f"{reason}; {env_var}=1 says it must be installed here (.ci/run installs it)", pytrace=False)
    pytest.skip(reason)


def make_tiny_checkpoint(path: Path, resolution: tuple[int, int] = TINY_RESOLUTION) -> Path:
    """Write a random-weight SPADE U-Net checkpoint (cityscapes, ``resolution``); return its stem."""
    import torch

    from gesco.diffusion.checkpoint import ModelCard, save_checkpoint
    from gesco.diffusion.gaussian import DiffusionConfig
    from gesco.diffusion.unet import SpadeUNet, UNetConfig

    config = UNetConfig(label_channels=36, base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(),
                        head_channels=8, spade_hidden=8, num_groups=8)
    torch.manual_seed(0)
    card = ModelCard(unet=config, diffusion=DiffusionConfig(), class_space="cityscapes", resolution=resolution,
                     training={"steps": 0, "note": "random weights, service tests only"})
    save_checkpoint(path, SpadeUNet(config), card)
    return path


class UvicornThread:
    """Serve an ASGI app on a background thread (``with UvicornThread(app, port): ...``)."""

    def __init__(self, app, port: int, host: str = "127.0.0.1", **config) -> None:
        """``config``: more ``uvicorn.Config`` options (``ssl_certfile`` / ``ssl_keyfile``: served over https)."""
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                                                    **config))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"{'https' if config.get('ssl_certfile') else 'http'}://{host}:{port}"

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def scene_files(seed: int = 1, height: int = 48, width: int = 96) -> dict[str, bytes]:
    """A synthetic street scene as PNG files: image, label map, instance map (16 bit)."""
    from gesco.data.synthetic import generate_scene

    s = generate_scene(seed, height, width)
    import cv2

    ok, inst = cv2.imencode(".png", s.instance.astype(np.uint16))
    assert ok
    return {"image": encode_png(s.image), "label": encode_png(s.label.astype(np.uint8)), "instance": inst.tobytes()}


def service_env(**extra: str) -> dict[str, str]:
    """Environment of a service subprocess: one thread, the repository importable."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``python <args>`` with stdout and stderr to ``log``."""
    f = open(log, "ab")
    return subprocess.Popen([sys.executable, *args], env=env, stdout=f, stderr=subprocess.STDOUT, cwd=REPO)


def exif_app1(orientation: int, order: str = "MM") -> bytes:
    """An APP1 segment holding an EXIF IFD0 with one entry: orientation (SHORT)."""
    e = ">" if order == "MM" else "<"
    tiff = order.encode() + struct.pack(e + "HI", 42, 8) + struct.pack(e + "H", 1)
    tiff += struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", orientation, 0) + struct.pack(e + "I", 0)
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def jpeg_with_orientation(rgb: np.ndarray, orientation: int, order: str = "MM") -> bytes:
    """A JPEG of ``rgb`` (stored pixels) with an EXIF orientation tag inserted after SOI."""
    ok, jpg = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    data = jpg.tobytes()
    return data[:2] + exif_app1(orientation, order) + data[2:]
