"""The 3-D street seen by a pinhole camera: :class:`Camera` (world metres -> pixels) and
:class:`Street` (the lateral layout of road, lanes and sidewalks)."""


from __future__ import annotations

import math
from dataclasses import dataclass

from gesco.data.synthetic.scene import Point


def unit_circle(n: int) -> tuple[tuple[float, float], ...]:
    return tuple((math.cos(2 * math.pi * i / n), math.sin(2 * math.pi * i / n)) for i in range(n))


CIRCLE12 = unit_circle(12)
CIRCLE10 = unit_circle(10)

# --------------------------------------------------------------------------- camera
@dataclass(frozen=True)
class Camera:
    """Pinhole camera at ``(0, cam_h, 0)`` looking along +Z; pixel ``(x, y)`` with y down."""

    f: float  # focal length in pixels
    cx: float  # x of the vanishing point
    horizon_y: float  # y of the horizon
    cam_h: float  # camera height above the ground in metres

    def px(self, X: float, Y: float, Z: float) -> Point:
        """Project a world point to pixel ``(x, y)`` (``Z`` clamped to >= 0.3 m)."""
        s = self.f / max(Z, 0.3)
        return self.cx + s * X, self.horizon_y + s * (self.cam_h - Y)

    def scale(self, Z: float) -> float:
        """Pixels per metre at distance ``Z`` (for faces parallel to the image plane)."""
        return self.f / max(Z, 0.3)

    def ground_quad(self, x0: float, x1: float, z0: float, z1: float) -> list[Point]:
        """The ground rectangle ``x0 <= X <= x1, z0 <= Z <= z1`` (``Y = 0``)."""
        return [self.px(x0, 0.0, z0), self.px(x1, 0.0, z0), self.px(x1, 0.0, z1), self.px(x0, 0.0, z1)]

    def side_quad(self, X: float, z0: float, z1: float, y0: float, y1: float) -> list[Point]:
        """A vertical rectangle in the plane ``X = const`` (a face parallel to the street)."""
        return [self.px(X, y0, z0), self.px(X, y0, z1), self.px(X, y1, z1), self.px(X, y1, z0)]

    def front_quad(self, x0: float, x1: float, y0: float, y1: float, Z: float) -> list[Point]:
        """A vertical rectangle in the plane ``Z = const`` (a face looking at the camera)."""
        return [self.px(x0, y0, Z), self.px(x1, y0, Z), self.px(x1, y1, Z), self.px(x0, y1, Z)]


@dataclass(frozen=True)
class Street:
    """Lateral layout of the street in metres (camera at ``X = 0``)."""

    road_l: float  # left road edge (negative), parking strip included
    road_r: float
    drive_l: float  # left edge of the driving lanes (== road_l without a parking strip)
    drive_r: float
    walk_l: float  # outer edge of the left sidewalk
    walk_r: float
    lane_w: float
    n_lanes: int
    z_far: float  # where the street ends (a backdrop of buildings and trees)

    def curb(self, side: float) -> float:
        return self.road_r if side > 0 else self.road_l

    def walk_edge(self, side: float) -> float:
        return self.walk_r if side > 0 else self.walk_l
