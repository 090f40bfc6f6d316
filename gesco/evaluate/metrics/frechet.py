"""Frechet distance between two sets of images in a feature space (FID and a substitute).

Fit a Gaussian ``N(mu, Sigma)`` to the features of each set; the Frechet (2-Wasserstein)
distance of the two Gaussians is (Dowson & Landau 1982; Heusel et al. 2017 for FID)::

    d^2 = ||mu_1 - mu_2||^2 + Tr(Sigma_1) + Tr(Sigma_2) - 2 Tr((Sigma_1 Sigma_2)^{1/2})

Feature spaces:

* ``"fid"``: the standard FID, Inception-v3 pool3 (2048-d) with pytorch-fid's weights,
  ONLY when the user supplies that weights file (:class:`InceptionFeatures`).
* ``"fd-alexnet"``: the default here, a named SUBSTITUTE, not FID:
  "FD-AlexNet-relu5 (substitute; not FID)", the global average of relu5 (256-d) of the
  ImageNet AlexNet that LPIPS uses, on images resized to 224x224
  (:class:`AlexNetRelu5Features`). Its values are not comparable with published FIDs.

Every result (:class:`FrechetResult`) carries its feature space's key and name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gesco.errors import DTypeError, GescoInputError, ShapeError
from gesco.evaluate.metrics.inception import FID_FEATURE_DIM, FIDInceptionV3
from gesco.evaluate.metrics.lpips import LPIPS, AlexNetFeatures, scale_input

FD_ALEXNET_KEY = "fd-alexnet"
FD_ALEXNET_NAME = "FD-AlexNet-relu5 (substitute; not FID)"
FID_KEY = "fid"
FID_NAME = "FID (Inception-v3 pool3, pytorch-fid weights)"
ALEXNET_INPUT_SIZE = 224


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh((matrix + matrix.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance of ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (the squared form, as FID).

    ``Tr((S1 S2)^{1/2})`` is computed as ``sum sqrt(eig(S1^{1/2} S2 S1^{1/2}))`` (same
    eigenvalues as ``S1 S2``; symmetric, so no complex round-off as with ``sqrtm``).

    Args:
        mu1, mu2: ``(D,)`` means.
        sigma1, sigma2: ``(D, D)`` symmetric positive semi-definite covariances.
    Returns:
        ``d^2 >= 0`` as a Python float (round-off below 0 is clipped to 0).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ShapeError(
            f"frechet_distance needs mu (D,) and sigma (D, D) of one D; got {mu1.shape}, {sigma1.shape}, "
            f"{mu2.shape}, {sigma2.shape}"
        )
    for name, a in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.all(np.isfinite(a)):
            raise GescoInputError(f"frechet_distance: {name} holds NaN or infinite values")
    root1 = _sqrtm_psd(sigma1)
    inner = root1 @ sigma2 @ root1
    tr_covmean = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None))))
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    return max(value, 0.0)


class FeatureStatistics:
    """Running mean and covariance of feature vectors, merged batch by batch (Chan et al.).

    ``update`` takes ``(N, D)`` features; ``mean_cov`` returns ``mu (D,)`` and the
    unbiased covariance ``(D, D)`` (divisor ``n - 1``, as ``numpy.cov`` and pytorch-fid),
    all float64.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.count = 0
        self._mean = np.zeros(dim, dtype=np.float64)
        self._scatter = np.zeros((dim, dim), dtype=np.float64)  # sum of outer products of deviations

    def update(self, features: np.ndarray | torch.Tensor) -> None:
        if isinstance(features, torch.Tensor):
            features = features.detach().cpu().numpy()
        f = np.asarray(features, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ShapeError(f"features must have shape (N, {self.dim}), got {f.shape}")
        n_b = f.shape[0]
        if n_b == 0:
            return
        mean_b = f.mean(axis=0)
        centred = f - mean_b
        scatter_b = centred.T @ centred
        n_a, n = self.count, self.count + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._scatter = self._scatter + scatter_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        if self.count < 2:
            raise GescoInputError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        return self._mean.copy(), self._scatter / (self.count - 1)


class FeatureExtractor(Protocol):
    """What :class:`FrechetScorer` needs of a feature space."""

    key: str  # short id stored in results: "fid" or "fd-alexnet"
    name: str  # human-readable name, says whether it is the standard FID
    dim: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float in ``[-1, 1]`` -> ``(B, dim)`` features."""
        ...


def _check_batch(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise DTypeError(f"images must be a float torch.Tensor, got {getattr(images, 'dtype', type(images))}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ShapeError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if images.numel() and (float(images.min()) < -1.001 or float(images.max()) > 1.001):
        raise GescoInputError(
            f"images must lie in [-1, 1], got [{float(images.min()):.4g}, {float(images.max()):.4g}]"
        )


class AlexNetRelu5Features(nn.Module):
    """The substitute feature space "FD-AlexNet-relu5 (substitute; not FID)".

    Images in ``[-1, 1]`` are resized to 224x224 (bilinear, antialiased when shrinking),
    normalised with LPIPS's scaling layer, run through LPIPS's ImageNet AlexNet and
    relu5 ``(B, 256, 13, 13)`` is averaged over positions: ``(B, 256)`` float32.
    """

    key = FD_ALEXNET_KEY
    name = FD_ALEXNET_NAME
    dim = 256

    def __init__(self, backbone: AlexNetFeatures) -> None:
        super().__init__()
        self.backbone = backbone

    @classmethod
    def load(cls, lpips_weights: str | Path | None = None) -> AlexNetRelu5Features:
        """Use the AlexNet of the LPIPS weights file (default: the shipped asset)."""
        return cls(LPIPS.load(lpips_weights).features)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_batch(images)
        x = F.interpolate(images.float(), size=(ALEXNET_INPUT_SIZE, ALEXNET_INPUT_SIZE), mode="bilinear",
                          align_corners=False, antialias=True)
        return self.backbone(scale_input(x))[-1].mean(dim=(2, 3))


class InceptionFeatures(nn.Module):
    """The standard FID feature space (Inception-v3 pool3, 2048-d); needs the user's weights."""

    key = FID_KEY
    name = FID_NAME
    dim = FID_FEATURE_DIM

    def __init__(self, network: FIDInceptionV3) -> None:
        super().__init__()
        self.network = network

    @classmethod
    def load(cls, weights: str | Path) -> InceptionFeatures:
        """``weights``: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (or a safetensors copy)."""
        return cls(FIDInceptionV3.load(weights))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_batch(images)
        return self.network(images.float())


@dataclass(frozen=True)
class FrechetResult:
    """A Frechet distance and the feature space it was measured in.

    ``metric`` is ``"fid"`` only for the standard Inception features; report any other
    value under its own name (``feature_space``), never as FID.
    """

    value: float
    metric: str
    feature_space: str
    is_standard_fid: bool
    feature_dim: int
    n_real: int
    n_fake: int

    def as_dict(self) -> dict:
        return asdict(self)


class FrechetScorer:
    """Streaming Frechet distance between real and generated images.

    Usage::

        scorer = FrechetScorer.substitute()          # or FrechetScorer.fid("pt_inception-....pth")
        for real, fake in batches:                   # (B, 3, H, W) float in [-1, 1]
            scorer.update(real, real=True)
            scorer.update(fake, real=False)
        result = scorer.compute()                    # FrechetResult
    """

    def __init__(self, extractor: FeatureExtractor, batch_size: int = 32) -> None:
        self.extractor = extractor
        self.batch_size = batch_size
        self.real = FeatureStatistics(extractor.dim)
        self.fake = FeatureStatistics(extractor.dim)

    @classmethod
    def substitute(cls, lpips_weights: str | Path | None = None) -> FrechetScorer:
        """FD-AlexNet-relu5 (substitute; not FID), from the shipped LPIPS AlexNet."""
        return cls(AlexNetRelu5Features.load(lpips_weights))

    @classmethod
    def fid(cls, inception_weights: str | Path) -> FrechetScorer:
        """The standard FID; raises :class:`CheckpointError` when the weights file is missing."""
        return cls(InceptionFeatures.load(inception_weights))

    def update(self, images: torch.Tensor, *, real: bool) -> None:
        """Add a batch ``(B, 3, H, W)`` float in ``[-1, 1]`` to the real or the generated set."""
        _check_batch(images)
        stats = self.real if real else self.fake
        for start in range(0, images.shape[0], self.batch_size):
            stats.update(self.extractor(images[start:start + self.batch_size]))

    def compute(self) -> FrechetResult:
        """Frechet distance of the two sets seen so far (each needs >= 2 images)."""
        mu_r, sigma_r = self.real.mean_cov()
        mu_f, sigma_f = self.fake.mean_cov()
        return FrechetResult(
            value=frechet_distance(mu_r, sigma_r, mu_f, sigma_f),
            metric=self.extractor.key,
            feature_space=self.extractor.name,
            is_standard_fid=self.extractor.key == FID_KEY,
            feature_dim=self.extractor.dim,
            n_real=self.real.count,
            n_fake=self.fake.count,
        )
