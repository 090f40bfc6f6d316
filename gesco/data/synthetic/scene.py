"""What a synthetic scene is: the Cityscapes label ids the generator paints, which of them are
things (with instance ids), and :class:`SceneSample` (image, label and instance maps)."""


from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Cityscapes label ids used by the generator (cityscapesscripts labels.py).
ROAD, SIDEWALK, BUILDING, WALL, FENCE = 7, 8, 11, 12, 13
POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY = 17, 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, MOTORCYCLE, BICYCLE = 24, 25, 26, 27, 28, 32, 33

#: Every label id :func:`generate_scene` can produce.
SYNTHETIC_LABEL_IDS: frozenset[int] = frozenset(
    {ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION,
     TERRAIN, SKY, PERSON, RIDER, CAR, TRUCK, BUS, BICYCLE}
)
#: Label ids that get instance ids ``label_id * 1000 + k`` (Cityscapes "things").
SYNTHETIC_THING_IDS: frozenset[int] = frozenset({PERSON, RIDER, CAR, TRUCK, BUS, BICYCLE})


Colour = tuple[float, float, float]
Point = tuple[float, float]


@dataclass(frozen=True)
class SceneSample:
    """One synthetic scene.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        label: ``(H, W)`` uint8 Cityscapes label ids (values in :data:`SYNTHETIC_LABEL_IDS`).
        instance: ``(H, W)`` int32; ``label_id * 1000 + k`` (``k = 0, 1, ...`` per class)
            on things, the plain label id on stuff (as Cityscapes ``*_instanceIds.png``).
    """

    image: np.ndarray
    label: np.ndarray
    instance: np.ndarray
