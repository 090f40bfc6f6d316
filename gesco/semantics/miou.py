"""Mean intersection over union (mIoU) of predicted label maps, accumulated over a data set.

As the Cityscapes benchmark (``cityscapesscripts`` ``evalPixelLevelSemanticLabeling``):
one confusion matrix ``M[target, prediction]`` is summed over ALL evaluated pixels of
ALL images, then for every scored class ``c`` (``ClassSpace.eval_ids``)::

    TP_c = M[c, c]
    FN_c = sum_p M[c, p] - TP_c          (target c, predicted anything else)
    FP_c = sum_t M[t, c] - TP_c          (predicted c on a pixel whose target is scored)
    IoU_c = TP_c / (TP_c + FP_c + FN_c)
    mIoU = mean of IoU_c over the classes with TP_c + FP_c + FN_c > 0

Pixels whose target is an ignored id (``ClassSpace.ignore_ids``, e.g. Cityscapes'
"unlabeled") are not counted at all. A prediction of an ignored id on a scored pixel is
a miss (``FN`` of the target class) but no one's ``FP``. Classes absent from both the
targets and the predictions of the whole evaluated set have no IoU (``None``) and do not
enter the mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gesco.errors import DTypeError, ShapeError
from gesco.semantics.classes import ClassSpace


@dataclass(frozen=True)
class MIoUResult:
    """mIoU over the classes present in the evaluated set, and each scored class's IoU.

    Attributes:
        miou: mean IoU (``nan`` when no scored class appeared at all).
        per_class: ``{label id: IoU or None}`` for every id in ``ClassSpace.eval_ids``;
            ``None`` for classes absent from both targets and predictions.
        class_names: ``{label id: name}`` for the same ids.
        pixels: number of pixels counted (targets with a scored id).
    """

    miou: float
    per_class: dict[int, float | None]
    class_names: dict[int, str]
    pixels: int

    def as_dict(self) -> dict:
        return {
            "miou": self.miou,
            "per_class": {self.class_names[k]: v for k, v in self.per_class.items()},
            "pixels": self.pixels,
        }


def _as_int_array(labels: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise DTypeError(f"{what} must hold integer label ids, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ShapeError(f"{what} must have shape (H, W) or (B, H, W), got {arr.shape}")
    return arr.astype(np.int64, copy=False)


class MeanIoU:
    """Accumulates a confusion matrix over batches of label maps; :meth:`compute` gives mIoU.

    ``update(prediction, target)`` takes integer label-id maps of one shape, ``(H, W)``
    or ``(B, H, W)`` (numpy or torch), ids in ``[0, num_classes)`` of the class space.
    """

    def __init__(self, class_space: ClassSpace) -> None:
        self.class_space = class_space
        n = class_space.num_classes
        self.confusion = np.zeros((n, n), dtype=np.int64)  # [target id, predicted id]
        self._scored = np.zeros(n, dtype=bool)
        self._scored[class_space.eval_ids] = True

    def update(self, prediction: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> None:
        pred = _as_int_array(prediction, "prediction")
        tgt = _as_int_array(target, "target")
        if pred.shape != tgt.shape:
            raise ShapeError(f"prediction {pred.shape} and target {tgt.shape} must have the same shape")
        self.class_space.check_ids(pred, "prediction")
        self.class_space.check_ids(tgt, "target")
        keep = self._scored[tgt]
        n = self.class_space.num_classes
        pairs = tgt[keep] * n + pred[keep]
        self.confusion += np.bincount(pairs, minlength=n * n).reshape(n, n)

    def compute(self) -> MIoUResult:
        """IoU of every scored class and their mean, over everything seen so far."""
        cm = self.confusion
        tp = np.diag(cm).astype(np.float64)
        fn = cm.sum(axis=1) - tp
        fp = cm.sum(axis=0) - tp  # rows are scored targets only (the rest was never counted)
        per_class: dict[int, float | None] = {}
        for c in self.class_space.eval_ids:
            denom = tp[c] + fp[c] + fn[c]
            per_class[c] = float(tp[c] / denom) if denom > 0 else None
        present = [v for v in per_class.values() if v is not None]
        return MIoUResult(
            miou=float(np.mean(present)) if present else float("nan"),
            per_class=per_class,
            class_names={c: self.class_space.names[c] for c in self.class_space.eval_ids},
            pixels=int(cm.sum()),
        )

    def reset(self) -> None:
        self.confusion[:] = 0


def mean_iou(prediction: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor,
             class_space: ClassSpace) -> MIoUResult:
    """One-shot :class:`MeanIoU` over the given maps (the whole batch is one data set)."""
    scorer = MeanIoU(class_space)
    scorer.update(prediction, target)
    return scorer.compute()

