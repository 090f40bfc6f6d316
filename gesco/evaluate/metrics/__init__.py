"""Image-quality metrics of the evaluation: LPIPS, SSIM, Frechet distance, mIoU, colour errors.

Input conventions (see ``docs/metrics.md``):

* LPIPS and the Frechet feature extractors: ``(B, 3, H, W)`` float RGB in ``[-1, 1]``;
* SSIM: ``(B, C, H, W)`` float in ``[0, data_range]`` (``[0, 1]`` by default);
* mIoU: integer label-id maps ``(H, W)`` or ``(B, H, W)`` of a :class:`ClassSpace`;
* colour errors: ``(B, 3, H, W)`` float in ``value_range`` (``[-1, 1]`` by default) or
  ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8, with the sent label maps ``(B, H, W)``; 0-255 units.

The default Frechet distance is the SUBSTITUTE "FD-AlexNet-relu5 (substitute; not FID)";
the standard FID needs the user's Inception weights file (:meth:`FrechetScorer.fid`).
"""

from gesco.evaluate.metrics.colour import MIN_CLASS_PIXELS, ColourErrors, colour_errors
from gesco.evaluate.metrics.frechet import (
    FD_ALEXNET_KEY,
    FD_ALEXNET_NAME,
    FID_KEY,
    FID_NAME,
    AlexNetRelu5Features,
    FeatureStatistics,
    FrechetResult,
    FrechetScorer,
    InceptionFeatures,
    frechet_distance,
)
from gesco.evaluate.metrics.lpips import DEFAULT_LPIPS_WEIGHTS, LPIPS
from gesco.evaluate.metrics.ssim import ssim
from gesco.semantics.miou import MeanIoU, MIoUResult, mean_iou

__all__ = [
    "DEFAULT_LPIPS_WEIGHTS",
    "FD_ALEXNET_KEY",
    "FD_ALEXNET_NAME",
    "FID_KEY",
    "FID_NAME",
    "LPIPS",
    "MIN_CLASS_PIXELS",
    "AlexNetRelu5Features",
    "ColourErrors",
    "FeatureStatistics",
    "FrechetResult",
    "FrechetScorer",
    "InceptionFeatures",
    "MIoUResult",
    "MeanIoU",
    "colour_errors",
    "frechet_distance",
    "mean_iou",
    "ssim",
]
