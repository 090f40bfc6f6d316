"""Fitting an upload of any aspect ratio to the model's ``H x W``, never silently.

Three modes (the sender's ``GESCO_SENDER_ASPECT``):

* ``"crop"`` (default): the largest centred region of the upload with the model's aspect
  ratio ``W / H`` is kept and resized; a 512x512 photo for a 64x128 (H x W) model keeps its
  middle 256 rows (``[128, 384)``), all 512 columns.
* ``"letterbox"``: the whole upload is scaled by ``s = min(H / h, W / w)`` to
  ``round(h s) x round(w s)`` and centred on an ``H x W`` canvas; the bars are black in the
  image and :data:`PAD_LABEL` (``0``, "unlabeled") in the label and instance maps.
* ``"stretch"``: resized to ``H x W`` whatever its ratio (distorts the content).

When the ratios agree within :data:`RATIO_TOLERANCE` every mode is a plain resize and the
report says ``adjusted = False``. Resizing itself is :func:`gesco.data.transforms.resize_image`
(area when shrinking) and :func:`~gesco.data.transforms.resize_labels` (nearest).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gesco.data.transforms import resize_image, resize_labels
from gesco.errors import GescoInputError

ASPECT_MODES: tuple[str, ...] = ("crop", "letterbox", "stretch")
DEFAULT_ASPECT = "crop"
#: relative difference of ``w / h`` and ``W / H`` under which no adjustment is needed (1 %)
RATIO_TOLERANCE = 0.01
#: label (and instance) id of the letterbox bars: Cityscapes' "unlabeled"
PAD_LABEL = 0

Box = tuple[int, int, int, int]  # [top, left, bottom, right)


@dataclass(frozen=True)
class AspectReport:
    """What :func:`fit_aspect` did.

    Attributes:
        mode: the mode asked for (``"crop"``, ``"letterbox"``, ``"stretch"``).
        source_size: ``(h, w)`` of the upload.
        model_size: ``(H, W)`` of the result.
        adjusted: the ratios differed (so ``mode`` changed what is sent).
        source_box: ``[top, left, bottom, right)`` of the upload that was kept.
        content_box: ``[top, left, bottom, right)`` of the ``H x W`` result holding the upload.
        note: one sentence for the user.
    """

    mode: str
    source_size: tuple[int, int]
    model_size: tuple[int, int]
    adjusted: bool
    source_box: Box
    content_box: Box
    note: str = field(default="")

    def content_mask(self) -> np.ndarray:
        """``(H, W)`` bool, true where the result holds the upload (false on letterbox bars)."""
        mask = np.zeros(self.model_size, dtype=bool)
        top, left, bottom, right = self.content_box
        mask[top:bottom, left:right] = True
        return mask


def check_aspect_mode(mode: str) -> str:
    """``mode`` itself, or :class:`GescoInputError` naming the known modes."""
    if mode not in ASPECT_MODES:
        raise GescoInputError(f"aspect mode must be one of {list(ASPECT_MODES)}, got {mode!r}")
    return mode


def plan_aspect(source_size: tuple[int, int], model_size: tuple[int, int], mode: str = DEFAULT_ASPECT) -> AspectReport:
    """Where the upload goes, without touching pixels (see the module docstring for the rules)."""
    check_aspect_mode(mode)
    h, w = (int(v) for v in source_size)
    H, W = (int(v) for v in model_size)
    full_src: Box = (0, 0, h, w)
    full_dst: Box = (0, 0, H, W)
    adjusted = abs((w / h) / (W / H) - 1.0) > RATIO_TOLERANCE
    size = f"{h}x{w}"  # H x W everywhere, as the model is 64x128
    model = f"{H}x{W}"
    if not adjusted:
        return AspectReport(mode, (h, w), (H, W), False, full_src, full_dst,
                            f"the {size} upload has the model's aspect ratio; resized to {model}")
    if mode == "stretch":
        return AspectReport(mode, (h, w), (H, W), True, full_src, full_dst,
                            f"the {size} upload was stretched to {model} (aspect ratio {w / h:.2f} -> {W / H:.2f}, distorted)")
    if mode == "crop":
        if w * H > W * h:  # wider than the model: keep the middle columns
            cw = max(1, min(w, round(h * W / H)))
            left = (w - cw) // 2
            box: Box = (0, left, h, left + cw)
            what = f"columns {left}-{left + cw} of {w}"
        else:  # taller: keep the middle rows
            ch = max(1, min(h, round(w * H / W)))
            top = (h - ch) // 2
            box = (top, 0, top + ch, w)
            what = f"rows {top}-{top + ch} of {h}"
        kept = (box[2] - box[0]) * (box[3] - box[1]) / (h * w)
        return AspectReport(mode, (h, w), (H, W), True, box, full_dst,
                            f"the {size} upload was centre-cropped to {what} ({100 * kept:.0f} % of it) to fit {model}")
    s = min(H / h, W / w)
    nh, nw = max(1, min(H, round(h * s))), max(1, min(W, round(w * s)))
    top, left = (H - nh) // 2, (W - nw) // 2
    content: Box = (top, left, top + nh, left + nw)
    return AspectReport(mode, (h, w), (H, W), True, full_src, content,
                        f"the {size} upload was letterboxed: scaled to {nh}x{nw} and centred in {model} "
                        f"(bars are black, label {PAD_LABEL})")


def fit_aspect(
    image: np.ndarray,
    label: np.ndarray | None,
    instance: np.ndarray | None,
    model_size: tuple[int, int],
    mode: str = DEFAULT_ASPECT,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, AspectReport]:
    """Fit an upload (and its maps) to ``model_size``.

    Args:
        image: ``(h, w, 3)`` uint8 RGB.
        label, instance: optional ``(h, w)`` integer maps (same size as the image).
        model_size: ``(H, W)``.
        mode: ``"crop"``, ``"letterbox"`` or ``"stretch"``.
    Returns:
        ``(image (H, W, 3) uint8, label (H, W) or None, instance (H, W) or None, report)``;
        the maps keep their dtype.
    """
    report = plan_aspect(image.shape[:2], model_size, mode)
    H, W = report.model_size
    top, left, bottom, right = report.source_box
    image = image[top:bottom, left:right]
    label = None if label is None else label[top:bottom, left:right]
    instance = None if instance is None else instance[top:bottom, left:right]
    ct, cl, cb, cr = report.content_box
    ch, cw = cb - ct, cr - cl
    image = resize_image(np.ascontiguousarray(image), ch, cw)
    label = None if label is None else resize_labels(label, ch, cw)
    instance = None if instance is None else resize_labels(instance, ch, cw)
    if (ch, cw) != (H, W):
        image = _pad(image, report, 0)
        label = None if label is None else _pad(label, report, PAD_LABEL)
        instance = None if instance is None else _pad(instance, report, 0)
    return image, label, instance, report


def _pad(a: np.ndarray, report: AspectReport, value: int) -> np.ndarray:
    out = np.full((*report.model_size, *a.shape[2:]), value, dtype=a.dtype)
    top, left, bottom, right = report.content_box
    out[top:bottom, left:right] = a
    return out
