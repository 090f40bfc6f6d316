"""The scene's layout and painting (:class:`SceneBuilder`): sky and ground, road, backdrop,
buildings or parks on each side, street furniture, vehicles and people, far to near."""


from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from gesco.data.synthetic.canvas import FIXED_SCALE, FIXED_SHIFT, Canvas
from gesco.data.synthetic.draws import Draws
from gesco.data.synthetic.geometry import CIRCLE10, CIRCLE12, Camera, Street
from gesco.data.synthetic.palette import (
    BUILDING_COLOURS,
    BUS_COLOURS,
    CAR_COLOUR_P,
    CAR_COLOURS,
    LAMP_COLOURS,
    PANTS,
    SIGN_COLOURS,
    SKIN,
    TRUCK_COLOURS,
    scale_colour,
)
from gesco.data.synthetic.scene import (
    BICYCLE,
    BUILDING,
    BUS,
    CAR,
    FENCE,
    PERSON,
    POLE,
    RIDER,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    TRUCK,
    VEGETATION,
    WALL,
    Colour,
)


# --------------------------------------------------------------------------- the scene
class SceneBuilder:
    """Builds one scene: layout and colours from ``draws``, painting into a :class:`Canvas`."""

    def __init__(self, draws: Draws, height: int, width: int):
        self.r = r = draws
        self.h, self.w = height, width
        horizon = height * r.uniform(0.36, 0.47)
        self.cam = Camera(f=width * r.uniform(0.85, 1.15), cx=width * r.uniform(0.42, 0.58),
                           horizon_y=horizon, cam_h=r.uniform(1.2, 1.6))
        self.canvas = Canvas(height, width, horizon)

        # scene-wide look: overcast or clear sky, haze, which side the sun lights
        self.overcast = r.random() < 0.55
        if self.overcast:  # grey to white, slightly blue
            v = r.uniform(168, 215)
            zenith = r.jitter((v - 8, v - 3, v + 6), 3)
            lift = r.uniform(15, 40)
            sky_h = (zenith[0] + lift, zenith[1] + lift, zenith[2] + lift * 0.8)
        else:
            zenith = r.jitter((70, 125, 200), 20)
            sky_h = r.jitter((175, 200, 228), 12)
        self.sky_zenith = zenith
        self.sky_horizon: Colour = tuple(min(v, 250.0) for v in sky_h)  # type: ignore[assignment]
        self.haze_dist = r.uniform(120.0, 450.0)
        self.sun_side = r.pick([-1.0, 1.0])
        self.sun_gain = 1.0 if self.overcast else r.uniform(1.05, 1.2)
        self.shade_gain = r.uniform(0.8, 0.92) if self.overcast else r.uniform(0.6, 0.8)

        lane_w = r.uniform(3.0, 3.7)
        n_lanes = r.pick([2, 2, 3, 4])
        cam_lane = r.integer(n_lanes)
        drive_l = -(cam_lane + r.uniform(0.35, 0.65)) * lane_w
        drive_r = drive_l + n_lanes * lane_w
        # a parking strip along either curb, outside the driving lanes
        road_l = drive_l - (r.uniform(2.0, 2.5) if r.random() < 0.6 else 0.0)
        road_r = drive_r + (r.uniform(2.0, 2.5) if r.random() < 0.6 else 0.0)
        self.street = Street(road_l=road_l, road_r=road_r, drive_l=drive_l, drive_r=drive_r,
                              walk_l=road_l - r.uniform(2.0, 5.0), walk_r=road_r + r.uniform(2.0, 5.0),
                              lane_w=lane_w, n_lanes=n_lanes, z_far=r.uniform(70.0, 200.0))
        self.crossing_z: float | None = None  # distance of the zebra crossing, if any
        # objects standing on the sidewalks and the road: (distance, painter), far to near
        self.front: list[tuple[float, Callable[[], None]]] = []

    # ---- helpers -------------------------------------------------------------------
    def haze(self, c: Colour, dist: float) -> Colour:
        """Blend a colour towards the horizon sky with distance (aerial perspective)."""
        a = 1.0 - math.exp(-dist / self.haze_dist)
        h = self.sky_horizon
        return ((1 - a) * c[0] + a * h[0], (1 - a) * c[1] + a * h[1], (1 - a) * c[2] + a * h[2])

    def side_gain(self, side: float) -> float:
        return self.sun_gain if side == self.sun_side else self.shade_gain

    def queue(self, X: float, Z: float, painter: Callable[[], None]) -> None:
        self.front.append((math.hypot(X, Z), painter))

    # ---- layers, back to front ---------------------------------------------------
    def build(self) -> None:
        self.paint_sky_and_ground()
        self.paint_road()
        self.paint_backdrop()
        behind: list[tuple[float, Callable[[], None]]] = []  # trees behind the barriers
        barriers: list[Callable[[], None]] = []
        for side in (-1.0, 1.0):
            self.plan_side(side, behind, barriers)
        for _, paint in sorted(behind, key=lambda t: -t[0]):
            paint()
        for paint in barriers:
            paint()
        self.plan_street_furniture()
        self.plan_vehicles()
        self.plan_people()
        for _, paint in sorted(self.front, key=lambda t: -t[0]):
            paint()

    def paint_sky_and_ground(self) -> None:
        c, r = self.canvas, self.r
        # segment 0 covers everything: sky, brighter towards the horizon (rel_y ~ -0.4 at the top)
        grad = tuple((hc - zc) / 0.45 for hc, zc in zip(self.sky_horizon, self.sky_zenith))
        c.segment(SKY, self.sky_horizon, grad=grad, fine=1.0, coarse=6.0 if self.overcast else 3.0)
        grass = r.jitter((105, 125, 60), 15) if r.random() < 0.7 else r.jitter((140, 125, 95), 15)
        terrain = c.segment(TERRAIN, self.haze(grass, 30), grad=(30, 30, 15), fine=10, coarse=10)
        c.rect(terrain, -1, self.cam.horizon_y, self.w + 1, self.h + 1)

    def paint_road(self) -> None:
        c, r, cam, st = self.canvas, self.r, self.cam, self.street
        z0, z1 = 0.5, st.z_far + 60
        walk_col = r.jitter((150, 148, 145), 20) if r.random() < 0.7 else r.jitter((160, 125, 115), 12)
        walk = c.segment(SIDEWALK, self.haze(walk_col, 20), grad=(25, 25, 25), fine=7, coarse=5)
        c.polys(walk, [cam.ground_quad(st.walk_l, st.road_l, z0, z1), cam.ground_quad(st.road_r, st.walk_r, z0, z1)])
        curb = c.segment(SIDEWALK, self.haze(scale_colour(walk_col, 1.15), 20), fine=5, coarse=3)
        c.polys(curb, [cam.ground_quad(st.road_l - 0.25, st.road_l, z0, z1),
                       cam.ground_quad(st.road_r, st.road_r + 0.25, z0, z1)])
        asphalt = r.jitter((88, 86, 92), 14)
        road = c.segment(ROAD, self.haze(asphalt, 25), grad=(-10, -10, -10), fine=6, coarse=7)
        c.poly(road, cam.ground_quad(st.road_l, st.road_r, z0, z1))
        if r.random() < 0.5:  # a darker repaired strip: same label, different tone
            patch = c.segment(ROAD, self.haze(scale_colour(asphalt, 0.85), 25), fine=5, coarse=6)
            x = r.uniform(st.road_l, st.road_r - 1.5)
            c.poly(patch, cam.ground_quad(x, x + r.uniform(0.8, 2.0), z0, z1))

        # lane markings (label road): dashed lines between lanes, solid edge lines, zebra
        paint = c.segment(ROAD, self.haze(r.jitter((215, 215, 210), 15), 25), fine=5, coarse=2)
        quads = []
        dash, gap, lw = r.uniform(2.5, 4.0), r.uniform(4.0, 8.0), 0.15
        start = z0 - r.uniform(0, dash + gap)
        z_max = min(st.z_far, 120.0)
        for k in range(1, st.n_lanes):
            xl = st.drive_l + k * st.lane_w
            z = start
            while z < z_max:
                quads.append(cam.ground_quad(xl - lw, xl + lw, max(z, z0), z + dash))
                z += dash + gap
        if r.random() < 0.6:  # solid lines along the edges of the driving lanes
            xl = st.drive_l + (0.3 if st.drive_l == st.road_l else 0.0)
            xr = st.drive_r - (0.3 if st.drive_r == st.road_r else 0.0)
            quads += [cam.ground_quad(xl, xl + 2 * lw, z0, z1), cam.ground_quad(xr - 2 * lw, xr, z0, z1)]
        if r.random() < 0.35:
            zc, depth = r.uniform(8.0, 30.0), r.uniform(3.0, 5.0)
            x = st.road_l + 0.5
            while x < st.road_r - 0.5:
                quads.append(cam.ground_quad(x, x + 0.5, zc, zc + depth))
                x += 1.0
            self.crossing_z = zc
        c.polys(paint, quads)

    def paint_backdrop(self) -> None:
        """What closes the street at ``z_far``: a row of buildings and trees across it."""
        r, st = self.r, self.street
        z = st.z_far
        x = st.walk_l - 40.0
        while x < st.walk_r + 40.0:
            wid = r.uniform(8.0, 25.0)
            if r.random() < 0.7:
                col = self.haze(r.pick(BUILDING_COLOURS), z)
                b = self.canvas.segment(BUILDING, col, grad=(15, 15, 15), fine=4, coarse=4)
                self.canvas.poly(b, self.cam.front_quad(x, x + wid, 0, r.uniform(8.0, 28.0), z))
            else:
                self.tree(x + wid / 2, z, r.uniform(5, 12))
            x += wid

    # ---- the two sides -------------------------------------------------------------
    def plan_side(self, side: float, behind: list, barriers: list) -> None:
        """Buildings or a park on one side; queues trees in the setback and a barrier."""
        r, st = self.r, self.street
        walk_edge = st.walk_edge(side)
        park = r.random() < 0.28
        setback = r.uniform(1.0, 8.0) if (park or r.random() < 0.4) else 0.0
        if park:
            n_trees, depth = 3 + r.integer(6), 30.0
        else:
            self.paint_facades(side, walk_edge + side * setback)
            n_trees, depth = (r.integer(3) if setback > 2 else 0), setback
        for _ in range(n_trees):
            X = walk_edge + side * r.uniform(1.0, max(1.5, depth - 1.0))
            Z = r.uniform(4.0, st.z_far)
            hgt = r.uniform(4.0, 12.0)
            behind.append((math.hypot(X, Z), lambda X=X, Z=Z, hgt=hgt: self.tree(X, Z, hgt)))
        if r.random() < (0.55 if setback > 0 or park else 0.1):
            kind = r.pick(["fence", "wall", "hedge"], [0.45, 0.25, 0.3])
            z0 = r.uniform(1.0, 20.0)
            z1 = min(z0 + r.uniform(15.0, 80.0), st.z_far)
            Xb = walk_edge + side * 0.2
            barriers.append(lambda: self.barrier(kind, side, Xb, z0, z1))

    def paint_facades(self, side: float, inner: float) -> None:
        """A row of buildings along one side of the street, painted far to near."""
        c, r, cam, st = self.canvas, self.r, self.cam, self.street
        blocks = []
        z = r.uniform(0.0, 5.0)
        while z < st.z_far:
            length = r.uniform(8.0, 30.0)
            gap = r.uniform(3.0, 12.0) if r.random() < 0.2 else 0.0
            blocks.append((z, min(z + length, st.z_far), inner + side * r.uniform(0.0, 2.0), r.uniform(7.0, 26.0)))
            z += length + gap
        gain = self.side_gain(side)
        facade_ids = []
        for z0, z1, X, hb in reversed(blocks):
            base = r.jitter(r.pick(BUILDING_COLOURS), 14)
            # the end wall facing the camera (plane Z = z0), in the shade
            end = c.segment(BUILDING, self.haze(scale_colour(base, self.shade_gain * 0.9), z0 + 10), fine=4, coarse=4)
            c.poly(end, cam.front_quad(X, X + side * 15.0, 0, hb, z0))
            mid = 0.5 * (z0 + z1)
            facade = c.segment(BUILDING, self.haze(scale_colour(base, gain), mid), grad=(20, 20, 20), fine=4, coarse=6)
            c.poly(facade, cam.side_quad(X, z0, z1, 0, hb))
            facade_ids.append(facade)
            if r.random() < 0.5:  # a ground-floor shop front
                shop = c.segment(BUILDING, self.haze(scale_colour(r.jitter(scale_colour(base, 0.7), 20), gain), mid), fine=4, coarse=3)
                c.poly(shop, cam.side_quad(X, z0, z1, 0, r.uniform(2.8, 4.0)))
        self.windows(blocks, facade_ids, gain)

    _WINDOW_BANDS = (0.0, 15.0, 35.0, 70.0, 1e9)  # distance bands sharing one window colour (haze)

    def windows(self, blocks: list[tuple[float, float, float, float]], facade_ids: list[int], gain: float) -> None:
        """Grids of windows on the facades of one side; window pixels stay label building.

        All windows of a side are painted in a few calls (one per distance band, dark and
        lit), and only onto facade pixels, so they never show on end walls or shop fronts.
        """
        c, r, cam = self.canvas, self.r, self.cam
        glass = scale_colour(self.sky_horizon, 0.45) if r.random() < 0.5 else r.jitter((45, 52, 62), 10)
        glass = scale_colour(glass, gain * (0.6 + 0.3 * r.random()))
        lit_col = r.jitter((150, 160, 165), 20)
        lit_p = 0.12 * r.random()
        Zs, Ys, Xs, lit = [], [], [], []
        for z0, z1, X, hb in blocks:
            floor_h, col_w = r.uniform(2.8, 3.6), r.uniform(2.2, 4.0)
            win_w, win_h = col_w * r.uniform(0.35, 0.65), floor_h * r.uniform(0.4, 0.6)
            zs = np.arange(z0 + 0.7, z1 - win_w - 0.3, col_w)
            ys = np.arange(floor_h + 0.8, hb - win_h - 0.5, floor_h)
            if len(zs) == 0 or len(ys) == 0:
                continue
            zz, yy = (a.ravel() for a in np.meshgrid(zs, ys))
            lit.append(r.array(len(zz)) < lit_p)  # drawn before culling: layout is size-independent
            Zs.append(np.stack([zz, zz + win_w, zz + win_w, zz], 1))
            Ys.append(np.stack([yy, yy, yy + win_h, yy + win_h], 1))
            Xs.append(np.full(len(zz), X))
        if not Zs:
            return
        Z, Y, X, lit = np.concatenate(Zs), np.concatenate(Ys), np.concatenate(Xs), np.concatenate(lit)
        # drop windows thinner than half a pixel (this depends on the resolution only)
        keep = cam.f * (Z[:, 1] - Z[:, 0]) * np.abs(X) / (Z[:, 0] * Z[:, 1]) > 0.5
        Z, Y, X, lit = Z[keep], Y[keep], X[keep], lit[keep]
        if len(Z) == 0:
            return
        s = cam.f / Z
        quads = np.stack([cam.cx + s * X[:, None], cam.horizon_y + s * (cam.cam_h - Y)], -1)
        quads = np.rint(quads * FIXED_SCALE).astype(np.int32)  # (n, 4, 2) fixed point
        c.flush()  # windows are painted directly, only onto the facades painted so far
        before = c.seg.copy()
        bands = np.digitize(Z[:, 0], self._WINDOW_BANDS) - 1
        for band in np.unique(bands):
            dist = 0.5 * (self._WINDOW_BANDS[band] + min(self._WINDOW_BANDS[band + 1], 120.0))
            for is_lit, colour in ((False, glass), (True, lit_col)):
                sel = (bands == band) & (lit == is_lit)
                if sel.any():
                    seg = c.segment(BUILDING, self.haze(colour, dist), grad=(-20, -20, -20), fine=5, coarse=3)
                    cv2.fillPoly(c.seg, list(quads[sel]), seg, cv2.LINE_8, FIXED_SHIFT)
        on_facade = np.zeros(len(c.labels), bool)
        on_facade[facade_ids] = True
        np.copyto(c.seg, before, where=~on_facade[before])

    def barrier(self, kind: str, side: float, X: float, z0: float, z1: float) -> None:
        """A hedge, wall or fence in the plane ``X`` from ``z0`` to ``z1``."""
        c, r, cam = self.canvas, self.r, self.cam
        gain, mid = self.side_gain(side), 0.5 * (z0 + z1)
        if kind == "hedge":
            s = c.segment(VEGETATION, self.haze(scale_colour(r.jitter((55, 85, 40), 12), gain), mid), fine=14, coarse=10)
            c.poly(s, cam.side_quad(X, z0, z1, 0, r.uniform(0.8, 1.6)))
        elif kind == "wall":
            col = r.jitter((165, 160, 150), 20) if r.random() < 0.6 else r.jitter((140, 90, 70), 12)
            s = c.segment(WALL, self.haze(scale_colour(col, gain), mid), fine=6, coarse=6)
            c.poly(s, cam.side_quad(X, z0, z1, 0, r.uniform(0.8, 2.2)))
        else:  # fence: a see-through-ish panel, posts and a top rail
            col = r.jitter((120, 120, 118), 20) if r.random() < 0.6 else r.jitter((135, 105, 75), 15)
            hf = r.uniform(0.9, 1.8)
            panel = c.segment(FENCE, self.haze(scale_colour(col, gain * 0.75), mid), fine=10, coarse=4)
            c.poly(panel, cam.side_quad(X, z0, z1, 0.1, hf))
            bars = c.segment(FENCE, self.haze(scale_colour(col, gain * 1.15), mid), fine=5, coarse=3)
            step = r.uniform(1.5, 3.0)
            quads = [cam.side_quad(X, z0, z1, hf - 0.12, hf)]
            z = z0
            while z < z1 and z < 60.0:
                quads.append(cam.side_quad(X, z, z + 0.15, 0, hf))
                z += step
            c.polys(bars, quads)

    # ---- objects ------------------------------------------------------------------
    def tree(self, X: float, Z: float, height: float) -> None:
        """A tree: a trunk and 2-4 blobby crown parts in different greens (label vegetation)."""
        c, r, cam = self.canvas, self.r, self.cam
        s = cam.scale(Z)
        x, yg = cam.px(X, 0.0, Z)
        trunk_h, crown_r = height * r.uniform(0.3, 0.45), height * r.uniform(0.25, 0.38)
        trunk = c.segment(VEGETATION, self.haze(r.jitter((80, 65, 50), 12), Z), fine=6, coarse=3)
        c.rect(trunk, x - 0.15 * s, yg - (trunk_h + crown_r) * s, x + 0.15 * s, yg, min_px=1.0)
        base = r.jitter((62, 92, 42), 14)
        n_blobs = 2 + r.integer(3)
        for k in range(n_blobs):
            cx = x + r.uniform(-0.4, 0.4) * crown_r * s
            cy = yg - (trunk_h + crown_r * r.uniform(0.7, 1.3)) * s
            rad = crown_r * r.uniform(0.6, 1.0) * s
            pts = []
            for ca, sa in CIRCLE12:
                rr = rad * r.uniform(0.75, 1.25)
                pts.append((cx + rr * ca, cy + 0.9 * rr * sa))
            tone = 0.8 + 0.35 * k / (n_blobs - 1)
            leaf = c.segment(VEGETATION, self.haze(scale_colour(base, tone), Z), fine=16, coarse=8)
            c.poly(leaf, pts)

    def plan_street_furniture(self) -> None:
        r, st = self.r, self.street
        for side in (-1.0, 1.0):
            curb = st.curb(side)
            walk_w = abs(st.walk_edge(side) - curb)
            if r.random() < 0.85:  # lamp poles at a regular spacing along the curb
                spacing = r.uniform(12.0, 30.0)
                X, hp = curb + side * r.uniform(0.4, 0.9), r.uniform(5.0, 9.0)
                Z = r.uniform(3.0, spacing)
                while Z < min(st.z_far * 0.8, 90.0):
                    self.queue(X, Z, lambda X=X, Z=Z, hp=hp, side=side: self.lamp_pole(X, Z, hp, side))
                    Z += spacing
            for _ in range(r.integer(4)):  # traffic signs
                X, Z = curb + side * r.uniform(0.4, 1.2), r.uniform(5.0, 60.0)
                self.queue(X, Z, lambda X=X, Z=Z: self.sign_post(X, Z))
            if r.random() < 0.45:  # a traffic light, at the crossing if there is one
                X = curb + side * r.uniform(0.4, 1.0)
                Z = (self.crossing_z if self.crossing_z is not None else r.uniform(10.0, 40.0)) - 1.0
                self.queue(X, Z, lambda X=X, Z=Z: self.traffic_light(X, Z))
            if r.random() < 0.5 and walk_w > 2.5:  # street trees on the sidewalk
                spacing = r.uniform(8.0, 18.0)
                X = curb + side * r.uniform(1.0, walk_w - 0.8)
                Z = r.uniform(3.0, spacing)
                while Z < min(st.z_far * 0.8, 70.0):
                    hgt = r.uniform(5.0, 10.0)
                    self.queue(X, Z, lambda X=X, Z=Z, hgt=hgt: self.tree(X, Z, hgt))
                    Z += spacing

    def lamp_pole(self, X: float, Z: float, height: float, side: float) -> None:
        c, cam = self.canvas, self.cam
        s = cam.scale(Z)
        x, yg = cam.px(X, 0.0, Z)
        p = c.segment(POLE, self.haze(self.r.jitter((120, 122, 125), 15), Z), grad=(10, 10, 10), fine=4, coarse=2)
        c.rect(p, x - 0.09 * s, yg - height * s, x + 0.09 * s, yg, min_px=1.0)
        arm_end = x - side * 1.5 * s  # the arm reaches over the road
        c.rect(p, min(x, arm_end), yg - height * s, max(x, arm_end), yg - (height - 0.15) * s, min_px=1.0)

    def post(self, X: float, Z: float, heights: tuple[float, float], grey: Colour,
             half_width: float) -> tuple[float, float, float, float]:
        """Paint a plain pole (a sign post, a traffic light's) at ground point ``(X, Z)``: height
        drawn from ``heights`` (metres), colour ``grey`` jittered. Returns ``(x, y_ground, px per
        metre, height)``."""
        c, r, cam = self.canvas, self.r, self.cam
        s = cam.scale(Z)
        x, yg = cam.px(X, 0.0, Z)
        hp = r.uniform(*heights)
        p = c.segment(POLE, self.haze(r.jitter(grey, 15), Z), fine=4, coarse=2)
        c.rect(p, x - half_width * s, yg - hp * s, x + half_width * s, yg, min_px=1.0)
        return x, yg, s, hp

    def sign_post(self, X: float, Z: float) -> None:
        c, r = self.canvas, self.r
        x, yg, s, hp = self.post(X, Z, (2.2, 3.2), (130, 132, 135), 0.05)
        y_top = yg - hp * s
        for k in range(1 if r.random() < 0.7 else 2):
            size = r.uniform(0.5, 0.8) * s
            cy = y_top + (k + 0.5) * size * 1.1
            plate = c.segment(TRAFFIC_SIGN, self.haze(r.jitter(r.pick(SIGN_COLOURS), 12), Z), fine=4, coarse=2)
            shape, hs = r.integer(3), size / 2
            if shape == 0:  # disc
                pts = [(x + hs * ca, cy + hs * sa) for ca, sa in CIRCLE12]
            elif shape == 1:  # triangle, point down
                pts = [(x - hs, cy - hs), (x + hs, cy - hs), (x, cy + hs)]
            else:
                pts = [(x - hs, cy - hs), (x + hs, cy - hs), (x + hs, cy + hs), (x - hs, cy + hs)]
            c.poly(plate, pts)
            inner_col = r.jitter((235, 235, 235) if r.random() < 0.6 else (40, 40, 40), 10)
            if size > 3:  # the inner field / symbol
                inner = c.segment(TRAFFIC_SIGN, self.haze(inner_col, Z), fine=3, coarse=1)
                c.poly(inner, [(x + 0.55 * (px - x), cy + 0.55 * (py - cy)) for px, py in pts])

    def traffic_light(self, X: float, Z: float) -> None:
        c, r = self.canvas, self.r
        x, yg, s, hp = self.post(X, Z, (2.6, 4.0), (110, 112, 115), 0.07)
        housing = r.jitter((35, 35, 38) if r.random() < 0.7 else (200, 170, 45), 10)
        box = c.segment(TRAFFIC_LIGHT, self.haze(housing, Z), fine=4, coarse=2)
        bw, bh = 0.35 * s, 0.95 * s
        top = yg - (hp + 0.9) * s
        c.rect(box, x - bw / 2, top, x + bw / 2, top + bh, min_px=1.0)
        state = r.integer(3)
        lamp = c.segment(TRAFFIC_LIGHT, self.haze(LAMP_COLOURS[state], Z), fine=3, coarse=1)
        ly = top + bh * (0.2 + 0.3 * state)  # red on top, amber, green at the bottom
        c.rect(lamp, x - bw * 0.3, ly - bw * 0.3, x + bw * 0.3, ly + bw * 0.3)

    def plan_vehicles(self) -> None:
        r, st = self.r, self.street
        for k in range(st.n_lanes):  # moving traffic in every lane
            X = st.drive_l + (k + 0.5) * st.lane_w + r.uniform(-0.3, 0.3)
            own_lane = abs(X) < 0.5 * st.lane_w
            Z = r.uniform(10.0, 25.0) if own_lane else r.uniform(6.0, 20.0)
            while Z < min(st.z_far, 80.0):
                if r.random() < 0.4:
                    self.queue_vehicle(X, Z)
                Z += r.uniform(8.0, 30.0)
        for side in (-1.0, 1.0):  # parked cars on the parking strips
            drive_edge = st.drive_r if side > 0 else st.drive_l
            if abs(st.curb(side) - drive_edge) > 1.0:
                X = st.curb(side) - side * r.uniform(1.0, 1.2)
                Z = r.uniform(4.0, 12.0)
                while Z < min(st.z_far, 60.0):
                    if r.random() < 0.6:
                        self.queue_vehicle(X, Z, parked=True)
                    Z += r.uniform(5.0, 9.0)

    def queue_vehicle(self, X: float, Z: float, parked: bool = False) -> None:
        r = self.r
        u = r.random()
        if u < 0.06 and Z > 12 and not parked:
            kind, dims = TRUCK, (r.uniform(2.2, 2.5), r.uniform(2.6, 3.4), r.uniform(6, 9))
            colour = r.pick(TRUCK_COLOURS)
        elif u < 0.09 and Z > 15 and not parked:
            kind, dims = BUS, (2.5, r.uniform(3.0, 3.4), r.uniform(10, 13))
            colour = r.pick(BUS_COLOURS)
        else:
            kind, dims = CAR, (r.uniform(1.7, 2.0), r.uniform(1.4, 1.75), r.uniform(3.9, 4.9))
            colour = r.pick(CAR_COLOURS, CAR_COLOUR_P)
        colour = r.jitter(colour, 10)
        front = X < 0 and not parked and r.random() < 0.6  # oncoming traffic shows its front
        self.queue(X, Z, lambda: self.vehicle(kind, X, Z, dims, colour, front))

    def vehicle(self, kind: int, X: float, Z: float, dims: tuple[float, float, float], colour: Colour,
                front: bool) -> None:
        """A box-shaped vehicle: the side face seen at an angle, then the rear (or front) face."""
        c, r, cam = self.canvas, self.r, self.cam
        width, height, length = dims
        inst = c.new_instance(kind)
        body = c.segment(kind, self.haze(colour, Z), inst, grad=(15, 15, 15), fine=4, coarse=3)
        side_body = c.segment(kind, self.haze(scale_colour(colour, self.shade_gain + 0.1), Z), inst, fine=4, coarse=3)
        glass = c.segment(kind, self.haze(r.jitter((38, 44, 54), 8), Z), inst, fine=4, coarse=2)
        dark = c.segment(kind, self.haze(r.jitter((22, 22, 24), 5), Z), inst, fine=3, coarse=1)
        lamp = c.segment(kind, self.haze(r.jitter((250, 245, 220) if front else (200, 20, 25), 10), Z), inst,
                         fine=3, coarse=1)
        belt = height * (0.55 if kind == CAR else 0.45)  # the window line
        x0, x1 = X - width / 2, X + width / 2
        xs = x0 if X > 0 else x1  # the side facing the camera axis
        sgn = 1.0 if X > 0 else -1.0
        za, zb = Z, Z + length
        s = cam.scale(Z)
        if width * s < 3:  # a few pixels: one block (all random draws are made above)
            xa, yg = cam.px(x0, 0.0, Z)
            c.rect(body, xa, yg - height * s, xa + width * s, yg, min_px=1.0)
            return
        big = width * s > 4  # details only where they cover pixels
        if abs(xs) > 0.2:
            if kind == CAR:  # lower body at full width, the cabin set in and shorter
                xc = xs + sgn * 0.12 * width
                c.polys(side_body, [cam.side_quad(xs, za, zb, 0.25, belt),
                                    cam.side_quad(xc, za + 0.12 * length, zb - 0.25 * length, belt, height)])
                c.poly(glass, cam.side_quad(xc, za + 0.2 * length, zb - 0.3 * length, belt + 0.05, height - 0.1))
            else:
                c.poly(side_body, cam.side_quad(xs, za, zb, 0.25, height))
                if kind == BUS:
                    c.poly(glass, cam.side_quad(xs, za + 0.5, zb - 0.5, belt, height - 0.4))
            if big:
                c.polys(dark, [cam.side_quad(xs, zw - 0.35, zw + 0.35, 0.0, 0.65)
                               for zw in (za + 0.18 * length, zb - 0.18 * length)])
        # rear (or front) face in the plane Z
        xa, yg = cam.px(x0, 0.0, Z)
        xb = xa + width * s
        top = yg - height * s
        c.polys(dark, [((xa + 0.05 * s, yg - 0.55 * s), (xa + 0.35 * s, yg - 0.55 * s), (xa + 0.35 * s, yg), (xa + 0.05 * s, yg)),
                       ((xb - 0.35 * s, yg - 0.55 * s), (xb - 0.05 * s, yg - 0.55 * s), (xb - 0.05 * s, yg), (xb - 0.35 * s, yg))])
        if kind == CAR:  # the cabin narrower than the body, with the rear window
            inset, g_in = 0.12 * width * s, 0.2 * width * s
            c.polys(body, [((xa, yg - belt * s), (xb, yg - belt * s), (xb, yg - 0.2 * s), (xa, yg - 0.2 * s)),
                           ((xa, yg - belt * s), (xb, yg - belt * s), (xb - inset, top), (xa + inset, top))])
            yb = yg - (belt + 0.06) * s
            c.poly(glass, [(xa + 0.8 * g_in, yb), (xb - 0.8 * g_in, yb), (xb - g_in, top + 0.1 * s), (xa + g_in, top + 0.1 * s)])
        else:
            c.rect(body, xa, top, xb, yg - 0.2 * s, min_px=1.0)
            c.rect(glass, xa + 0.1 * s, top + 0.3 * s, xb - 0.1 * s, yg - (belt + 0.1) * s)
        if big:
            ly = yg - (belt - 0.15) * s
            c.polys(lamp, [((xa + 0.05 * s, ly - 0.12 * s), (xa + 0.35 * s, ly - 0.12 * s),
                            (xa + 0.35 * s, ly + 0.05 * s), (xa + 0.05 * s, ly + 0.05 * s)),
                           ((xb - 0.35 * s, ly - 0.12 * s), (xb - 0.05 * s, ly - 0.12 * s),
                            (xb - 0.05 * s, ly + 0.05 * s), (xb - 0.35 * s, ly + 0.05 * s))])
        if width * s > 12:
            plate = c.segment(kind, self.haze((220, 220, 215), Z), inst, fine=3, coarse=1)
            mx = 0.5 * (xa + xb)
            c.rect(plate, mx - 0.25 * s, yg - 0.5 * s, mx + 0.25 * s, yg - 0.38 * s)

    def plan_people(self) -> None:
        r, st = self.r, self.street
        for _ in range(r.poisson(4.0)):
            if r.random() < 0.85:  # on a sidewalk
                side = r.pick([-1.0, 1.0])
                curb = st.curb(side)
                X = curb + side * r.uniform(0.5, max(0.6, abs(st.walk_edge(side) - curb) - 0.3))
                Z = r.uniform(3.5, 45.0)
            else:  # crossing the road
                X = r.uniform(st.road_l + 0.5, st.road_r - 0.5)
                Z = (self.crossing_z if self.crossing_z is not None else r.uniform(6.0, 30.0)) + r.uniform(0.5, 3.0)
            if r.random() < 0.1:
                self.queue(X, Z, lambda X=X, Z=Z: self.cyclist(X, Z))
                continue
            self.queue(X, Z, lambda X=X, Z=Z: self.person(X, Z, PERSON))
            if r.random() < 0.3:  # a companion walking alongside
                X2, Z2 = X + r.uniform(-0.8, 0.8), Z + r.uniform(-0.5, 1.5)
                self.queue(X2, Z2, lambda X=X2, Z=Z2: self.person(X, Z, PERSON))

    def person(self, X: float, Z: float, label: int, y_base: float = 0.0, legs: bool = True) -> int:
        """A pedestrian (or a rider's upper body), seen from the front or back; returns its instance id."""
        c, r, cam = self.canvas, self.r, self.cam
        inst = c.new_instance(label)
        s = cam.scale(Z)
        x, yg = cam.px(X, y_base, Z)
        height = r.uniform(1.55, 1.95) - y_base * 0.6
        if r.random() < 0.6:
            shirt = (r.uniform(20, 230), r.uniform(20, 210), r.uniform(20, 210))
        else:
            shirt = r.jitter((40, 40, 45), 15)
        s_pants = c.segment(label, self.haze(r.jitter(r.pick(PANTS), 12), Z), inst, fine=5, coarse=2)
        s_shirt = c.segment(label, self.haze(shirt, Z), inst, fine=5, coarse=2)
        s_skin = c.segment(label, self.haze(r.jitter(r.pick(SKIN), 10), Z), inst, fine=4, coarse=1)
        s_hair = c.segment(label, self.haze(r.jitter((45, 35, 28), 15), Z), inst, fine=4, coarse=1)
        stride = r.uniform(0.0, 0.15) * s
        long_hair = r.random() < 0.4
        hw = 0.22 * s  # half the shoulder width
        hip = yg - 0.48 * height * s
        neck = yg - 0.85 * height * s
        if height * s < 6:  # a few pixels tall: shirt over trousers, two blocks
            c.rect(s_shirt, x - hw, yg - height * s, x + hw, hip, min_px=1.0)
            if legs:
                c.rect(s_pants, x - hw, hip, x + hw, yg, min_px=1.0)
            return inst
        if legs:
            c.poly(s_pants, [(x - hw * 0.8, hip), (x + hw * 0.8, hip), (x + hw * 0.7 + stride, yg), (x + 0.05 * s, yg),
                             (x, hip + 0.15 * s), (x - 0.05 * s, yg), (x - hw * 0.7 - stride, yg)])
        # torso and arms
        c.polys(s_shirt, [((x - hw, neck), (x + hw, neck), (x + hw * 0.85, hip + 0.05 * s), (x - hw * 0.85, hip + 0.05 * s)),
                          ((x - hw - 0.07 * s, neck + 0.03 * s), (x - hw + 0.01 * s, neck + 0.03 * s),
                           (x - hw + 0.01 * s, hip), (x - hw - 0.07 * s, hip)),
                          ((x + hw - 0.01 * s, neck + 0.03 * s), (x + hw + 0.07 * s, neck + 0.03 * s),
                           (x + hw + 0.07 * s, hip), (x + hw - 0.01 * s, hip))])
        head_r = 0.11 * s
        hy = yg - height * s + head_r
        head = [(x + head_r * ca, hy + 1.15 * head_r * sa) for ca, sa in CIRCLE10]
        c.poly(s_skin, head)
        c.poly(s_hair, head[4:] + head[:2] if long_hair else head[5:])  # hair on top
        return inst

    def cyclist(self, X: float, Z: float) -> None:
        """A bicycle (label bicycle) with a rider (label rider) on it, seen from behind."""
        c, r, cam = self.canvas, self.r, self.cam
        s = cam.scale(Z)
        x, yg = cam.px(X, 0.0, Z)
        bike = c.new_instance(BICYCLE)
        frame = c.segment(BICYCLE, self.haze(r.jitter((40, 40, 45) if r.random() < 0.5 else (150, 30, 30), 15), Z),
                          bike, fine=4, coarse=1)
        c.rect(frame, x - 0.04 * s, yg - 0.9 * s, x + 0.04 * s, yg, min_px=1.0)  # rear wheel, edge-on
        c.rect(frame, x - 0.3 * s, yg - 1.0 * s, x + 0.3 * s, yg - 0.95 * s, min_px=1.0)  # handlebar
        rider = self.person(X, Z, RIDER, y_base=0.75, legs=False)
        legs = c.segment(RIDER, self.haze(r.jitter((35, 38, 55), 10), Z), rider, fine=4, coarse=1)
        c.polys(legs, [((x - 0.16 * s, yg - 0.85 * s), (x - 0.04 * s, yg - 0.85 * s),
                        (x - 0.04 * s, yg - 0.35 * s), (x - 0.16 * s, yg - 0.35 * s)),
                       ((x + 0.04 * s, yg - 0.85 * s), (x + 0.16 * s, yg - 0.85 * s),
                        (x + 0.16 * s, yg - 0.35 * s), (x + 0.04 * s, yg - 0.35 * s))])

    def lighting_gain(self) -> Colour:
        """Global brightness times a slight colour tint, per scene."""
        r = self.r
        bright = r.uniform(0.75, 1.15)
        return (bright * r.uniform(0.97, 1.03), bright * r.uniform(0.97, 1.03), bright * r.uniform(0.97, 1.03))
