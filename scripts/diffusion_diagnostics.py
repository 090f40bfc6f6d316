"""Diagnostics of diffusion checkpoints, the measurements behind docs/training.md.

``x0`` : how well each checkpoint's clean-image estimate ``x0_hat`` (Eq. 4 solved for x0
with the predicted epsilon, conditional on the clean maps, no guidance) matches the real
image at several noise levels ``t``, on the first N synthetic scenes of the validation split (``val``). The noise is the
same for every checkpoint (seeded), so the rows compare side by side.

    python scripts/diffusion_diagnostics.py x0 CKPT [CKPT ...] [--scenes 8] [--out table.md]

``curve`` : the training-loss curve of one or more runs (``train_log.jsonl``), smoothed.

    python scripts/diffusion_diagnostics.py curve LOG [LOG ...] --labels A B --out curve.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from gesco.data.synthetic import SyntheticScenes
from gesco.diffusion.checkpoint import load_checkpoint
from gesco.diffusion.gaussian import GaussianDiffusion
from gesco.semantics.classes import get_class_space
from gesco.train.diffusion import make_batch

T_VALUES = (10, 100, 300, 500, 700, 900)


def _scenes(n: int, h: int, w: int, space) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` validation scenes: images in [-1, 1] and their clean conditioning, as in training."""
    batch = make_batch(SyntheticScenes(split="val", size=n, height=h, width=w), list(range(n)), space)
    return batch["image"], batch["cond"]


@torch.inference_mode()
def x0_errors(checkpoint: str, n_scenes: int, seed: int = 0) -> list[dict]:
    """Rows ``{t, snr, eps_mse, x0_mse, mean_colour_err}`` for one checkpoint."""
    model, card = load_checkpoint(checkpoint)
    diffusion = GaussianDiffusion(card.diffusion)
    space = get_class_space(card.class_space)
    x0, cond = _scenes(n_scenes, *card.resolution, space)
    rows = []
    for t_val in T_VALUES:
        g = torch.Generator().manual_seed(seed * 1000 + t_val)
        noise = torch.randn(x0.shape, generator=g)
        t = torch.full((x0.shape[0],), t_val, dtype=torch.long)
        xt = diffusion.q_sample(x0, t, noise)
        eps = model(xt, t, cond)[:, :3]
        x0_hat = diffusion.predict_x0(xt, t, eps).clamp(-1, 1)
        rows.append(
            {
                "t": t_val,
                "snr": float(diffusion.snr(t[:1])[0]),
                "eps_mse": float(((eps - noise) ** 2).mean()),
                "x0_mse": float(((x0_hat - x0) ** 2).mean()),
                "mean_colour_err": float(((x0_hat.mean((2, 3)) - x0.mean((2, 3))) ** 2).mean()),
            }
        )
    return rows


def _name(path: str) -> str:
    p = Path(path)
    stem = p.name.removesuffix(".safetensors").removesuffix(".json")
    return p.parent.name if stem == "ema" else stem


def x0_table(checkpoints: list[str], n_scenes: int) -> str:
    results = {c: x0_errors(c, n_scenes) for c in checkpoints}
    names = [_name(c) for c in checkpoints]
    lines = [
        f"x0_hat MSE (mean-colour MSE) on {n_scenes} validation scenes; pixel values in [-1, 1]",
        "",
        "| t | SNR | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for i, t_val in enumerate(T_VALUES):
        first = results[checkpoints[0]][i]
        cells = [f"{results[c][i]['x0_mse']:.4f} ({results[c][i]['mean_colour_err']:.4f})" for c in checkpoints]
        lines.append(f"| {t_val} | {first['snr']:.3g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def loss_curve(logs: list[str], labels: list[str], out: str, window: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for log, label in zip(logs, labels):
        recs = [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]
        steps = np.array([r["step"] for r in recs])
        mse = np.array([r["mse"] for r in recs])
        k = min(window, len(mse))
        smooth = np.convolve(mse, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, label=label)
    ax.set_xlabel("training step (batch 8)")
    ax.set_ylabel(f"epsilon MSE (moving mean of {window} logs)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("x0", help="x0_hat error against t")
    a.add_argument("checkpoints", nargs="+")
    a.add_argument("--scenes", type=int, default=8)
    a.add_argument("--out", default=None)
    b = sub.add_parser("curve", help="training-loss curves")
    b.add_argument("logs", nargs="+")
    b.add_argument("--labels", nargs="+", default=None)
    b.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.cmd == "x0":
        table = x0_table(args.checkpoints, args.scenes)
        print(table)
        if args.out:
            Path(args.out).write_text(table)
    else:
        loss_curve(args.logs, args.labels or [Path(p).parent.name for p in args.logs], args.out)
        print(args.out)


if __name__ == "__main__":
    main()
