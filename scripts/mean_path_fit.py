"""Fit a checkpoint's mean-colour path to the Bayes-optimal one, directly (issue 24, item 3).

Measures the scene mean colour's prior given the label fractions on ``--fit-scenes`` **train**
scenes (:func:`gesco.diffusion.mean_path.fit_colour_prior`), computes the Bayes-optimal
``G*(t)``, ``Q*(t)`` (:func:`~gesco.diffusion.mean_path.bayes_mean_path`) and writes them into
the checkpoint's two mean-path layers by least squares over every time step
(:func:`~gesco.diffusion.mean_path.fit_mean_path`); every other weight is copied unchanged.
A checkpoint trained without a mean path (``unet.mean_skip`` false) gets one first,
zero-initialised (:func:`~gesco.diffusion.mean_path.with_mean_path`); its card then says
``mean_skip: true`` and records ``"added_mean_path": true``.
Writes the new checkpoint (weights + card recording the command and the fitted prior) to ``--out``.

``--maps received`` fits the prior on the label fractions the receiver will read instead of the
clean ones: every train scene's maps go through the checkpoint's own noisy-training corruption
(``conditioning.noisy_training`` of its card: the channel at its PSNR mixture, then FDS,
:func:`gesco.semantics.noisy.corrupt_conditioning`, the function training and the receiver use).
Received maps at low PSNR carry more mass than clean ones (the fractions of a 1 dB frame sum to
~2.3 after FDS, against ~1.2 clean), so a prior fitted on clean fractions reads them as a
different scene; fitted on the mixture, ``M`` and ``V`` describe what the network sees.

    python scripts/mean_path_fit.py checkpoints/diffusion-synthetic-64x128-student \
        --out checkpoints/diffusion-synthetic-64x128-student-meanfit --fit-scenes 2000
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from gesco.data.synthetic import SyntheticScenes
from gesco.diffusion.checkpoint import load_checkpoint, save_checkpoint
from gesco.diffusion.gaussian import GaussianDiffusion
from gesco.diffusion.mean_path import bayes_mean_path, fit_colour_prior, fit_mean_path, with_mean_path
from gesco.semantics.classes import get_class_space
from gesco.semantics.noisy import NoisyMapsConfig, corrupt_conditioning
from gesco.train.data import make_batch


def scene_means(n: int, h: int, w: int, space, chunk: int = 100,
                noisy: NoisyMapsConfig | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per train scene, the mean colour ``(n, 3, 1, 1)`` and mean conditioning ``(n, L, 1, 1)``;
    with ``noisy``, the conditioning's mean after that corruption (seeded by ``seed``)."""
    ds = SyntheticScenes(split="train", size=n, height=h, width=w)
    gen = torch.Generator().manual_seed(seed)
    ims, conds = [], []
    for i in range(0, n, chunk):
        b = make_batch(ds, list(range(i, min(n, i + chunk))), space)
        cond = b["cond"] if noisy is None else corrupt_conditioning(b["cond"], b["has_edges"], noisy, gen)[0]
        ims.append(b["image"].mean((2, 3), keepdim=True))
        conds.append(cond.mean((2, 3), keepdim=True))
    return torch.cat(ims), torch.cat(conds)


def received_maps_config(card) -> NoisyMapsConfig:
    """The checkpoint's own noisy-training corruption; a clear error for a model trained on clean maps."""
    raw = (card.conditioning or {}).get("noisy_training")
    if not raw or not raw.get("enabled"):
        raise SystemExit("--maps received: this checkpoint's card records no enabled noisy_training "
                         "(trained on clean maps); fit it with --maps clean")
    return NoisyMapsConfig.from_dict(raw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--fit-scenes", type=int, default=2000)
    ap.add_argument("--prior", choices=("conditional", "unconditional"), default="conditional",
                    help="V: the residual covariance given the label fractions, or the scenes' covariance (M = 0)")
    ap.add_argument("--provenance", default=None,
                    help="where CHECKPOINT came from (e.g. a commit and path), recorded in the card with the fit")
    ap.add_argument("--maps", choices=("clean", "received"), default="clean",
                    help="label fractions of the clean maps, or of the maps after the checkpoint's noisy-training "
                         "corruption (channel mixture + FDS), the ones the receiver reads")
    ap.add_argument("--seed", type=int, default=0, help="seed of the corruption (--maps received)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model, card = load_checkpoint(args.checkpoint)
    added = model.mean_skip is None
    model = with_mean_path(model)
    card.unet = model.config
    h, w = card.resolution
    noisy = received_maps_config(card) if args.maps == "received" else None
    m, f = scene_means(args.fit_scenes, h, w, get_class_space(card.class_space), noisy=noisy, seed=args.seed)
    prior = fit_colour_prior(m, f)
    if args.prior == "unconditional":
        prior = type(prior)(M=torch.zeros_like(prior.M), V=prior.V_uncond, V_uncond=prior.V_uncond, scenes=prior.scenes)
    diffusion = GaussianDiffusion(card.diffusion)
    G, Q = bayes_mean_path(diffusion.alphas_cumprod, prior, h * w)
    errs = fit_mean_path(model, G, Q)
    s = (1 - diffusion.alphas_cumprod.double()).sqrt()
    times = (999, 900, 700, 500, 300)
    gains = {int(t): round(float(s[t] * G[t].diagonal().mean()), 4) for t in times}
    # along the grey direction (the same shift of all three channels), what colour_study's dc gain measures
    grey = {int(t): round(float(s[t] * G[t].sum(1).mean()), 4) for t in times}
    to255 = 127.5**2
    record = {
        "command": "python scripts/mean_path_fit.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "from": args.checkpoint, **({"provenance": args.provenance} if args.provenance else {}),
        "added_mean_path": added, "prior": args.prior, "maps": args.maps,
        **({"maps_seed": args.seed, "maps_corruption": noisy.to_dict()} if noisy is not None else {}),
        "fit_scenes": prior.scenes, "split": "train",
        "residual_var_255": [round(float(v) * to255, 1) for v in prior.V.diagonal()],
        "scene_var_255": [round(float(v) * to255, 1) for v in prior.V_uncond.diagonal()],
        "target_gain_s_G_diag_mean": gains, "target_grey_gain": grey, **{k: round(v, 6) for k, v in errs.items()},
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    card.training = {**card.training, "mean_path_fit": record}
    save_checkpoint(args.out, model, card)
    print(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
