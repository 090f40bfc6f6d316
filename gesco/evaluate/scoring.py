"""The per-image metrics of an evaluation (:class:`Scorers`) and the models behind them
(:func:`load_scorers`): segmenter mIoU, LPIPS, SSIM, colour errors, Frechet features.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from gesco.errors import CheckpointError
from gesco.evaluate.config import EvalConfig
from gesco.evaluate.metrics import LPIPS, AlexNetRelu5Features, FrechetScorer, MeanIoU, colour_errors, ssim
from gesco.semantics.classes import ClassSpace


def file_digest(path: str | Path) -> str | None:
    """First 16 hex digits of the SHA-256 of a weights file (a stem: its ``.safetensors``)."""
    p = Path(path)
    for candidate in (p, p.with_suffix(".safetensors"), Path(str(p) + ".safetensors")):
        if candidate.is_file():
            h = hashlib.sha256()
            with open(candidate, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            return h.hexdigest()[:16]
    return None


# --------------------------------------------------------------------------- scoring
class SegmenterLike(Protocol):
    """What the evaluation needs of a segmenter (:class:`gesco.segment.Segmenter`)."""

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float in ``[-1, 1]`` -> ``(B, H, W)`` int64 label ids."""
        ...


class Scorers:
    """The per-image metrics: segmenter mIoU, LPIPS, SSIM, colour errors and Frechet features.

    Args:
        segmenter: predicts label maps of generated images (the mIoU evaluator).
        space: the class space of the label maps.
        lpips: an :class:`~gesco.evaluate.metrics.LPIPS` module.
        frechet: a :class:`~gesco.evaluate.metrics.FrechetScorer` (its feature extractor is used).
        device: where the metric networks run.
    """

    def __init__(self, segmenter: SegmenterLike, space: ClassSpace, lpips: LPIPS, frechet: FrechetScorer,
                 device: torch.device) -> None:
        self.segmenter, self.space, self.device = segmenter, space, device
        self.lpips = lpips.to(device)
        self.extractor = frechet.extractor
        if isinstance(self.extractor, torch.nn.Module):
            self.extractor = self.extractor.to(device)
        self.feature_space = {"key": self.extractor.key, "name": self.extractor.name, "dim": int(self.extractor.dim)}

    @torch.no_grad()
    def score(self, images: torch.Tensor, real: torch.Tensor, labels: torch.Tensor) -> tuple[list[dict], np.ndarray]:
        """Per-image metrics of a batch.

        Args:
            images: ``(B, 3, H, W)`` float in ``[-1, 1]``: the received / generated images.
            real: ``(B, 3, H, W)`` float in ``[-1, 1]``: the scenes' real images.
            labels: ``(B, H, W)`` int64: the transmitted label maps.
        Returns:
            ``(metrics, features)``: one dict per image with ``miou`` (mean IoU over the
            classes present in that image's target or prediction, ``None`` if none),
            ``confusion`` (sparse ``{target * C + predicted: pixels}``), ``lpips``,
            ``ssim``, ``mean_colour_error``, ``class_colour_error`` (0-255 units, ``None``
            when no class of the label map has ``MIN_CLASS_PIXELS`` pixels) and
            ``class_colour`` (``{"<label id>": [error, pixels]}``), all against ``real``
            (:func:`~gesco.evaluate.metrics.colour_errors`; 0 for the real row by
            construction, computed like every other row); and the ``(B, D)`` float32
            Frechet features of ``images``.
        """
        x = images.to(self.device, torch.float32).clamp(-1.0, 1.0)
        y = real.to(self.device, torch.float32)
        predicted = self.segmenter.predict(x).cpu()
        lp = self.lpips(x, y).float().cpu()
        ss = ssim((x + 1.0) / 2.0, (y + 1.0) / 2.0).float().cpu()  # SSIM takes [0, 1]
        feats = self.extractor(x).float().cpu().numpy()
        colour = colour_errors(x, y, labels, value_range=(-1.0, 1.0)).records()
        out = []
        for b in range(x.shape[0]):
            scorer = MeanIoU(self.space)
            scorer.update(predicted[b], labels[b])
            miou = scorer.compute().miou
            nz = np.flatnonzero(scorer.confusion)
            out.append({
                "miou": None if np.isnan(miou) else float(miou),
                "confusion": {str(int(k)): int(scorer.confusion.flat[k]) for k in nz},
                "lpips": float(lp[b]),
                "ssim": float(ss[b]),
                **colour[b],
            })
        return out, feats




def load_scorers(config: EvalConfig, device: torch.device, space: ClassSpace,
                 segmenter: SegmenterLike | None = None) -> tuple[Scorers, dict[str, Any]]:
    """The metric models and a description of them (for the store's settings)."""
    if segmenter is None:
        from gesco.segment import load_segmenter

        segmenter = load_segmenter(config.segmenter, device=device)
    seg_space = getattr(segmenter, "class_space", space)
    if seg_space.name != space.name:
        raise CheckpointError(f"the segmenter predicts {seg_space.name} ids, the scenes use {space.name}")
    lpips = LPIPS.load(config.lpips_weights)
    # the substitute feature space is the AlexNet inside LPIPS (= FrechetScorer.substitute(), loaded once)
    frechet = FrechetScorer.fid(config.inception) if config.inception else FrechetScorer(AlexNetRelu5Features(lpips.features))
    scorers = Scorers(segmenter, space, lpips, frechet, device)
    source = str(getattr(segmenter, "source", "") or config.segmenter or "in-memory")
    described = {
        "segmenter": source,
        "segmenter_sha256": file_digest(source) if source != "in-memory" else None,
        "feature_space": scorers.feature_space["key"],
        "inception_sha256": file_digest(config.inception) if config.inception else None,
        "lpips_sha256": file_digest(config.lpips_weights) if config.lpips_weights else "shipped",
    }
    return scorers, described
