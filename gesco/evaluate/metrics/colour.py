"""Colour fidelity of a generated image against the sent image: whole-image and per-class colour errors.

mIoU scores the layout and LPIPS / SSIM local structure; neither shows clearly a colour
cast over the whole image (a generated scene with the right layout but every colour
shifted). These two figures do, in 0-255 RGB units, per image ``g`` (generated) against
the sent image ``s`` (the real scene) with the sent label map ``L``:

* ``mean_colour_error``: the Euclidean distance between the two images' mean colours
  (the whole-image colour cast)::

      m_x = (1 / HW) sum_p x[p]            (a 3-vector: mean R, G, B of image x)
      mean_colour_error = || m_g - m_s ||_2

* ``class_colour_error``: for every class ``c`` with ``n_c = |{p : L[p] = c}| >= k``
  pixels in the sent label map (``k = min_pixels``, :data:`MIN_CLASS_PIXELS` = 16 by
  default; smaller regions are too small for a stable mean and are left out), the same
  distance over that class's pixels only, then the pixel-weighted mean over those classes::

      m_x^c = (1 / n_c) sum_{p : L[p] = c} x[p]
      e_c = || m_g^c - m_s^c ||_2
      class_colour_error = sum_c n_c e_c / sum_c n_c

  It is ``None`` (``nan`` in the arrays) when no class has ``k`` pixels. Each class's
  ``e_c`` and ``n_c`` are kept (:attr:`ColourErrors.per_class`) for a per-class table.

Both are 0 for identical images, and both equal ``||d||`` when ``g = s + d`` for a constant
colour offset ``d`` (e.g. 10 for ``d = (10, 0, 0)``). A wrong colour in one class moves
that class's ``e_c`` only (and the whole-image mean by its pixel share). When every pixel
belongs to a scored class, the per-class error is never smaller than the whole-image one
(``m_g - m_s = sum_c (n_c / HW) (m_g^c - m_s^c)`` and the triangle inequality): a per-class
error well above the whole-image one means colours wrong region by region, not one global cast.

Inputs (as the other metrics take images, plus the sent image's form):

* float images ``(B, 3, H, W)`` (torch or numpy) with values in ``value_range``,
  ``[-1, 1]`` by default as LPIPS and the generator's output; scaled to 0-255 by
  ``255 (x - lo) / (hi - lo)``;
* uint8 images ``(H, W, 3)`` or ``(B, H, W, 3)`` (torch or numpy), 0-255 RGB as stored in
  the scenes and PNGs (``value_range`` is ignored);
* label maps ``(H, W)`` or ``(B, H, W)`` of integer label ids (any class space; ids
  ``>= 0``), the SENT map (the real scene's), one per image.

Both images of a pair must have the same form. Computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from gesco.errors import DTypeError, GescoInputError, ShapeError

#: the fewest pixels a class needs in the sent label map to enter ``class_colour_error``
MIN_CLASS_PIXELS = 16


@dataclass(frozen=True)
class ColourErrors:
    """The colour errors of a batch of ``B`` image pairs (0-255 RGB units).

    Attributes:
        mean_colour_error: ``(B,)`` float64: distance of the whole-image mean colours.
        class_colour_error: ``(B,)`` float64: pixel-weighted mean of the per-class
            distances (``nan`` for an image with no class of ``min_pixels`` pixels).
        per_class: one dict per image, ``{label id: (e_c, n_c)}`` over the classes
            that entered ``class_colour_error``.
        min_pixels: the ``k`` used.
    """

    mean_colour_error: np.ndarray
    class_colour_error: np.ndarray
    per_class: list[dict[int, tuple[float, int]]] = field(default_factory=list)
    min_pixels: int = MIN_CLASS_PIXELS

    def records(self) -> list[dict]:
        """Per image, the JSON-ready numbers the evaluation stores.

        ``{"mean_colour_error": float, "class_colour_error": float | None,
        "class_colour": {"<label id>": [e_c, n_c], ...}}``.
        """
        out = []
        for b in range(len(self.mean_colour_error)):
            cls = float(self.class_colour_error[b])
            out.append({
                "mean_colour_error": float(self.mean_colour_error[b]),
                "class_colour_error": cls if np.isfinite(cls) else None,
                "class_colour": {str(c): [float(e), int(n)] for c, (e, n) in sorted(self.per_class[b].items())},
            })
        return out


def _to_rgb255(images: np.ndarray | torch.Tensor, value_range: tuple[float, float], what: str) -> np.ndarray:
    """``(B, H, W, 3)`` float64 in 0-255 from either accepted form."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    x = np.asarray(images)
    if x.dtype == np.uint8:
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ShapeError(f"colour error {what}: uint8 images must be (H, W, 3) or (B, H, W, 3), got {x.shape}")
        return x.astype(np.float64)
    if not np.issubdtype(x.dtype, np.floating):
        raise DTypeError(f"colour error {what}: expected uint8 (H, W, 3) / (B, H, W, 3) or float (B, 3, H, W) "
                         f"images, got dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ShapeError(f"colour error {what}: float images must be (B, 3, H, W), got {x.shape}")
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise GescoInputError(f"colour error: value_range must be (lo, hi) with hi > lo, got {value_range}")
    tol = 1e-3 * (hi - lo)
    if x.size and (float(x.min()) < lo - tol or float(x.max()) > hi + tol):
        raise GescoInputError(f"colour error {what}: values must lie in [{lo:g}, {hi:g}], "
                              f"got [{float(x.min()):.4g}, {float(x.max()):.4g}]")
    return (x.astype(np.float64).transpose(0, 2, 3, 1) - lo) * (255.0 / (hi - lo))


def colour_errors(generated: np.ndarray | torch.Tensor, sent: np.ndarray | torch.Tensor,
                  labels: np.ndarray | torch.Tensor, *, value_range: tuple[float, float] = (-1.0, 1.0),
                  min_pixels: int = MIN_CLASS_PIXELS,
                  ignore_ids: frozenset[int] | set[int] = frozenset()) -> ColourErrors:
    """Whole-image and per-class colour errors of generated images against the sent images.

    Args:
        generated: the generated (or received) images: float ``(B, 3, H, W)`` in
            ``value_range``, or uint8 ``(H, W, 3)`` / ``(B, H, W, 3)``.
        sent: the sent (real) images, the same form and shape.
        labels: the sent label maps, integer ``(H, W)`` / ``(B, H, W)``, ids ``>= 0``.
        value_range: ``(lo, hi)`` of float images (``[-1, 1]``: LPIPS's and the
            generator's range; ``(0, 1)`` for SSIM's).
        min_pixels: ``k``: classes with fewer pixels in a sent map are left out of
            ``class_colour_error`` and ``per_class``.
        ignore_ids: label ids never scored per class (e.g. a void class); they still count
            in the whole-image mean.
    Returns:
        :class:`ColourErrors`.
    """
    g = _to_rgb255(generated, value_range, "generated")
    s = _to_rgb255(sent, value_range, "sent")
    if g.shape != s.shape:
        raise ShapeError(f"colour error: generated {g.shape} and sent {s.shape} images differ in shape "
                         "(both (B, H, W, 3) after conversion)")
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    lab = np.asarray(labels)
    if lab.dtype == bool or not np.issubdtype(lab.dtype, np.integer):
        raise DTypeError(f"colour error: labels must hold integer label ids, got dtype {lab.dtype}")
    if lab.ndim == 2:
        lab = lab[None]
    if lab.shape != g.shape[:3]:
        raise ShapeError(f"colour error: labels {lab.shape} do not match the images' (B, H, W) {g.shape[:3]}")
    if lab.size and int(lab.min()) < 0:
        raise GescoInputError(f"colour error: label ids must be >= 0, got {int(lab.min())}")
    if min_pixels < 1:
        raise GescoInputError(f"colour error: min_pixels must be >= 1, got {min_pixels}")

    b = g.shape[0]
    mean_err = np.linalg.norm(g.reshape(b, -1, 3).mean(axis=1) - s.reshape(b, -1, 3).mean(axis=1), axis=1)
    class_err = np.full(b, np.nan)
    per_class: list[dict[int, tuple[float, int]]] = []
    diff = (g - s).reshape(b, -1, 3)  # mean over a class of g - s = m_g^c - m_s^c
    for i in range(b):
        ids = lab[i].reshape(-1).astype(np.int64)
        n = np.bincount(ids)
        sums = np.stack([np.bincount(ids, weights=diff[i, :, ch], minlength=n.size) for ch in range(3)], axis=1)
        keep = [c for c in np.flatnonzero(n >= min_pixels) if int(c) not in ignore_ids]
        errs = {int(c): (float(np.linalg.norm(sums[c] / n[c])), int(n[c])) for c in keep}
        per_class.append(errs)
        if errs:
            weights = np.array([v[1] for v in errs.values()], dtype=np.float64)
            values = np.array([v[0] for v in errs.values()])
            class_err[i] = float((weights * values).sum() / weights.sum())
    return ColourErrors(mean_colour_error=mean_err, class_colour_error=class_err, per_class=per_class,
                        min_pixels=int(min_pixels))
