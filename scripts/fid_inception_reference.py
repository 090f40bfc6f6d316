"""Reference pool3 features of pytorch-fid's FID Inception-v3 with SYNTHETIC weights.

The real FID weights cannot be downloaded here, so the architecture of
``gesco/evaluate/metrics/inception.py`` is checked instead: both networks get the same
deterministic, made-up weights (:func:`synthetic_weight`, keyed by parameter name) and
must give the same features on two fixture images. Run ONLY in a throwaway virtual
environment (it needs torchvision and pytorch-fid; it does not import gesco)::

    python -m venv /tmp/lpipsref
    /tmp/lpipsref/bin/pip install torch==2.14.1 torchvision==0.29.1 pillow
    /tmp/lpipsref/bin/pip install --no-deps pytorch-fid==0.3.0
    /tmp/lpipsref/bin/python scripts/fid_inception_reference.py

It writes ``tests/evaluate/fixtures/fid_inception_reference.json``.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "evaluate" / "fixtures"
IMAGES = ["pair0_a.png", "pair1_a.png"]  # both 64x64
N_KEEP = 64  # leading feature values recorded per image


def synthetic_weight(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Deterministic made-up float32 tensor for parameter ``name`` (He-scaled convs,
    BatchNorm statistics near identity). The test in gesco repeats this formula."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name.endswith("running_var"):
        w = rng.uniform(0.5, 1.5, size=shape)
    elif name.endswith("bn.weight"):
        w = 1.0 + 0.1 * rng.standard_normal(shape)
    elif name.endswith(("bn.bias", "running_mean")):
        w = 0.1 * rng.standard_normal(shape)
    elif name.startswith("fc."):
        w = 0.01 * rng.standard_normal(shape)
    else:  # conv weight (out, in, kh, kw)
        fan_in = int(np.prod(shape[1:]))
        w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    return w.astype(np.float32)


def main() -> None:
    import pytorch_fid
    import pytorch_fid.inception as pfi
    import torch
    import torchvision

    def fake_download(url, progress=True):  # replaces the weights download
        skeleton = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        skeleton.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
        skeleton.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
        skeleton.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
        skeleton.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
        skeleton.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
        skeleton.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
        skeleton.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
        skeleton.Mixed_7b = pfi.FIDInceptionE_1(1280)
        skeleton.Mixed_7c = pfi.FIDInceptionE_2(2048)
        return {
            k: (v if k.endswith("num_batches_tracked") else torch.from_numpy(synthetic_weight(k, tuple(v.shape))))
            for k, v in skeleton.state_dict().items()
        }

    pfi.load_state_dict_from_url = fake_download
    model = pfi.InceptionV3([3]).eval()
    imgs = np.stack([np.asarray(Image.open(FIXTURES / n).convert("RGB")) for n in IMAGES])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0  # pytorch-fid takes [0, 1]
    with torch.no_grad():
        feats = model(x)[0].reshape(len(IMAGES), -1).double().numpy()
    record = {
        "images": IMAGES,
        "preprocessing": "uint8 / 255 for pytorch-fid (= x / 127.5 - 1 for gesco)",
        "weights": "synthetic_weight(name, shape) in scripts/fid_inception_reference.py (NOT the real FID weights)",
        "implementation": f"pytorch-fid {pytorch_fid.__version__} InceptionV3([3]) (torch {torch.__version__}, "
                          f"torchvision {torchvision.__version__})",
        "command": "/tmp/lpipsref/bin/python scripts/fid_inception_reference.py",
        "first_features": [f[:N_KEEP].tolist() for f in feats],
        "feature_sum": feats.sum(axis=1).tolist(),
        "feature_l2": np.linalg.norm(feats, axis=1).tolist(),
    }
    (FIXTURES / "fid_inception_reference.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "first_features"}, indent=2))


if __name__ == "__main__":
    main()
