"""Rendering: polygons painted into a segment map, then image, label and instance maps read
from it (:meth:`Canvas.render`), so label and image agree pixel-exactly."""


from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import cv2
import numpy as np

from gesco.data.synthetic.scene import Colour, Point, SceneSample

FIXED_SHIFT = 4  # cv2 fixed-point bits: polygon vertices have 1/16-pixel precision
FIXED_SCALE = float(1 << FIXED_SHIFT)


# --------------------------------------------------------------------------- canvas
class Canvas:
    """A segment-id map plus, per segment, its label, instance id and colour model.

    ``seg[y, x]`` is the id of the last segment painted at that pixel (painter's order).
    Segment 0 (the first registered) covers the whole canvas initially.
    """

    def __init__(self, height: int, width: int, horizon_y: float):
        self.height, self.width, self.horizon_y = height, width, horizon_y
        self.seg = np.zeros((height, width), np.uint16)
        self.labels: list[int] = []
        self.instances: list[int] = []
        self.looks: list[tuple[float, ...]] = []  # (r, g, b, gr, gg, gb, fine, coarse)
        self._next_instance: dict[int, int] = {}
        self._queue: list[tuple[int, list[int]]] = []  # (segment id, vertex count per polygon)
        self._xy: list[float] = []  # queued vertices, flat x0, y0, x1, y1, ...

    def new_instance(self, label: int) -> int:
        """The next Cityscapes instance id ``label * 1000 + k`` of a thing class."""
        k = self._next_instance.get(label, 0)
        self._next_instance[label] = k + 1
        return label * 1000 + k

    def segment(self, label: int, colour: Colour, instance: int | None = None,
                grad: Colour = (0.0, 0.0, 0.0), fine: float = 4.0, coarse: float = 4.0) -> int:
        """Register a segment and return its id.

        ``grad`` (RGB) is added per unit of ``(y - horizon_y) / H``; ``fine`` and
        ``coarse`` scale per-pixel and blotchy texture noise (grey levels).
        """
        if len(self.labels) > 65535:  # ids must fit the uint16 segment map
            raise RuntimeError("too many segments in one scene")
        self.labels.append(label)
        self.instances.append(label if instance is None else instance)
        self.looks.append((*colour, *grad, fine, coarse))
        return len(self.labels) - 1

    def polys(self, seg_id: int, polys: Sequence[Sequence[Point]]) -> None:
        """Queue polygons (each a sequence of float pixel points ``(x, y)``) to paint with ``seg_id``.

        Painting is deferred to :meth:`flush`, which converts all queued vertices to
        fixed point in one numpy call (per-call numpy overhead dominates at 64x128).
        """
        counts = []
        for p in polys:
            self._xy.extend(chain.from_iterable(p))
            counts.append(len(p))
        if counts:
            self._queue.append((seg_id, counts))

    def flush(self) -> None:
        """Paint every queued polygon, in queue order, into the segment map."""
        if not self._queue:
            return
        xy = np.array(self._xy, np.float64).reshape(-1, 2)
        pts = np.rint(np.clip(xy, -1e6, 1e6) * FIXED_SCALE).astype(np.int32)
        i = 0
        for seg_id, counts in self._queue:
            polys = []
            for n in counts:
                polys.append(pts[i:i + n])
                i += n
            cv2.fillPoly(self.seg, polys, seg_id, cv2.LINE_8, FIXED_SHIFT)
        self._queue.clear()
        self._xy.clear()

    def poly(self, seg_id: int, pts: Sequence[Point]) -> None:
        self.polys(seg_id, [pts])

    def rect(self, seg_id: int, x0: float, y0: float, x1: float, y1: float, min_px: float = 0.0) -> None:
        """Paint an axis-aligned rectangle (pixel coordinates), at least ``min_px`` wide and tall."""
        if x1 - x0 < min_px:
            c = 0.5 * (x0 + x1)
            x0, x1 = c - 0.5 * min_px, c + 0.5 * min_px
        if y1 - y0 < min_px:
            c = 0.5 * (y0 + y1)
            y0, y1 = c - 0.5 * min_px, c + 0.5 * min_px
        self.polys(seg_id, [((x0, y0), (x1, y0), (x1, y1), (x0, y1))])

    def render(self, noise_rng: np.random.Generator, gain: Colour) -> SceneSample:
        """Read image, label and instance maps off the segment map.

        ``image = gain * (colour[s] + grad[s] * (y - horizon) / H + fine[s] * n1 + coarse[s] * n2)``
        with ``n1`` unit-variance white noise (uniform; mostly luminance, a little
        chroma) and ``n2`` smooth unit-scale noise (bicubic upsampling of a coarse grid).
        """
        self.flush()
        h, w, seg = self.height, self.width, self.seg
        looks = np.asarray(self.looks, np.float32)
        gain_rgb = np.asarray(gain, np.float32)
        gain_mean = float(gain_rgb.mean())
        colour = looks[:, 0:3] * gain_rgb
        grad = looks[:, 3:6] * gain_rgb
        fine = looks[:, 6] * gain_mean
        coarse = looks[:, 7] * gain_mean

        u = noise_rng.random((h, w, 4), dtype=np.float32) - np.float32(0.5)
        n_fine = np.float32(12**0.5) * (u[..., :1] + np.float32(0.3) * u[..., 1:])
        small = noise_rng.random((max(2, h // 6), max(2, w // 6)), dtype=np.float32) - np.float32(0.5)
        n_coarse = cv2.resize(small * np.float32(3.0), (w, h), interpolation=cv2.INTER_CUBIC)

        rel_y = ((np.arange(h, dtype=np.float32) - np.float32(self.horizon_y)) / np.float32(h))[:, None, None]
        img = np.take(colour, seg, axis=0)
        img += np.take(grad, seg, axis=0) * rel_y
        img += np.take(fine, seg)[..., None] * n_fine
        img += (np.take(coarse, seg) * n_coarse)[..., None]
        image = np.clip(img + np.float32(0.5), 0, 255).astype(np.uint8)
        label = np.take(np.asarray(self.labels, np.uint8), seg)
        instance = np.take(np.asarray(self.instances, np.int32), seg)
        return SceneSample(image=image, label=label, instance=instance)
