"""Procedural street scenes with Cityscapes label ids, deterministic per seed.

A scene is built in a small 3-D world seen by a pinhole camera standing on a straight
street (``X`` metres to the right, ``Y`` metres up, ``Z`` metres ahead):

* sky, the ground (terrain), a road with lane markings and zebra crossings, sidewalks
  with curbs on both sides;
* on each side either a row of buildings (windows, shop fronts, shaded end walls) or a
  park (trees on grass), optionally behind a fence, wall or hedge; a backdrop of
  buildings and trees closes the street;
* street furniture (lamp poles, traffic signs, traffic lights, street trees), moving and
  parked cars (a few trucks and buses), pedestrians and cyclists -- painted far to near,
  so that near objects occlude far ones.

Every primitive is a polygon painted into a *segment map* (one id per primitive). Each
segment carries its Cityscapes label id, its instance id and a colour model (base
colour, vertical gradient, fine and blotchy texture noise); image, label and instance
maps are all read from the same segment map at the end, so label and image agree
pixel-exactly at any resolution. Sizes are in metres and nothing in the layout depends
on the pixel size, so one seed gives the same scene at 64x128, 128x256 or 256x512.

Randomness comes only from ``np.random.default_rng`` seeded with the scene seed
(``SeedSequence(seed).spawn(2)``: one stream for the layout and colours, one for the
pixel noise, so the layout does not depend on the resolution). Speed: scalar geometry
is plain Python floats and random numbers are drawn in blocks (:class:`~gesco.data.synthetic.draws.Draws`), since
per-call overhead dominates at 64x128.

Modules, by role: :mod:`~gesco.data.synthetic.scene` (label ids, :class:`SceneSample`),
:mod:`~gesco.data.synthetic.draws` (the random streams), :mod:`~gesco.data.synthetic.geometry`
(camera and street), :mod:`~gesco.data.synthetic.palette` (colours),
:mod:`~gesco.data.synthetic.builder` (layout and painting), :mod:`~gesco.data.synthetic.canvas`
(rendering the maps), :mod:`~gesco.data.synthetic.generate` (one scene per seed, the splits)
and :mod:`~gesco.data.synthetic.dataset` (cached arrays, the torch data set).
"""

from __future__ import annotations

from gesco.data.synthetic.dataset import GENERATOR_VERSION, SyntheticScenes, render_scenes
from gesco.data.synthetic.generate import MAX_SIZE, MIN_SIZE, SPLITS, generate_scene, split_seed
from gesco.data.synthetic.scene import (  # the Cityscapes label ids the generator paints
    BICYCLE,
    BUILDING,
    BUS,
    CAR,
    FENCE,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    ROAD,
    SIDEWALK,
    SKY,
    SYNTHETIC_LABEL_IDS,
    SYNTHETIC_THING_IDS,
    TERRAIN,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    TRUCK,
    VEGETATION,
    WALL,
    SceneSample,
)

__all__ = [
    "ROAD",
    "SIDEWALK",
    "BUILDING",
    "WALL",
    "FENCE",
    "POLE",
    "TRAFFIC_LIGHT",
    "TRAFFIC_SIGN",
    "VEGETATION",
    "TERRAIN",
    "SKY",
    "PERSON",
    "RIDER",
    "CAR",
    "TRUCK",
    "BUS",
    "MOTORCYCLE",
    "BICYCLE",
    "GENERATOR_VERSION",
    "MAX_SIZE",
    "MIN_SIZE",
    "SPLITS",
    "SYNTHETIC_LABEL_IDS",
    "SYNTHETIC_THING_IDS",
    "SceneSample",
    "SyntheticScenes",
    "generate_scene",
    "render_scenes",
    "split_seed",
]
