"""Procedural street scenes with Cityscapes label ids, deterministic per seed.

A scene is built in a small 3-D world seen by a pinhole camera standing on a straight
street (``X`` metres to the right, ``Y`` metres up, ``Z`` metres ahead):

* sky, then the ground (terrain), a road with lane markings and zebra crossings,
  sidewalks on both sides;
* on each side either a row of buildings (with windows, shaded end walls) or a park
  (trees on grass), optionally behind a fence, wall or hedge;
* street furniture (lamp poles, traffic signs, traffic lights, street trees), parked and
  moving cars, pedestrians -- painted far to near, so near objects occlude far ones.

Every primitive is a polygon painted into a *segment map* (one id per primitive). Each
segment carries its Cityscapes label id, its instance id and a colour model (base
colour, vertical gradient, texture noise), and the image, label and instance maps are
all read from the same segment map at the end -- so label and image agree
pixel-exactly at any resolution. All sizes are in metres, so one seed gives the same
scene (at different sharpness) at 64x128, 128x256 or 256x512.

Randomness comes only from ``np.random.default_rng`` seeded by the scene seed
(``SeedSequence(seed).spawn``: one stream for the scene layout, one for the pixel noise,
so the layout does not depend on the resolution).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gesco.errors import GescoInputError, ShapeError

# Cityscapes label ids used by the generator (cityscapesscripts labels.py).
ROAD, SIDEWALK, BUILDING, WALL, FENCE = 7, 8, 11, 12, 13
POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY = 17, 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, MOTORCYCLE, BICYCLE = 24, 25, 26, 27, 28, 32, 33

#: Every label id :func:`generate_scene` can produce.
SYNTHETIC_LABEL_IDS: frozenset[int] = frozenset(
    {ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION,
     TERRAIN, SKY, PERSON, RIDER, CAR, TRUCK, BUS, MOTORCYCLE, BICYCLE}
)
#: The label ids that get instance ids ``label_id * 1000 + k`` (Cityscapes "things").
SYNTHETIC_THING_IDS: frozenset[int] = frozenset({PERSON, RIDER, CAR, TRUCK, BUS, MOTORCYCLE, BICYCLE})

MIN_SIZE = 16  # smallest height / width accepted by generate_scene
_SHIFT = 4  # cv2 fixed-point bits: polygon vertices are placed with 1/16-pixel precision
_SUB = float(1 << _SHIFT)


@dataclass(frozen=True)
class SceneSample:
    """One synthetic scene.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        label: ``(H, W)`` uint8 Cityscapes label ids.
        instance: ``(H, W)`` int32; ``label_id * 1000 + k`` (``k = 0, 1, ...`` per class)
            on things, the plain label id on stuff (Cityscapes ``*_instanceIds.png``).
    """

    image: np.ndarray
    label: np.ndarray
    instance: np.ndarray


# --------------------------------------------------------------------------- colours
# Plausible RGB colour families per material; a scene picks one and jitters it.
_BUILDING_COLOURS = np.array(
    [(196, 178, 150), (210, 205, 195), (150, 148, 145), (120, 118, 118), (150, 85, 65),
     (215, 195, 130), (190, 160, 160), (165, 180, 185), (95, 90, 85), (225, 220, 210),
     (175, 130, 95), (130, 140, 120)], dtype=np.float32)
_CAR_COLOURS = np.array(
    [(225, 225, 225), (28, 28, 32), (170, 172, 175), (105, 108, 112), (35, 55, 115),
     (150, 25, 30), (40, 70, 50), (190, 175, 140), (60, 60, 70), (120, 135, 160)], dtype=np.float32)
_CAR_COLOUR_P = np.array([0.2, 0.18, 0.16, 0.12, 0.08, 0.07, 0.04, 0.04, 0.06, 0.05])
_SKIN = np.array([(225, 185, 155), (200, 150, 115), (150, 100, 70), (95, 62, 45)], dtype=np.float32)
_SIGN_COLOURS = np.array([(205, 30, 35), (30, 75, 170), (235, 195, 30), (235, 235, 235)], dtype=np.float32)
_LAMP_COLOURS = np.array([(255, 40, 30), (255, 180, 20), (40, 255, 120)], dtype=np.float32)


def _jitter(rng: np.random.Generator, rgb, amount: float) -> np.ndarray:
    """``rgb`` plus uniform noise in ``[-amount, amount]`` per channel, as float32."""
    return np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32)


# --------------------------------------------------------------------------- canvas
class _Canvas:
    """A segment-id map plus, per segment, its label, instance and colour model.

    ``seg[y, x]`` is the id of the last segment painted at that pixel (painter's order).
    Segment 0 is the background (sky colour, label sky) until something covers it.
    """

    def __init__(self, height: int, width: int, horizon_y: float):
        self.height, self.width, self.horizon_y = height, width, horizon_y
        self.seg = np.zeros((height, width), np.uint16)
        self.labels: list[int] = []
        self.instances: list[int] = []
        self.colours: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        self.fine: list[float] = []  # per-pixel (high-frequency) texture amplitude
        self.coarse: list[float] = []  # blotchy (low-frequency) texture amplitude
        self._next_instance: dict[int, int] = {}

    def new_instance(self, label: int) -> int:
        """The next Cityscapes instance id ``label * 1000 + k`` of a thing class."""
        k = self._next_instance.get(label, 0)
        self._next_instance[label] = k + 1
        return label * 1000 + k

    def segment(self, label: int, colour, instance: int | None = None, grad=(0.0, 0.0, 0.0),
                fine: float = 4.0, coarse: float = 4.0) -> int:
        """Register a segment; ``grad`` is added per unit of ``(y - horizon) / H``."""
        if len(self.labels) >= np.iinfo(np.uint16).max:
            raise RuntimeError("too many segments in one scene")
        self.labels.append(label)
        self.instances.append(label if instance is None else instance)
        self.colours.append(np.asarray(colour, np.float32))
        self.grads.append(np.asarray(grad, np.float32))
        self.fine.append(fine)
        self.coarse.append(coarse)
        return len(self.labels) - 1

    def fill(self, seg_id: int, polys: list[np.ndarray] | np.ndarray) -> None:
        """Paint polygons (each ``(N, 2)`` float pixel coordinates ``x, y``) with ``seg_id``."""
        if isinstance(polys, np.ndarray) and polys.ndim == 2:
            polys = [polys]
        if len(polys) == 0:
            return
        pts = [np.round(np.clip(p, -1e5, 1e5) * _SUB).astype(np.int32) for p in polys]
        cv2.fillPoly(self.seg, pts, int(seg_id), lineType=cv2.LINE_8, shift=_SHIFT)

    def rect(self, seg_id: int, x0: float, y0: float, x1: float, y1: float, min_px: float = 0.0) -> None:
        """Paint an axis-aligned rectangle (pixel coords), at least ``min_px`` wide / tall."""
        if x1 - x0 < min_px:
            c = 0.5 * (x0 + x1)
            x0, x1 = c - 0.5 * min_px, c + 0.5 * min_px
        if y1 - y0 < min_px:
            c = 0.5 * (y0 + y1)
            y0, y1 = c - 0.5 * min_px, c + 0.5 * min_px
        self.fill(seg_id, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32))

    def render(self, noise_rng: np.random.Generator, gain: np.ndarray) -> SceneSample:
        """Read image, label and instance maps off the segment map.

        ``image = gain * (colour[s] + grad[s] * (y - horizon) / H + fine[s] * n1 + coarse[s] * n2)``
        with ``n1`` white noise and ``n2`` smooth noise (both per pixel, luminance and a
        little chroma).
        """
        h, w = self.height, self.width
        seg = self.seg
        colours = np.stack(self.colours)
        grads = np.stack(self.grads)
        fine = np.asarray(self.fine, np.float32)
        coarse = np.asarray(self.coarse, np.float32)

        n_fine = noise_rng.standard_normal((h, w, 1), dtype=np.float32)
        n_fine = n_fine + 0.25 * noise_rng.standard_normal((h, w, 3), dtype=np.float32)
        gh, gw = max(2, h // 6), max(2, w // 6)
        small = noise_rng.standard_normal((gh, gw), dtype=np.float32)
        n_coarse = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]

        rel_y = ((np.arange(h, dtype=np.float32) - self.horizon_y) / h)[:, None, None]
        img = colours[seg] + grads[seg] * rel_y
        img += fine[seg][..., None] * n_fine + coarse[seg][..., None] * n_coarse
        img *= gain
        image = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        label = np.asarray(self.labels, np.uint8)[seg]
        instance = np.asarray(self.instances, np.int32)[seg]
        return SceneSample(image=image, label=label, instance=instance)


# --------------------------------------------------------------------------- camera
@dataclass(frozen=True)
class _Camera:
    """Pinhole camera at ``(0, cam_h, 0)`` looking along +Z; pixel ``(x, y)`` with y down."""

    f: float  # focal length in pixels
    cx: float  # x of the vanishing point
    horizon_y: float  # y of the horizon
    cam_h: float  # camera height above the ground in metres

    def px(self, X, Y, Z):
        """Project world points (scalars or arrays, ``Z > 0``) to pixel ``x, y``."""
        Z = np.maximum(Z, 0.3)
        return self.cx + self.f * X / Z, self.horizon_y + self.f * (self.cam_h - Y) / Z

    def poly(self, X, Y, Z) -> np.ndarray:
        """``(N, 2)`` pixel polygon of world points given as three length-``N`` sequences."""
        x, y = self.px(np.asarray(X, np.float32), np.asarray(Y, np.float32), np.asarray(Z, np.float32))
        return np.stack([x, y], axis=-1)

    def ground_quad(self, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
        """A ground rectangle ``x0 <= X <= x1, z0 <= Z <= z1`` (``Y = 0``) as a pixel polygon."""
        return self.poly([x0, x1, x1, x0], [0, 0, 0, 0], [z0, z0, z1, z1])

    def side_quad(self, X: float, z0: float, z1: float, y0: float, y1: float) -> np.ndarray:
        """A vertical rectangle in the plane ``X = const`` (a facade parallel to the street)."""
        return self.poly([X, X, X, X], [y0, y0, y1, y1], [z0, z1, z1, z0])


@dataclass(frozen=True)
class _Street:
    """Lateral layout of the street in metres (camera at ``X = 0``)."""

    road_l: float  # left road edge (negative)
    road_r: float
    walk_l: float  # outer edge of the left sidewalk
    walk_r: float
    lane_w: float
    n_lanes: int
    z_far: float  # where the street ends (a backdrop of buildings / trees)


# --------------------------------------------------------------------------- the scene
class _SceneBuilder:
    """Builds one scene: layout decisions from ``rng``, painting into a :class:`_Canvas`."""

    def __init__(self, rng: np.random.Generator, height: int, width: int):
        self.rng = rng
        self.h, self.w = height, width
        r = rng
        horizon = height * r.uniform(0.36, 0.47)
        f = width * r.uniform(0.85, 1.15)
        self.cam = _Camera(f=f, cx=width * (0.5 + r.uniform(-0.08, 0.08)), horizon_y=horizon,
                           cam_h=r.uniform(1.2, 1.6))
        self.canvas = _Canvas(height, width, horizon)

        # scene-wide look: overcast or clear sky, haze, sun side
        self.overcast = r.random() < 0.55
        if self.overcast:
            zenith = _jitter(r, (165, 172, 185), 15)
            horizon_col = zenith + _jitter(r, (35, 33, 28), 8)
        else:
            zenith = _jitter(r, (70, 125, 200), 20)
            horizon_col = _jitter(r, (175, 200, 228), 15)
        self.sky_zenith, self.sky_horizon = zenith, np.clip(horizon_col, 0, 255)
        self.haze_dist = r.uniform(120.0, 450.0)
        self.sun_side = r.choice([-1.0, 1.0])  # which side's facades face the sun
        self.sun_gain = 1.0 if self.overcast else r.uniform(1.05, 1.2)
        self.shade_gain = r.uniform(0.8, 0.92) if self.overcast else r.uniform(0.6, 0.8)

        # street layout
        lane_w = r.uniform(3.0, 3.7)
        n_lanes = int(r.choice([2, 2, 3, 4]))
        cam_lane = r.integers(0, n_lanes)
        road_l = -(cam_lane + r.uniform(0.35, 0.65)) * lane_w
        road_r = road_l + n_lanes * lane_w
        self.street = _Street(
            road_l=road_l, road_r=road_r,
            walk_l=road_l - r.uniform(2.0, 5.0), walk_r=road_r + r.uniform(2.0, 5.0),
            lane_w=lane_w, n_lanes=n_lanes, z_far=r.uniform(70.0, 200.0),
        )
        # deferred objects: (distance, draw callable), painted far to near
        self.front: list[tuple[float, object]] = []
        self.crossing_z: float | None = None  # distance of the zebra crossing, if any

    # ---- helpers -------------------------------------------------------------------
    def haze(self, colour, dist: float) -> np.ndarray:
        """Blend a colour towards the horizon sky colour with distance (aerial perspective)."""
        a = 1.0 - np.exp(-dist / self.haze_dist)
        return (1 - a) * np.asarray(colour, np.float32) + a * self.sky_horizon

    def side_gain(self, side: float) -> float:
        return self.sun_gain if side == self.sun_side else self.shade_gain

    # ---- layers ------------------------------------------------------------------
    def build(self) -> None:
        self.paint_sky_and_ground()
        self.paint_road()
        self.paint_backdrop()
        setback_objects: list[tuple[float, object]] = []
        barriers: list[object] = []
        for side in (-1.0, 1.0):
            self.plan_side(side, setback_objects, barriers)
        for _, draw in sorted(setback_objects, key=lambda t: -t[0]):
            draw()
        for draw in barriers:
            draw()
        self.plan_street_furniture()
        self.plan_cars()
        self.plan_people()
        for _, draw in sorted(self.front, key=lambda t: -t[0]):
            draw()

    def paint_sky_and_ground(self) -> None:
        c, r = self.canvas, self.rng
        # segment 0: sky, brighter towards the horizon (rel_y is about -0.4 at the top)
        grad = (self.sky_horizon - self.sky_zenith) / 0.45
        c.segment(SKY, self.sky_horizon, grad=grad, fine=1.0, coarse=6.0 if self.overcast else 3.0)
        grass = _jitter(r, (105, 125, 60), 15) if r.random() < 0.7 else _jitter(r, (140, 125, 95), 15)
        terrain = c.segment(TERRAIN, self.haze(grass, 30), grad=(30, 30, 15), fine=10, coarse=10)
        c.rect(terrain, -1, self.cam.horizon_y, self.w + 1, self.h + 1)

    def paint_road(self) -> None:
        c, r, cam, st = self.canvas, self.rng, self.cam, self.street
        z_near, z_far = 0.5, st.z_far + 60
        # sidewalks (with a curb stripe) then the road
        walk_col = _jitter(r, (150, 148, 145), 20) if r.random() < 0.7 else _jitter(r, (160, 125, 115), 12)
        walk = c.segment(SIDEWALK, self.haze(walk_col, 20), grad=(25, 25, 25), fine=7, coarse=5)
        c.fill(walk, [cam.ground_quad(st.walk_l, st.road_l, z_near, z_far),
                      cam.ground_quad(st.road_r, st.walk_r, z_near, z_far)])
        curb = c.segment(SIDEWALK, self.haze(walk_col * 0.8 + 30, 20), fine=5, coarse=3)
        c.fill(curb, [cam.ground_quad(st.road_l - 0.25, st.road_l, z_near, z_far),
                      cam.ground_quad(st.road_r, st.road_r + 0.25, z_near, z_far)])
        asphalt = _jitter(r, (88, 86, 92), 14)
        road = c.segment(ROAD, self.haze(asphalt, 25), grad=(-10, -10, -10), fine=6, coarse=7)
        c.fill(road, cam.ground_quad(st.road_l, st.road_r, z_near, z_far))
        # a darker, worn patch band: same label, different tone
        if r.random() < 0.5:
            patch = c.segment(ROAD, self.haze(asphalt * 0.85, 25), fine=5, coarse=6)
            x0 = r.uniform(st.road_l, st.road_r - 1.5)
            c.fill(patch, cam.ground_quad(x0, x0 + r.uniform(0.8, 2.0), z_near, z_far))

        # lane markings: dashed lines between lanes, solid edge lines (label road)
        paint = c.segment(ROAD, self.haze(_jitter(r, (215, 215, 210), 15), 25), fine=5, coarse=2)
        polys = []
        dash, gap, lw = r.uniform(2.5, 4.0), r.uniform(4.0, 8.0), 0.15
        offset = r.uniform(0, dash + gap)
        z_starts = np.arange(z_near - offset, st.z_far, dash + gap)
        for k in range(1, st.n_lanes):
            xl = st.road_l + k * st.lane_w
            polys += [cam.ground_quad(xl - lw, xl + lw, z0, z0 + dash) for z0 in z_starts if z0 + dash > z_near]
        if r.random() < 0.6:
            polys += [cam.ground_quad(st.road_l + 0.3, st.road_l + 0.3 + 2 * lw, z_near, z_far),
                      cam.ground_quad(st.road_r - 0.3 - 2 * lw, st.road_r - 0.3, z_near, z_far)]
        if r.random() < 0.35:  # zebra crossing
            zc = r.uniform(8.0, 30.0)
            depth = r.uniform(3.0, 5.0)
            xs = np.arange(st.road_l + 0.5, st.road_r - 0.5, 1.0)
            polys += [cam.ground_quad(x, x + 0.5, zc, zc + depth) for x in xs]
            self.crossing_z = zc
        c.fill(paint, polys)

    def paint_backdrop(self) -> None:
        """What closes the street at ``z_far``: a row of buildings and / or trees."""
        c, r, cam, st = self.canvas, self.rng, self.cam, self.street
        z = st.z_far
        x = st.walk_l - 40.0
        while x < st.walk_r + 40.0:
            wid = r.uniform(8.0, 25.0)
            if r.random() < 0.7:
                col = self.haze(_BUILDING_COLOURS[r.integers(len(_BUILDING_COLOURS))], z)
                b = c.segment(BUILDING, col, grad=(15, 15, 15), fine=4, coarse=4)
                hb = r.uniform(8.0, 28.0)
                c.fill(b, cam.poly([x, x + wid, x + wid, x], [0, 0, hb, hb], [z, z, z, z]))
            else:
                self.tree(x + wid / 2, z, r.uniform(5, 12), painter=c)
            x += wid

    # ---- the two sides -------------------------------------------------------------
    def plan_side(self, side: float, setback_objects: list, barriers: list) -> None:
        """Buildings or park on one side; fills the setback strip and queues barriers."""
        c, r, cam, st = self.canvas, self.rng, self.cam, self.street
        walk_edge = st.walk_r if side > 0 else st.walk_l
        kind = r.choice(["buildings", "park"], p=[0.72, 0.28])
        setback = 0.0 if (kind == "buildings" and r.random() < 0.6) else r.uniform(1.0, 8.0)
        inner = walk_edge + side * setback  # where the facades / park start
        if kind == "buildings":
            self.paint_facades(side, inner)
            n_trees = int(r.integers(0, 3)) if setback > 2 else 0
        else:
            n_trees = int(r.integers(3, 9))
            setback = 30.0
        for _ in range(n_trees):
            X = walk_edge + side * r.uniform(1.0, max(1.5, setback - 1.0))
            Z = r.uniform(4.0, st.z_far)
            hgt = r.uniform(4.0, 12.0)
            setback_objects.append((np.hypot(X, Z), lambda X=X, Z=Z, hgt=hgt: self.tree(X, Z, hgt)))

        # barrier between the sidewalk and the setback: fence, wall or hedge
        if r.random() < (0.55 if setback > 0 else 0.1):
            barrier = r.choice(["fence", "wall", "hedge"], p=[0.45, 0.25, 0.3])
            z0 = r.uniform(1.0, 20.0)
            z1 = z0 + r.uniform(15.0, 80.0)
            Xb = walk_edge + side * 0.2
            barriers.append(lambda: self.barrier(barrier, side, Xb, z0, min(z1, st.z_far)))

    def paint_facades(self, side: float, inner: float) -> None:
        """A row of buildings from far to near along the street on one side."""
        c, r, cam, st = self.canvas, self.rng, self.cam, self.street
        blocks = []
        z = r.uniform(0.0, 5.0)
        while z < st.z_far:
            length = r.uniform(8.0, 30.0)
            gap = r.uniform(3.0, 12.0) if r.random() < 0.2 else 0.0
            blocks.append((z, min(z + length, st.z_far), inner + side * r.uniform(0.0, 2.0), r.uniform(7.0, 26.0)))
            z += length + gap
        gain = self.side_gain(side)
        for z0, z1, X, hb in reversed(blocks):  # far to near
            base = _BUILDING_COLOURS[r.integers(len(_BUILDING_COLOURS))]
            base = _jitter(r, base, 14)
            # end wall facing the camera (Z = z0), in the shade
            end = c.segment(BUILDING, self.haze(base * self.shade_gain * 0.9, z0 + 10), fine=4, coarse=4)
            depth = 15.0
            c.fill(end, cam.poly([X, X + side * depth, X + side * depth, X], [0, 0, hb, hb], [z0, z0, z0, z0]))
            # facade with a base (ground floor) band and windows
            mid = 0.5 * (z0 + z1)
            fac = c.segment(BUILDING, self.haze(base * gain, mid), grad=(20, 20, 20), fine=4, coarse=6)
            c.fill(fac, cam.side_quad(X, z0, z1, 0, hb))
            if r.random() < 0.5:
                shop = c.segment(BUILDING, self.haze(_jitter(r, base * 0.7, 20) * gain, mid), fine=4, coarse=3)
                c.fill(shop, cam.side_quad(X, z0, z1, 0, r.uniform(2.8, 4.0)))
            self.windows(X, z0, z1, hb, gain, base)

    def windows(self, X: float, z0: float, z1: float, hb: float, gain: float, base: np.ndarray) -> None:
        """A grid of windows on the facade plane ``X``; window pixels stay label building."""
        c, r, cam = self.canvas, self.rng, self.cam
        floor_h = r.uniform(2.8, 3.6)
        col_w = r.uniform(2.2, 4.0)
        win_w, win_h = col_w * r.uniform(0.35, 0.65), floor_h * r.uniform(0.4, 0.6)
        zs = np.arange(z0 + 0.7, z1 - win_w - 0.3, col_w)
        ys = np.arange(floor_h + 0.8, hb - win_h - 0.5, floor_h)
        if len(zs) == 0 or len(ys) == 0:
            return
        zz, yy = np.meshgrid(zs, ys)
        zz, yy = zz.ravel(), yy.ravel()
        # skip windows that would be thinner than half a pixel
        keep = cam.f * (win_w * abs(X)) / (zz * (zz + win_w)) > 0.5
        zz, yy = zz[keep], yy[keep]
        if len(zz) == 0:
            return
        Zs = np.stack([zz, zz + win_w, zz + win_w, zz], 1)
        Ys = np.stack([yy, yy, yy + win_h, yy + win_h], 1)
        xs, ys_ = cam.px(np.float32(X), Ys.astype(np.float32), Zs.astype(np.float32))
        polys = np.stack([xs, ys_], -1)
        glass = self.sky_horizon * 0.45 if r.random() < 0.5 else _jitter(r, (45, 52, 62), 10)
        frame_dark = 0.6 + 0.3 * r.random()
        dark = c.segment(BUILDING, self.haze(glass * gain * frame_dark, float(zz.mean())), grad=(-20, -20, -20),
                         fine=5, coarse=3)
        lit_mask = r.random(len(zz)) < 0.12
        c.fill(dark, list(polys[~lit_mask]))
        if lit_mask.any():
            lit = c.segment(BUILDING, self.haze(_jitter(r, (150, 160, 165), 20), float(zz.mean())), fine=5, coarse=2)
            c.fill(lit, list(polys[lit_mask]))

    def barrier(self, kind: str, side: float, X: float, z0: float, z1: float) -> None:
        c, r, cam = self.canvas, self.rng, self.cam
        gain = self.side_gain(side)
        mid = 0.5 * (z0 + z1)
        if kind == "hedge":
            col = _jitter(r, (55, 85, 40), 12)
            s = c.segment(VEGETATION, self.haze(col * gain, mid), fine=14, coarse=10)
            c.fill(s, cam.side_quad(X, z0, z1, 0, r.uniform(0.8, 1.6)))
        elif kind == "wall":
            col = _jitter(r, (165, 160, 150), 20) if r.random() < 0.6 else _jitter(r, (140, 90, 70), 12)
            s = c.segment(WALL, self.haze(col * gain, mid), fine=6, coarse=6)
            c.fill(s, cam.side_quad(X, z0, z1, 0, r.uniform(0.8, 2.2)))
        else:  # fence: posts and rails with a darker panel between
            col = _jitter(r, (120, 120, 118), 20) if r.random() < 0.6 else _jitter(r, (135, 105, 75), 15)
            hf = r.uniform(0.9, 1.8)
            panel = c.segment(FENCE, self.haze(col * gain * 0.75, mid), fine=10, coarse=4)
            c.fill(panel, cam.side_quad(X, z0, z1, 0.1, hf))
            bars = c.segment(FENCE, self.haze(col * gain * 1.15, mid), fine=5, coarse=3)
            step = r.uniform(1.5, 3.0)
            polys = [cam.side_quad(X, z, z + 0.15, 0, hf) for z in np.arange(z0, z1, step)]
            polys.append(cam.side_quad(X, z0, z1, hf - 0.12, hf))
            c.fill(bars, polys)

    # ---- objects ------------------------------------------------------------------
    def tree(self, X: float, Z: float, height: float, painter: _Canvas | None = None) -> None:
        """A tree: trunk and a blobby crown (both label vegetation)."""
        c, r, cam = self.canvas, self.rng, self.cam
        s = cam.f / max(Z, 0.3)
        x, y_ground = cam.px(X, 0.0, Z)
        trunk_h = height * r.uniform(0.3, 0.45)
        crown_r = height * r.uniform(0.25, 0.38)
        trunk = c.segment(VEGETATION, self.haze(_jitter(r, (80, 65, 50), 12), Z), fine=6, coarse=3)
        c.rect(trunk, x - 0.15 * s, y_ground - (trunk_h + crown_r) * s, x + 0.15 * s, y_ground, min_px=1.0)
        base = _jitter(r, (62, 92, 42), 14)
        n_blobs = int(r.integers(2, 5))
        for k in range(n_blobs):
            cx = x + r.uniform(-0.4, 0.4) * crown_r * s
            cy = y_ground - (trunk_h + crown_r * r.uniform(0.7, 1.3)) * s
            rad = crown_r * r.uniform(0.6, 1.0) * s
            ang = np.linspace(0, 2 * np.pi, 14, endpoint=False)
            rr = rad * (1 + 0.18 * r.standard_normal(14))
            poly = np.stack([cx + rr * np.cos(ang), cy + 0.9 * rr * np.sin(ang)], -1)
            tone = 0.8 + 0.35 * k / max(1, n_blobs - 1)
            leaf = c.segment(VEGETATION, self.haze(base * tone, Z), grad=(0, 0, 0), fine=16, coarse=8)
            c.fill(leaf, poly)

    def plan_street_furniture(self) -> None:
        r, st = self.rng, self.street
        for side in (-1.0, 1.0):
            curb = st.road_r if side > 0 else st.road_l
            walk_w = abs((st.walk_r if side > 0 else st.walk_l) - curb)
            # lamp poles at regular spacing along the curb
            if r.random() < 0.85:
                spacing = r.uniform(12.0, 30.0)
                X = curb + side * r.uniform(0.4, 0.9)
                hp = r.uniform(5.0, 9.0)
                for Z in np.arange(r.uniform(3.0, spacing), st.z_far * 0.8, spacing):
                    self.front.append((np.hypot(X, Z), lambda X=X, Z=Z, hp=hp, side=side: self.lamp_pole(X, Z, hp, side)))
            # traffic signs and lights
            for _ in range(int(r.integers(0, 4))):
                X = curb + side * r.uniform(0.4, 1.2)
                Z = r.uniform(5.0, 60.0)
                self.front.append((np.hypot(X, Z), lambda X=X, Z=Z: self.sign_post(X, Z)))
            if r.random() < 0.45:
                X = curb + side * r.uniform(0.4, 1.0)
                Z = (self.crossing_z if self.crossing_z is not None else r.uniform(10.0, 40.0)) - 1.0
                self.front.append((np.hypot(X, Z), lambda X=X, Z=Z: self.traffic_light(X, Z)))
            # street trees on the sidewalk
            if r.random() < 0.5 and walk_w > 2.5:
                spacing = r.uniform(8.0, 18.0)
                X = curb + side * r.uniform(1.0, walk_w - 0.8)
                for Z in np.arange(r.uniform(3.0, spacing), st.z_far * 0.8, spacing):
                    hgt = r.uniform(5.0, 10.0)
                    self.front.append((np.hypot(X, Z), lambda X=X, Z=Z, hgt=hgt: self.tree(X, Z, hgt)))

    def lamp_pole(self, X: float, Z: float, height: float, side: float) -> None:
        c, r, cam = self.canvas, self.rng, self.cam
        s = cam.f / Z
        x, yg = cam.px(X, 0.0, Z)
        col = _jitter(r, (120, 122, 125), 15)
        p = c.segment(POLE, self.haze(col, Z), grad=(10, 10, 10), fine=4, coarse=2)
        c.rect(p, x - 0.09 * s, yg - height * s, x + 0.09 * s, yg, min_px=1.0)
        # the arm reaching over the road
        arm = 1.5 * s
        c.rect(p, min(x, x - side * arm), yg - height * s, max(x, x - side * arm), yg - (height - 0.15) * s, min_px=1.0)

    def sign_post(self, X: float, Z: float) -> None:
        c, r, cam = self.canvas, self.rng, self.cam
        s = cam.f / Z
        x, yg = cam.px(X, 0.0, Z)
        hp = r.uniform(2.2, 3.2)
        p = c.segment(POLE, self.haze(_jitter(r, (130, 132, 135), 15), Z), fine=4, coarse=2)
        c.rect(p, x - 0.05 * s, yg - hp * s, x + 0.05 * s, yg, min_px=1.0)
        n_plates = 1 if r.random() < 0.7 else 2
        y_top = yg - hp * s
        for k in range(n_plates):
            size = r.uniform(0.5, 0.8) * s
            cy = y_top + (k + 0.5) * size * 1.1
            colour = _SIGN_COLOURS[r.integers(len(_SIGN_COLOURS))]
            plate = c.segment(TRAFFIC_SIGN, self.haze(_jitter(r, colour, 12), Z), fine=4, coarse=2)
            shape = r.integers(3)
            if shape == 0:  # disc
                ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
                poly = np.stack([x + size / 2 * np.cos(ang), cy + size / 2 * np.sin(ang)], -1)
            elif shape == 1:  # triangle
                poly = np.array([[x - size / 2, cy - size / 2], [x + size / 2, cy - size / 2], [x, cy + size / 2]])
            else:  # square
                poly = np.array([[x - size / 2, cy - size / 2], [x + size / 2, cy - size / 2],
                                 [x + size / 2, cy + size / 2], [x - size / 2, cy + size / 2]])
            c.fill(plate, poly.astype(np.float32))
            if size > 3:  # inner symbol / border in white or dark
                inner = c.segment(TRAFFIC_SIGN, self.haze(_jitter(r, (235, 235, 235) if r.random() < 0.6 else (40, 40, 40), 10), Z),
                                  fine=3, coarse=1)
                q = (poly - [x, cy]) * 0.55 + [x, cy]
                c.fill(inner, q.astype(np.float32))

    def traffic_light(self, X: float, Z: float) -> None:
        c, r, cam = self.canvas, self.rng, self.cam
        s = cam.f / Z
        x, yg = cam.px(X, 0.0, Z)
        hp = r.uniform(2.6, 4.0)
        p = c.segment(POLE, self.haze(_jitter(r, (110, 112, 115), 15), Z), fine=4, coarse=2)
        c.rect(p, x - 0.07 * s, yg - hp * s, x + 0.07 * s, yg, min_px=1.0)
        housing_col = (35, 35, 38) if r.random() < 0.7 else (200, 170, 45)
        box = c.segment(TRAFFIC_LIGHT, self.haze(_jitter(r, housing_col, 10), Z), fine=4, coarse=2)
        bw, bh = 0.35 * s, 0.95 * s
        top = yg - (hp + 0.9) * s
        c.rect(box, x - bw / 2, top, x + bw / 2, top + bh, min_px=1.0)
        state = int(r.integers(3))
        lamp = c.segment(TRAFFIC_LIGHT, self.haze(_LAMP_COLOURS[state], Z), fine=3, coarse=1)
        ly = top + bh * (0.2 + 0.3 * state)  # red on top, amber, green at the bottom
        c.rect(lamp, x - bw * 0.3, ly - bw * 0.3, x + bw * 0.3, ly + bw * 0.3)

    def plan_cars(self) -> None:
        r, st = self.rng, self.street
        # moving cars in every lane
        for k in range(st.n_lanes):
            X = st.road_l + (k + 0.5) * st.lane_w + r.uniform(-0.3, 0.3)
            own_lane = abs(X) < 0.5 * st.lane_w
            Z = r.uniform(10.0, 25.0) if own_lane else r.uniform(5.0, 20.0)
            while Z < min(st.z_far, 80.0):
                if r.random() < 0.5:
                    self.queue_vehicle(X, Z)
                Z += r.uniform(8.0, 30.0)
        # parked cars along the curbs
        for side in (-1.0, 1.0):
            if r.random() < 0.65:
                curb = st.road_r if side > 0 else st.road_l
                X = curb - side * r.uniform(1.0, 1.3)
                Z = r.uniform(2.0, 10.0)
                while Z < min(st.z_far, 60.0):
                    if r.random() < 0.6:
                        self.queue_vehicle(X, Z)
                    Z += r.uniform(5.0, 9.0)

    def queue_vehicle(self, X: float, Z: float) -> None:
        r = self.rng
        u = r.random()
        if u < 0.06:
            kind, dims = TRUCK, (r.uniform(2.2, 2.5), r.uniform(2.6, 3.4), r.uniform(6, 9))
        elif u < 0.09:
            kind, dims = BUS, (2.5, r.uniform(3.0, 3.4), r.uniform(10, 13))
        else:
            kind, dims = CAR, (r.uniform(1.7, 2.0), r.uniform(1.4, 1.75), r.uniform(3.9, 4.9))
        if kind == CAR:
            colour = _CAR_COLOURS[r.choice(len(_CAR_COLOURS), p=_CAR_COLOUR_P)]
        elif kind == BUS:
            colour = [(230, 190, 40), (200, 40, 40), (225, 225, 220), (40, 90, 160)][r.integers(4)]
        else:
            colour = [(225, 225, 225), (190, 60, 40), (60, 80, 120), (110, 110, 110)][r.integers(4)]
        colour = _jitter(r, colour, 10)
        front = X < 0 and r.random() < 0.6  # oncoming traffic on the left shows its front
        self.front.append((np.hypot(X, Z), lambda: self.vehicle(kind, X, Z, dims, colour, front)))

    def vehicle(self, kind: int, X: float, Z: float, dims, colour: np.ndarray, front: bool) -> None:
        """A box-shaped vehicle: visible side face, then the rear (or front) face."""
        c, r, cam = self.canvas, self.rng, self.cam
        width, height, length = dims
        inst = c.new_instance(kind)
        x0, x1 = X - width / 2, X + width / 2
        shade = self.shade_gain + 0.1
        glass_col = self.haze(_jitter(r, (38, 44, 54), 8), Z)
        body = c.segment(kind, self.haze(colour, Z), inst, grad=(15, 15, 15), fine=4, coarse=3)
        side_body = c.segment(kind, self.haze(colour * shade, Z), inst, fine=4, coarse=3)
        glass = c.segment(kind, glass_col, inst, fine=4, coarse=2)
        dark = c.segment(kind, self.haze(_jitter(r, (22, 22, 24), 5), Z), inst, fine=3, coarse=1)
        belt = height * (0.55 if kind == CAR else 0.45)  # window line
        # side face, seen when the car is off the camera axis
        xs = x0 if X > 0 else x1
        if abs(xs) > 0.2:
            za, zb = Z, Z + length
            if kind == CAR:  # lower body at full width, the cabin set in and shorter
                c.fill(side_body, cam.side_quad(xs, za, zb, 0.25, belt))
                xc = xs + (0.12 * width if X > 0 else -0.12 * width)
                c.fill(side_body, cam.side_quad(xc, za + 0.12 * length, zb - 0.25 * length, belt, height))
                c.fill(glass, cam.side_quad(xc, za + 0.2 * length, zb - 0.3 * length, belt + 0.05, height - 0.1))
            else:
                c.fill(side_body, cam.side_quad(xs, za, zb, 0.25, height))
                if kind == BUS:
                    c.fill(glass, cam.side_quad(xs, za + 0.5, zb - 0.5, belt, height - 0.4))
            for zw in (Z + 0.18 * length, Z + length - 0.18 * length):
                c.fill(dark, cam.side_quad(xs, zw - 0.35, zw + 0.35, 0.0, 0.65))
        # rear / front face
        s = cam.f / Z
        xa, yg = cam.px(x0, 0.0, Z)
        xb = xa + width * s
        top = yg - height * s
        c.rect(dark, xa + 0.05 * s, yg - 0.55 * s, xa + 0.35 * s, yg, min_px=0)  # wheels
        c.rect(dark, xb - 0.35 * s, yg - 0.55 * s, xb - 0.05 * s, yg, min_px=0)
        c.rect(body, xa, yg - belt * s, xb, yg - 0.2 * s, min_px=1.0)
        if kind == CAR:  # cabin narrower than the body, with the rear window
            inset = 0.12 * width * s
            c.fill(body, np.array([[xa, yg - belt * s], [xb, yg - belt * s],
                                   [xb - inset, top], [xa + inset, top]], np.float32))
            g_in = 0.2 * width * s
            c.fill(glass, np.array([[xa + g_in * 0.8, yg - (belt + 0.06) * s], [xb - g_in * 0.8, yg - (belt + 0.06) * s],
                                    [xb - g_in, top + 0.1 * s], [xa + g_in, top + 0.1 * s]], np.float32))
        else:
            c.rect(body, xa, top, xb, yg - belt * s, min_px=1.0)
            c.rect(glass, xa + 0.1 * s, top + 0.3 * s, xb - 0.1 * s, yg - (belt + 0.1) * s)
        lamp_col = (250, 245, 220) if front else (200, 20, 25)
        lamp = c.segment(kind, self.haze(_jitter(r, lamp_col, 10), Z), inst, fine=3, coarse=1)
        ly = yg - (belt - 0.15) * s
        c.rect(lamp, xa + 0.05 * s, ly - 0.12 * s, xa + 0.35 * s, ly + 0.05 * s)
        c.rect(lamp, xb - 0.35 * s, ly - 0.12 * s, xb - 0.05 * s, ly + 0.05 * s)
        plate = c.segment(kind, self.haze((220, 220, 215), Z), inst, fine=3, coarse=1)
        mx = 0.5 * (xa + xb)
        c.rect(plate, mx - 0.25 * s, yg - 0.5 * s, mx + 0.25 * s, yg - 0.38 * s)

    def plan_people(self) -> None:
        r, st = self.rng, self.street
        n = int(r.poisson(4.0))
        for _ in range(n):
            u = r.random()
            if u < 0.85:  # on a sidewalk
                side = -1.0 if r.random() < 0.5 else 1.0
                curb = st.road_r if side > 0 else st.road_l
                walk = st.walk_r if side > 0 else st.walk_l
                X = curb + side * r.uniform(0.5, max(0.6, abs(walk - curb) - 0.3))
                Z = r.uniform(3.5, 50.0)
            else:  # crossing the road
                X = r.uniform(st.road_l + 0.5, st.road_r - 0.5)
                Z = (self.crossing_z if self.crossing_z is not None else r.uniform(6.0, 30.0)) + r.uniform(0.5, 3.0)
            cyclist = r.random() < 0.1
            if cyclist:
                self.front.append((np.hypot(X, Z), lambda X=X, Z=Z: self.cyclist(X, Z)))
            else:
                self.front.append((np.hypot(X, Z), lambda X=X, Z=Z: self.person(X, Z, PERSON)))
            if r.random() < 0.3 and not cyclist:  # a companion walking alongside
                X2, Z2 = X + r.uniform(-0.8, 0.8), Z + r.uniform(-0.5, 1.5)
                self.front.append((np.hypot(X2, Z2), lambda X=X2, Z=Z2: self.person(X, Z, PERSON)))

    def person(self, X: float, Z: float, label: int, y_base: float = 0.0, inst: int | None = None,
               legs: bool = True) -> None:
        """A pedestrian seen from the front or back: legs, torso, arms, head."""
        c, r, cam = self.canvas, self.rng, self.cam
        inst = c.new_instance(label) if inst is None else inst
        s = cam.f / Z
        x, yg = cam.px(X, y_base, Z)
        height = r.uniform(1.55, 1.95)
        shirt = self.haze(r.uniform(20, 230, 3) * np.array([1.0, 0.9, 0.9]) if r.random() < 0.6
                          else _jitter(r, (40, 40, 45), 15), Z)
        pants_col = [(35, 40, 60), (30, 30, 32), (90, 90, 95), (170, 150, 120), (60, 70, 100)][r.integers(5)]
        pants = self.haze(_jitter(r, pants_col, 12), Z)
        skin = self.haze(_jitter(r, _SKIN[r.integers(len(_SKIN))], 10), Z)
        hair = self.haze(_jitter(r, (45, 35, 28), 15), Z)
        s_p = c.segment(label, pants, inst, fine=5, coarse=2)
        s_s = c.segment(label, shirt, inst, fine=5, coarse=2)
        s_k = c.segment(label, skin, inst, fine=4, coarse=1)
        s_h = c.segment(label, hair, inst, fine=4, coarse=1)
        hw = 0.22 * s  # half shoulder width
        hip = yg - 0.48 * height * s
        if legs:
            stride = r.uniform(0.0, 0.15) * s
            c.fill(s_p, np.array([[x - hw * 0.8, hip], [x + hw * 0.8, hip], [x + hw * 0.7 + stride, yg],
                                  [x + 0.05 * s, yg], [x, hip + 0.15 * s], [x - 0.05 * s, yg],
                                  [x - hw * 0.7 - stride, yg]], np.float32))
        neck = yg - 0.85 * height * s
        c.fill(s_s, np.array([[x - hw, neck], [x + hw, neck], [x + hw * 0.85, hip + 0.05 * s],
                              [x - hw * 0.85, hip + 0.05 * s]], np.float32))
        c.rect(s_s, x - hw - 0.07 * s, neck + 0.03 * s, x - hw + 0.01 * s, hip, min_px=0)  # arms
        c.rect(s_s, x + hw - 0.01 * s, neck + 0.03 * s, x + hw + 0.07 * s, hip, min_px=0)
        head_r = 0.11 * s
        hy = yg - (height - head_r / s) * s
        ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
        head = np.stack([x + head_r * np.cos(ang), hy + 1.15 * head_r * np.sin(ang)], -1).astype(np.float32)
        c.fill(s_k, head)
        c.fill(s_h, head[6:] if r.random() < 0.5 else head[5:])  # hair on top (back of head: upper half)
        if s * height < 3:  # far away: make sure the person shows at least as a small blob
            c.rect(s_s, x - 0.5, yg - max(2.0, height * s), x + 0.5, yg)

    def cyclist(self, X: float, Z: float) -> None:
        """A bicycle (label bicycle) with a rider (label rider) on it, seen from behind."""
        c, r, cam = self.canvas, self.rng, self.cam
        s = cam.f / Z
        x, yg = cam.px(X, 0.0, Z)
        bike_inst = c.new_instance(BICYCLE)
        frame = c.segment(BICYCLE, self.haze(_jitter(r, (40, 40, 45) if r.random() < 0.5 else (150, 30, 30), 15), Z),
                          bike_inst, fine=4, coarse=1)
        c.rect(frame, x - 0.04 * s, yg - 0.9 * s, x + 0.04 * s, yg, min_px=1.0)  # rear wheel edge-on
        c.rect(frame, x - 0.3 * s, yg - 1.0 * s, x + 0.3 * s, yg - 0.95 * s, min_px=1.0)  # handlebar
        self.person(X, Z, RIDER, y_base=0.75, legs=False)
        pants = c.segment(RIDER, self.haze(_jitter(r, (35, 38, 55), 10), Z), c._next_instance[RIDER] - 1 + RIDER * 1000,
                          fine=4, coarse=1)
        c.rect(pants, x - 0.16 * s, yg - 0.85 * s, x - 0.04 * s, yg - 0.35 * s, min_px=0)
        c.rect(pants, x + 0.04 * s, yg - 0.85 * s, x + 0.16 * s, yg - 0.35 * s, min_px=0)

    # ---- output --------------------------------------------------------------------
    def lighting_gain(self) -> np.ndarray:
        """Global brightness and a slight colour tint per scene, ``(3,)`` float32."""
        r = self.rng
        bright = r.uniform(0.75, 1.15)
        tint = 1.0 + r.uniform(-0.05, 0.05, 3)
        return (bright * tint).astype(np.float32)


def _check_size(height: int, width: int) -> None:
    for name, v in (("height", height), ("width", width)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise GescoInputError(f"{name} must be an int, got {type(v).__name__}")
        if v < MIN_SIZE:
            raise ShapeError(f"{name} must be >= {MIN_SIZE} pixels, got {v}")
        if v > 8192:
            raise ShapeError(f"{name} must be <= 8192 pixels, got {v}")


def generate_scene(seed: int, height: int = 64, width: int = 128) -> SceneSample:
    """Draw the synthetic street scene number ``seed`` at ``height x width`` pixels.

    Args:
        seed: non-negative int; the same seed always gives the same scene.
        height, width: image size in pixels, each ``>= 16``.
    Returns:
        :class:`SceneSample` with ``image (H, W, 3) uint8``, ``label (H, W) uint8``
        (Cityscapes label ids) and ``instance (H, W) int32``.
    Raises:
        GescoInputError: for a negative or non-int seed; ShapeError for a size < 16.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise GescoInputError(f"seed must be a non-negative int, got {seed!r}")
    _check_size(height, width)
    layout_seq, noise_seq = np.random.SeedSequence(int(seed)).spawn(2)
    builder = _SceneBuilder(np.random.default_rng(layout_seq), int(height), int(width))
    builder.build()
    gain = builder.lighting_gain()
    return builder.canvas.render(np.random.default_rng(noise_seq), gain)
