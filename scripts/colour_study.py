"""Colour study: where the generated images' whole-image colour cast comes from.

Measures, for diffusion checkpoints on a fixed set of synthetic scenes of ``--split`` (default
``val``, the validation split every choice is made on; clean maps,
the receiver's pipeline :class:`~gesco.diffusion.pipeline.SemanticGenerator`):

* ``dc``: the network's *mean-colour gain* ``d mean(eps_hat) / d mean(x_t)`` at several
  ``t``: a per-channel constant added to ``x_t`` and the change of the spatial mean of the
  predicted epsilon, against the Bayes-optimal gain of a Gaussian prior on the scene's mean
  colour (``k*(t) = (s^2/N) / (a^2 v0 + s^2/N)``, ``a = sqrt(abar_t)``, ``s = sqrt(1 - abar_t)``,
  ``N = H W``, ``v0`` the variance of scene mean colours). A gain near 0 where ``k*`` is near 1
  means the network reads the starting noise's mean as signal: ``x0_hat = (x_t - s eps)/a``
  then carries ``mean(x_T) / a`` (156x at ``t = 999``) as a colour.
* ``x0``: the mean colour error of the clean-image estimate at ``t = 999``;
* per sampler / guidance setting: the mean colour error of the generated image against the
  sent scene (Euclidean distance of the mean RGB, 0-255 units: the evaluation's
  :func:`gesco.evaluate.metrics.colour_errors`), and its spread over seeds
  (standard deviation over seeds of the generated mean RGB, RMS over channels, mean over
  scenes). A cast that follows the noise has a spread close to its error.
* ``data``: do the training scenes carry a random global tint? The spread of scene mean
  colours and of their chroma (mean RGB minus its grey level) over training scenes.
* ``path``: the colour path end to end: dataset tensor -> ``to_uint8`` -> PNG
  (``gesco.link.encode_png``) -> ``decode_image`` gives back the scene's pixels exactly.

    python scripts/colour_study.py CKPT [CKPT ...] --scenes 6 --seeds 3 --out docs/colour
    python scripts/colour_study.py CKPT --settings respaced50-g2,ancestral-g2 --reference-scenes 2

Writes ``OUT/colour_study.json`` and ``OUT/colour_study.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from gesco.data.synthetic import SyntheticScenes
from gesco.diffusion.checkpoint import load_checkpoint
from gesco.diffusion.gaussian import GaussianDiffusion
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator
from gesco.evaluate.metrics import colour_errors
from gesco.link import decode_image, encode_png
from gesco.semantics.classes import get_class_space
from gesco.train.diffusion import make_batch

DC_TIMES = (999, 900, 700, 500, 300)
#: name -> (sampler, steps, guidance scale)
SETTINGS = {
    "respaced50-g2": ("respaced", 50, 2.0),
    "respaced50-g1": ("respaced", 50, 1.0),
    "respaced50-g0": ("respaced", 50, 0.0),
    "respaced20-g2": ("respaced", 20, 2.0),
    "ddim20-g2": ("ddim", 20, 2.0),
    "dpmpp20-g2": ("dpmpp-2m", 20, 2.0),
    "dpmpp10-g2": ("dpmpp-2m", 10, 2.0),
    "dpmpp10-g1": ("dpmpp-2m", 10, 1.0),
    "ancestral-g2": ("ancestral", 1000, 2.0),
    # the receiver's default: the guidance-distilled student (guidance 2 folded in) at its sampler
    "student8-g2": ("dpmpp-2m-sde-ode-mean", 8, 2.0),
}


def _to255(x: torch.Tensor) -> torch.Tensor:
    """Pixel values in [-1, 1] -> the 0-255 scale (differences scale by 127.5)."""
    return x * 127.5


def scenes(n: int, h: int, w: int, space, split: str = "val") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``n`` scenes of ``split``: images in [-1, 1], their clean conditioning and label maps."""
    ds = SyntheticScenes(split=split, size=n, height=h, width=w)
    batch = make_batch(ds, list(range(n)), space)
    labels = torch.stack([ds[i]["label"] for i in range(n)])
    return batch["image"], batch["cond"], labels


def mean_colour_error(images: torch.Tensor, sent: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Per image, the evaluation's whole-image colour error (0-255 units)."""
    return colour_errors(images, sent, labels, value_range=(-1.0, 1.0)).mean_colour_error


@torch.inference_mode()
def dc_gain(model, diffusion: GaussianDiffusion, x0: torch.Tensor, cond: torch.Tensor, labels: torch.Tensor) -> list[dict]:
    """Rows ``{t, gain, ideal, x0_mean_colour_err}``: the network's mean-colour response."""
    n_pix = x0.shape[-2] * x0.shape[-1]
    v0 = float(x0.mean((2, 3)).var())
    rows = []
    for tv in DC_TIMES:
        t = torch.full((x0.shape[0],), tv, dtype=torch.long)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(tv))
        xt = diffusion.q_sample(x0, t, noise)
        a2 = float(diffusion.alphas_cumprod[tv])
        s2 = 1.0 - a2
        delta = 0.05 * s2**0.5  # a small constant shift, in noise-std units
        shifted = xt + delta
        eps0 = model(xt, t, cond)[:, :3]
        eps1 = model(shifted, t, cond)[:, :3]
        # d mean(eps) / d mean(x_t), in the units where eps ~ N(0, 1): times s
        gain = float((eps1 - eps0).mean((2, 3)).mean() / delta * s2**0.5)
        ideal = (s2 / n_pix) / (a2 * v0 + s2 / n_pix)
        x0_hat = diffusion.predict_x0(xt, t, eps0).clamp(-1, 1)
        err = mean_colour_error(x0_hat, x0, labels).mean()
        rows.append({"t": tv, "gain": round(gain, 4), "ideal": round(ideal, 4), "x0_mean_colour_err": round(float(err), 2)})
    return rows


def sample_setting(gen: SemanticGenerator, cond: torch.Tensor, x0: torch.Tensor, labels: torch.Tensor, name: str,
                   seeds: int) -> dict:
    sampler, steps, scale = SETTINGS[name]
    n = cond.shape[0]
    cond_rep = cond.repeat_interleave(seeds, 0)
    per = [SamplingSettings(sampler=sampler, steps=steps, guidance_scale=scale, seed=1000 * i + k)
           for i in range(n) for k in range(seeds)]
    t0 = time.perf_counter()
    imgs = gen.generate(cond_rep, per)
    wall = time.perf_counter() - t0
    err = mean_colour_error(imgs, x0.repeat_interleave(seeds, 0), labels.repeat_interleave(seeds, 0))
    mean_gen = _to255(imgs.mean((2, 3))).view(n, seeds, 3)
    mean_ref = _to255(x0.mean((2, 3)))[:, None, :]
    spread = mean_gen.std(dim=1, unbiased=True).pow(2).mean(1).sqrt() if seeds > 1 else torch.zeros(n)
    signed = (mean_gen - mean_ref).mean((0, 1))
    return {
        "setting": name, "sampler": sampler, "steps": steps, "guidance": scale, "images": n * seeds,
        "mean_colour_err": round(float(err.mean()), 2), "seed_spread": round(float(spread.mean()), 2),
        "mean_signed_rgb": [round(float(v), 2) for v in signed], "wall_s": round(wall, 1),
    }


def data_check(n: int, h: int, w: int) -> dict:
    """Spread of the training scenes' mean colour and of its chroma (0-255 units)."""
    ds = SyntheticScenes(split="train", size=n, height=h, width=w)
    means = np.stack([ds[i]["image"].mean((1, 2)).numpy() for i in range(n)]) * 127.5
    chroma = means - means.mean(1, keepdims=True)
    return {
        "scenes": n,
        "mean_rgb_std": [round(float(v), 2) for v in means.std(0)],
        "chroma_std": [round(float(v), 2) for v in chroma.std(0)],
    }


def path_check(n: int, h: int, w: int, split: str = "val") -> dict:
    """Dataset tensor -> to_uint8 -> PNG -> decode gives the scene's pixels back exactly."""
    from gesco.data.synthetic import generate_scene, split_seed

    ds = SyntheticScenes(split=split, size=n, height=h, width=w)
    worst_tensor, worst_png = 0, 0
    for i in range(n):
        ref = generate_scene(split_seed(split, i), h, w).image.astype(int)
        back = SemanticGenerator.to_uint8(ds[i]["image"][None])[0].astype(int)
        png = decode_image(encode_png(back.astype(np.uint8))).astype(int)
        worst_tensor = max(worst_tensor, int(np.abs(back - ref).max()))
        worst_png = max(worst_png, int(np.abs(png - ref).max()))
    return {"scenes": n, "split": split, "max_abs_diff_tensor_roundtrip": worst_tensor, "max_abs_diff_png_roundtrip": worst_png}


def markdown(result: dict) -> str:
    lines = ["# Colour study", "", f"Command: `{result['command']}`", ""]
    lines += ["## The network's mean-colour gain", "",
              "`d mean(eps_hat) / d mean(x_t)` (noise units) against the Bayes-optimal gain `k*` of a Gaussian prior "
              "on the scene's mean colour; and the mean colour error of `x0_hat` (0-255 units), clean maps, no guidance.", ""]
    for ck in result["checkpoints"]:
        lines.append(f"**{ck['name']}**")
        lines.append("")
        lines.append("| t | gain | ideal k* | x0_hat mean-colour error |")
        lines.append("|---|---|---|---|")
        for r in ck["dc"]:
            lines.append(f"| {r['t']} | {r['gain']:.3f} | {r['ideal']:.3f} | {r['x0_mean_colour_err']:.1f} |")
        lines.append("")
    lines += ["## Generated images: mean colour error against the sent scene, spread over seeds", "",
              "0-255 units; Euclidean distance of the mean RGB; spread: std over seeds of the generated mean RGB "
              "(RMS over channels), mean over scenes. Clean maps (PSNR 100).", "",
              "| checkpoint | setting | images | mean colour error | seed spread | mean signed RGB error | wall s |",
              "|---|---|---|---|---|---|---|"]
    for ck in result["checkpoints"]:
        for r in ck["samples"]:
            lines.append(f"| {ck['name']} | {r['setting']} | {r['images']} | {r['mean_colour_err']:.1f} | "
                         f"{r['seed_spread']:.1f} | {tuple(r['mean_signed_rgb'])} | {r['wall_s']} |")
    d, p = result["data"], result["path"]
    lines += ["", "## Data and colour path", "",
              f"Training scenes ({d['scenes']}): std of the scene mean RGB {tuple(d['mean_rgb_std'])}, "
              f"of its chroma (mean RGB minus grey) {tuple(d['chroma_std'])} (0-255 units).", "",
              f"Colour path on {p['scenes']} {p.get('split', 'test')} scenes: tensor round trip max |diff| "
              f"{p['max_abs_diff_tensor_roundtrip']}, "
              f"PNG encode/decode round trip max |diff| {p['max_abs_diff_png_roundtrip']} (0 = exact, RGB order kept).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="checkpoint stems; NAME=PATH to name a row")
    ap.add_argument("--scenes", type=int, default=6)
    ap.add_argument("--split", default="val", choices=("val", "test"),
                    help="synthetic split of the scenes (default val: choices are made on it; test once per table)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--settings", default="respaced50-g2,respaced50-g1,respaced50-g0,ddim20-g2,dpmpp20-g2")
    ap.add_argument("--reference-scenes", type=int, default=2, help="scenes for the 1000-step ancestral-g2 setting")
    ap.add_argument("--data-scenes", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/colour_study")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import sys

    result: dict = {"command": "python scripts/colour_study.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                    "split": args.split, "checkpoints": []}
    for spec in args.checkpoints:
        name, _, path = spec.rpartition("=")
        name = name or Path(path).name
        model, card = load_checkpoint(path)
        gen = SemanticGenerator(model, card, "cpu")
        space = get_class_space(card.class_space)
        x0, cond, labels = scenes(args.scenes, *card.resolution, space, args.split)
        entry = {"name": name, "path": path, "dc": dc_gain(model, gen.diffusion, x0, cond, labels), "samples": []}
        for s in [s for s in args.settings.split(",") if s]:
            if s not in SETTINGS:
                raise SystemExit(f"unknown setting {s!r}; known: {', '.join(SETTINGS)}")
            k = args.reference_scenes if s == "ancestral-g2" else args.scenes
            row = sample_setting(gen, cond[:k], x0[:k], labels[:k], s, args.seeds)
            print(name, row, flush=True)
            entry["samples"].append(row)
        result["checkpoints"].append(entry)
    h, w = tuple(card.resolution)  # the last checkpoint's resolution
    result["data"] = data_check(args.data_scenes, h, w)
    result["path"] = path_check(8, h, w, args.split)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "colour_study.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "colour_study.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
