"""Helpers of the tests that run an imported authors' model at 256x512 (issue 22 item 4;
the services' tests and ``gesco evaluate --dataset cityscapes``): a Cityscapes-like
``labelIds`` / ``instanceIds`` pair and a random-weight model of the authors' layout
brought in by ``gesco import``.

The served model is the published layout (a label MLP per SPADE, residual down/up blocks,
attention with their qkv order) at 32 channels and five levels, with random weights, written
as an authors' state dict (their key names, ``torch.save``) and imported with the flags of a
256-pixel model, so its card says 256x512 and ``instance_ids: 8bit``. One guided network
pass (batch 2) takes ~25 s on one loaded core of the shared 2-core box (per-SPADE label MLPs
at full size).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from gesco.diffusion.authors_import import DATASETS, AuthorsFlags, to_authors_state_dict, unet_config
from gesco.diffusion.unet import SpadeUNet
from gesco_net.cli import main as cli

#: the served model: five levels, attention at downsampling 16 (16x32 positions at 256x512)
SERVED_256 = AuthorsFlags(image_size=256, num_channels=32, num_res_blocks=1, channel_mult=(1, 1, 1, 1, 1),
                          attention_resolutions=(16,), num_head_channels=16)
H, W = 256, 512


def cityscapes_pair(h: int = 512, w: int = 1024) -> dict[str, np.ndarray]:
    """A Cityscapes-like scene at half the original size: road, sky, two touching cars, a person.

    Returns ``image`` (RGB uint8), ``label`` (``*_labelIds``: uint8 Cityscapes ids) and
    ``instance`` (``*_instanceIds``: uint16, ``class id * 1000 + k`` for things, the class id elsewhere).
    """
    label = np.full((h, w), 7, np.uint8)  # road
    label[: h // 3] = 23  # sky
    label[h // 2: 3 * h // 4, w // 4: w // 2] = 26  # car 1
    label[h // 2: 3 * h // 4, w // 2: 3 * w // 4] = 26  # car 2, touching car 1
    label[h // 3: h // 2, 3 * w // 4: 7 * w // 8] = 24  # a person
    inst = label.astype(np.uint16)
    inst[h // 2: 3 * h // 4, w // 4: w // 2] = 26000
    inst[h // 2: 3 * h // 4, w // 2: 3 * w // 4] = 26001
    inst[h // 3: h // 2, 3 * w // 4: 7 * w // 8] = 24000
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 2] = label * 7  # any image: the maps are what is sent
    return {"image": image, "label": label, "instance": inst}


def png(a: np.ndarray) -> bytes:
    """``a`` as PNG bytes (cv2: a 3-channel array is read as BGR; uint16 stays 16-bit)."""
    ok, buf = cv2.imencode(".png", a)
    assert ok
    return buf.tobytes()


def import_random_authors_model(tmp: Path) -> Path:
    """A random-weight authors' state dict (their keys) of :data:`SERVED_256`, written with
    ``torch.save`` into ``tmp`` and brought in by ``gesco import``; returns the checkpoint folder."""
    torch.manual_seed(0)
    model = SpadeUNet(unet_config(SERVED_256, DATASETS["cityscapes"]))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05)
    torch.save(to_authors_state_dict(model), tmp / "random_authors.pt")
    assert cli(["import", str(tmp / "random_authors.pt"), "--out", str(tmp / "served"), "--image-size", "256",
                "--num-channels", "32", "--num-res-blocks", "1", "--channel-mult", "1,1,1,1,1",
                "--attention-resolutions", "16", "--num-head-channels", "16"]) == 0
    return tmp / "served"
