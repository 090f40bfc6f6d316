"""mIoU for the evaluation: :mod:`gesco.semantics.miou` (a leaf module, so that the segmenter's
own scoring, :mod:`gesco.segment.evaluate`, does not import the evaluation package)."""

from gesco.semantics.miou import MeanIoU, MIoUResult, mean_iou

__all__ = ["MeanIoU", "MIoUResult", "mean_iou"]
