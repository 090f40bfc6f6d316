"""A procedural street-like label map, for codec tests, the bit budget and benchmarks.

The codecs' numbers depend on what the maps look like: large smooth regions (road, sky,
buildings) with a few thin structures (poles, signs) and many small objects (cars,
people) compress very differently from noise. This module draws such a scene with
Cityscapes label ids (about 20 classes present at 256x512) and an instance map
(Cityscapes convention: ``id * 1000 + k`` for things, the label id for stuff), so
codec tests and budgets need no data set. It is deliberately simple: flat polygons, no
texture, crisper boundaries than real annotations (which makes it slightly easier to
compress than a resized Cityscapes label map; ``docs/bit_budget.md`` says by how much
we expect this to matter).

The full synthetic data set used for training lives in ``gesco.data``; this drawing only
serves the codecs.
"""

from __future__ import annotations

import cv2
import numpy as np

from gesco.errors import ShapeError

# Cityscapes label ids used by the drawing (see gesco.semantics.classes.CITYSCAPES).
EGO_VEHICLE, STATIC, DYNAMIC, GROUND = 1, 4, 5, 6
ROAD, SIDEWALK, PARKING, BUILDING, WALL, FENCE = 7, 8, 9, 11, 12, 13
POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY = 17, 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, MOTORCYCLE, BICYCLE = 24, 25, 26, 27, 28, 32, 33
THINGS = (PERSON, RIDER, CAR, TRUCK, BUS, MOTORCYCLE, BICYCLE)


class _Canvas:
    """Label and instance maps drawn in painter's order (later shapes cover earlier ones)."""

    def __init__(self, height: int, width: int) -> None:
        self.label = np.zeros((height, width), dtype=np.int32)
        self.instance = np.zeros((height, width), dtype=np.int32)
        self._next_instance: dict[int, int] = {}

    def _instance_id(self, label_id: int) -> int:
        if label_id not in THINGS:
            return label_id
        k = self._next_instance.get(label_id, 0)
        self._next_instance[label_id] = k + 1
        return label_id * 1000 + k

    def _paint(self, mask: np.ndarray, label_id: int) -> None:
        inst = self._instance_id(label_id)
        self.label[mask] = label_id
        self.instance[mask] = inst

    def polygon(self, points: list[tuple[float, float]], label_id: int) -> None:
        mask = np.zeros(self.label.shape, dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(np.asarray(points)).astype(np.int32)], 1, lineType=cv2.LINE_8)
        self._paint(mask.astype(bool), label_id)

    def rect(self, x0: float, y0: float, x1: float, y1: float, label_id: int) -> None:
        self.polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], label_id)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, label_id: int) -> None:
        mask = np.zeros(self.label.shape, dtype=np.uint8)
        axes = (max(1, int(round(rx))), max(1, int(round(ry))))
        cv2.ellipse(mask, (int(round(cx)), int(round(cy))), axes, 0, 0, 360, 1, thickness=-1, lineType=cv2.LINE_8)
        self._paint(mask.astype(bool), label_id)


def _paint_backdrop(c: _Canvas, rng: np.random.Generator, h: float, w: float, horizon: float, vx: float) -> None:
    """Sky, the buildings' irregular skyline on both sides, the wall at the vanishing point, tree crowns."""
    # Sky everywhere, then buildings with an irregular skyline on both sides.
    c.rect(0, 0, w, h, SKY)
    for side in (0, 1):
        x = 0.0 if side == 0 else vx + w * 0.04
        end = vx - w * 0.04 if side == 0 else w
        while x < end:
            bw = w * rng.uniform(0.05, 0.14)
            top = h * rng.uniform(0.02, 0.30)
            c.rect(x, top, min(x + bw, end), horizon + h * 0.05, BUILDING)
            x += bw
    c.rect(vx - w * 0.04, horizon - h * 0.06, vx + w * 0.04, horizon + h * 0.02, WALL)
    # Trees: crowns (vegetation) over the buildings.
    for _ in range(rng.integers(4, 8)):
        cx = w * rng.uniform(0.0, 1.0)
        c.ellipse(cx, horizon - h * rng.uniform(0.0, 0.15), w * rng.uniform(0.03, 0.08), h * rng.uniform(0.06, 0.14), VEGETATION)


def _paint_ground(c: _Canvas, rng: np.random.Generator, h: float, w: float, horizon: float, vx: float) -> None:
    """Sidewalks, the road, terrain, parking and ground strips, a fence along the left sidewalk."""
    # Ground plane: sidewalks left and right, the road in the middle, terrain strips.
    c.polygon([(0, horizon + h * 0.03), (vx, horizon), (w, horizon + h * 0.03), (w, h), (0, h)], SIDEWALK)
    c.polygon([(vx - w * 0.02, horizon), (vx + w * 0.02, horizon), (w * 0.95, h), (w * 0.05, h)], ROAD)
    c.polygon([(0, horizon + h * 0.06), (vx - w * 0.1, horizon + h * 0.02), (w * 0.02, h * 0.62)], TERRAIN)
    c.polygon([(w, horizon + h * 0.06), (vx + w * 0.15, horizon + h * 0.02), (w, h * 0.58)], PARKING)
    c.polygon([(0, h * 0.7), (w * 0.05, h * 0.66), (w * 0.06, h * 0.8), (0, h * 0.85)], GROUND)
    # A fence along the left sidewalk.
    c.polygon([(0, horizon - h * 0.02), (vx - w * 0.1, horizon - h * 0.005), (vx - w * 0.1, horizon + h * 0.02),
               (0, horizon + h * 0.12)], FENCE)


def _paint_street_furniture(c: _Canvas, rng: np.random.Generator, h: float, w: float, horizon: float, vx: float) -> None:
    """Poles with signs or traffic lights (thin structures), a static and a dynamic object."""
    # Poles with signs and traffic lights (thin structures).
    for _ in range(rng.integers(3, 6)):
        x = w * (rng.uniform(0.02, 0.2) if rng.random() < 0.5 else rng.uniform(0.8, 0.98))
        top = h * rng.uniform(0.10, 0.30)
        bottom = horizon + h * rng.uniform(0.10, 0.25)
        c.rect(x, top, x + max(1.0, w * 0.004), bottom, POLE)
        if rng.random() < 0.6:
            c.rect(x - w * 0.012, top, x + w * 0.014, top + h * 0.04, TRAFFIC_SIGN)
        else:
            c.rect(x - w * 0.006, top, x + w * 0.008, top + h * 0.07, TRAFFIC_LIGHT)
    c.rect(w * 0.3, horizon - h * 0.02, w * 0.32, horizon + h * 0.03, STATIC)
    c.rect(w * 0.66, horizon - h * 0.01, w * 0.68, horizon + h * 0.035, DYNAMIC)


def _paint_vehicles(c: _Canvas, rng: np.random.Generator, h: float, w: float, horizon: float, vx: float) -> None:
    """Vehicles on the road, farther ones smaller (painted back to front)."""
    # Vehicles on the road, farther ones smaller (back to front).
    for depth in np.sort(rng.uniform(0.1, 0.9, size=rng.integers(5, 9))):
        y = horizon + (h - horizon) * depth * 0.8
        size = 0.2 + 0.8 * depth
        half = (w * 0.9 - w * 0.1) * depth / 2 + w * 0.03
        x = vx + rng.uniform(-half, half)
        kind = rng.choice([CAR, CAR, CAR, TRUCK, BUS])
        bw = w * 0.12 * size * (1.6 if kind == BUS else 1.3 if kind == TRUCK else 1.0)
        bh = h * 0.12 * size * (1.8 if kind != CAR else 1.0)
        c.polygon([(x - bw / 2, y), (x + bw / 2, y), (x + bw / 2, y - bh * 0.6), (x + bw * 0.3, y - bh),
                   (x - bw * 0.3, y - bh), (x - bw / 2, y - bh * 0.6)], int(kind))


def _paint_people(c: _Canvas, rng: np.random.Generator, h: float, w: float, horizon: float, vx: float) -> None:
    """People on the sidewalks, a rider on a bicycle and one on a motorcycle."""
    # People on the sidewalks, a rider on a bicycle and one on a motorcycle.
    for _ in range(rng.integers(3, 7)):
        x = w * (rng.uniform(0.02, 0.25) if rng.random() < 0.5 else rng.uniform(0.75, 0.98))
        y = horizon + h * rng.uniform(0.1, 0.35)
        ph = h * rng.uniform(0.08, 0.2)
        c.ellipse(x, y - ph * 0.45, ph * 0.12, ph * 0.4, PERSON)
        c.ellipse(x, y - ph * 0.92, ph * 0.08, ph * 0.08, PERSON)
    for vehicle in (BICYCLE, MOTORCYCLE):
        x, y = w * rng.uniform(0.3, 0.7), horizon + h * rng.uniform(0.25, 0.4)
        s = h * 0.1
        c.ellipse(x, y, s * 0.5, s * 0.25, vehicle)
        c.ellipse(x, y - s * 0.5, s * 0.15, s * 0.4, RIDER)


def street_scene(height: int = 256, width: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw a street-like scene.

    Args:
        height, width: size in pixels (at least 32 x 64; the drawing scales with it).
        seed: the random seed (same seed, same scene).
    Returns:
        ``(label, instance)``: two ``(height, width)`` int32 maps with Cityscapes label ids
        and instance ids (``id * 1000 + k`` for things). At 256x512 about 20 classes are present.
    """
    if height < 32 or width < 64:
        raise ShapeError(f"street_scene needs at least 32x64 pixels, got {height}x{width}")
    rng = np.random.default_rng(seed)
    h, w = float(height), float(width)
    c = _Canvas(height, width)
    horizon = h * rng.uniform(0.40, 0.48)
    vx = w * rng.uniform(0.42, 0.58)  # vanishing point

    _paint_backdrop(c, rng, h, w, horizon, vx)
    _paint_ground(c, rng, h, w, horizon, vx)
    _paint_street_furniture(c, rng, h, w, horizon, vx)
    _paint_vehicles(c, rng, h, w, horizon, vx)
    _paint_people(c, rng, h, w, horizon, vx)

    # The ego vehicle's bonnet at the bottom, as in Cityscapes frames.
    c.polygon([(0, h * 0.93), (w * 0.2, h * 0.9), (w * 0.8, h * 0.9), (w, h * 0.93), (w, h), (0, h)], EGO_VEHICLE)
    return c.label, c.instance
