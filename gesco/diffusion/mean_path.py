"""The Bayes-optimal mean-colour path and its direct fit into a U-Net (issue 24, item 3).

The U-Net's mean path (``UNetConfig.mean_skip``, :class:`~gesco.diffusion.unet.SpadeUNet`) adds

    eps_hat += G(t) mean(x_t) + Q(t) mean(y)

to the predicted noise, ``G(t)`` (C x C) and ``Q(t)`` (C x L) two linear maps of ``silu(temb(t))``.
Under a Gaussian prior on the clean image's per-channel mean colour given the label map,
``m0 | y ~ N(M mean(y), V)`` (``M``: C x L, a least-squares fit of the scene mean colour on the
label fractions; ``V``: C x C, the covariance of what that fit leaves), and
``mean(x_t) = a m0 + s mean(eps)`` with ``mean(eps) ~ N(0, I / N)`` (``a = sqrt(abar_t)``,
``s = sqrt(1 - abar_t)``, ``N = H W`` pixels), the posterior mean of the noise's mean is

    E[mean(eps) | mean(x_t), y] = G*(t) (mean(x_t) - a M mean(y)),
    G*(t) = (s / N) (a^2 V + (s^2 / N) I)^-1,          Q*(t) = -a G*(t) M.

With ``V = v0 I`` the gain along any direction is ``s G* = (s^2/N) / (a^2 v0 + s^2/N)``, the
``k*(t)`` of ``scripts/colour_study.py`` (docs/colour/README.md section 2). With the labels known
the right prior is the conditional one (``V`` the residual covariance given ``mean(y)``), not the
spread of scene colours over all scenes.

:func:`fit_mean_path` writes ``G*``, ``Q*`` into the two linear layers by least squares over
every integer time step (the layers are affine in ``silu(temb(t))``, so this is one linear
solve per layer; the rest of the network is untouched). A network trained without the path
(``mean_skip`` false, e.g. the CPU models of Table 5) first gets it, zero-initialised, from
:func:`with_mean_path`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from gesco.diffusion.unet import MEAN_PATH_PREFIXES, SpadeUNet, timestep_embedding


@dataclass(frozen=True)
class ColourPrior:
    """The scene mean colour given the label fractions, in [-1, 1] pixel units.

    Attributes:
        M: ``(C, L)`` float64, ``mean colour ~= M @ mean(y)``.
        V: ``(C, C)`` float64, covariance of the residual ``m0 - M mean(y)``.
        V_uncond: ``(C, C)`` float64, covariance of ``m0`` over the scenes (no labels).
        scenes: scenes the fit used.
    """

    M: torch.Tensor
    V: torch.Tensor
    V_uncond: torch.Tensor
    scenes: int


def fit_colour_prior(images: torch.Tensor, cond: torch.Tensor, ridge: float = 1e-6) -> ColourPrior:
    """Least-squares ``M`` and residual covariance ``V`` from scenes.

    Args:
        images: ``(B, C, H, W)`` in [-1, 1].
        cond: ``(B, L, H, W)`` the clean conditioning (class one-hots + edge map).
        ridge: Tikhonov term on ``M`` (label channels absent from every scene stay 0).
    """
    m = images.double().mean((2, 3))  # (B, C)
    f = cond.double().mean((2, 3))  # (B, L)
    gram = f.T @ f + ridge * torch.eye(f.shape[1], dtype=torch.float64)
    M = torch.linalg.solve(gram, f.T @ m).T  # (C, L)
    r = m - f @ M.T
    return ColourPrior(M=M, V=torch.cov(r.T), V_uncond=torch.cov(m.T), scenes=int(m.shape[0]))


def bayes_mean_path(alphas_cumprod: torch.Tensor, prior: ColourPrior, n_pix: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``G*(t)`` ``(T, C, C)`` and ``Q*(t)`` ``(T, C, L)`` (float64) for every step ``t`` (module docstring)."""
    abar = alphas_cumprod.double()
    a, s = abar.sqrt(), (1.0 - abar).sqrt()
    c = prior.V.shape[0]
    eye = torch.eye(c, dtype=torch.float64)
    cov_m = a[:, None, None] ** 2 * prior.V + (s[:, None, None] ** 2 / n_pix) * eye  # Var(mean(x_t))
    G = (s[:, None, None] / n_pix) * torch.linalg.inv(cov_m)
    Q = -a[:, None, None] * G @ prior.M
    return G, Q


def with_mean_path(model: SpadeUNet) -> SpadeUNet:
    """``model`` itself when it has a mean path; else a copy with one, zero-initialised.

    The copy's config is ``model.config`` with ``mean_skip=True``; every other weight is
    ``model``'s (so the copy computes exactly what ``model`` does until the path is fitted).
    The same rule as a warm start with ``--set unet.mean_skip=true``
    (:func:`gesco.train.diffusion.warm_start`).
    """
    if model.mean_skip is not None:
        return model
    new = SpadeUNet(replace(model.config, mean_skip=True))
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith(MEAN_PATH_PREFIXES) for k in missing):  # only if SpadeUNet changes
        raise ValueError(f"adding a mean path: missing weights {missing}, unexpected {unexpected}")
    return new.to(next(model.parameters()).device).train(model.training)


@torch.no_grad()
def fit_mean_path(model: SpadeUNet, G: torch.Tensor, Q: torch.Tensor) -> dict[str, float]:
    """Least-squares fit of ``model.mean_skip`` / ``model.mean_prior`` to ``G``, ``Q`` over ``t = 0..T-1``.

    Returns ``max_abs_err_G`` / ``max_abs_err_Q``, the largest absolute error of the fitted maps
    over the steps, beside ``max_abs_G`` / ``max_abs_Q``, the targets' largest entries. The
    whole network's gain (this path plus the rest's border leak) is measured by the caller
    (``scripts/colour_study.py``).
    """
    if model.mean_skip is None or model.mean_prior is None:
        raise ValueError("the model has no mean path (UNetConfig.mean_skip is false)")
    steps = G.shape[0]
    t = torch.arange(steps)
    e = F.silu(model.time_embed(timestep_embedding(t, model.config.base_channels))).double()  # (T, E)
    X = torch.cat([e, torch.ones(steps, 1, dtype=torch.float64)], dim=1)  # (T, E + 1)
    errors = {}
    for layer, target, name in ((model.mean_skip, G, "G"), (model.mean_prior, Q, "Q")):
        Y = target.reshape(steps, -1)  # row-major, as the forward's .view(-1, C, K)
        # (E + 1, C*K); "+ 0.0" turns the -0.0 that lstsq gives in the all-zero columns (label
        # channels no scene has) into +0.0, so that a rebuild writes the same bytes
        sol = torch.linalg.lstsq(X, Y).solution + 0.0
        layer.weight.copy_(sol[:-1].T.to(layer.weight.dtype))
        layer.bias.copy_(sol[-1].to(layer.bias.dtype))
        errors[f"max_abs_err_{name}"] = float((X @ sol - Y).abs().max())
        errors[f"max_abs_{name}"] = float(Y.abs().max())
    return errors
