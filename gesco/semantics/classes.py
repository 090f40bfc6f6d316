"""Class spaces: how many label ids a data set uses, their names and display colours.

A class space fixes the number of one-hot channels ``C`` of the semantic layout. The
diffusion model conditions on ``C`` class maps plus one instance-edge map
(``label_channels = C + 1``), as in the authors' code (SDM ``label_nc``).

Cityscapes uses its 35 *label ids* (0..33 from ``cityscapesscripts``, plus id 34
kept empty, as SDM's ``label_nc = 35``); names and colours agree with the official
``cityscapesscripts.helpers.labels`` table (checked in the tests).
COCO-Stuff uses 183 ids (0..181 and 182 for "unlabeled", the raw 255 remapped),
ADE20K 151 (0 = "other", 1..150 the SceneParsing classes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gesco.errors import ClassIdError


@dataclass(frozen=True)
class ClassSpace:
    """A data set's label ids.

    Attributes:
        name: short identifier (``"cityscapes"``, ``"coco-stuff"``, ``"ade20k"``).
        names: one name per label id, ``len(names) == num_classes``.
        colors: one RGB colour per label id (for colour-coded maps).
        thing_ids: ids of classes that have instances (their edges are drawn).
        ignore_ids: ids that are not scored by mIoU (void / unlabeled classes).
    """

    name: str
    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    thing_ids: frozenset[int] = field(default_factory=frozenset)
    ignore_ids: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.colors):
            raise ValueError(f"class space {self.name}: {len(self.names)} names but {len(self.colors)} colours")

    @property
    def num_classes(self) -> int:
        """Number of label ids ``C`` (one-hot channels, edge map excluded)."""
        return len(self.names)

    @property
    def label_channels(self) -> int:
        """Channels of the model's conditioning: ``C`` class maps + 1 instance-edge map."""
        return self.num_classes + 1

    @property
    def eval_ids(self) -> list[int]:
        """Label ids scored by mIoU."""
        return [i for i in range(self.num_classes) if i not in self.ignore_ids]

    def palette(self) -> np.ndarray:
        """``(C, 3) uint8`` colour table indexed by label id."""
        return np.asarray(self.colors, dtype=np.uint8)

    def check_ids(self, ids: np.ndarray, what: str = "label map") -> None:
        """Raise :class:`ClassIdError` unless every id lies in ``[0, C)``."""
        ids = np.asarray(ids)
        if ids.size == 0:
            return
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= self.num_classes:
            bad = sorted({int(v) for v in np.unique(ids) if v < 0 or v >= self.num_classes})[:10]
            raise ClassIdError(
                f"{what} holds class ids {bad} outside the {self.name} class space [0, {self.num_classes})"
            )


# (id, name, colour, has instances, ignored in evaluation) as in cityscapesscripts 2.x labels.py
_CITYSCAPES = [
    (0, "unlabeled", (0, 0, 0), False, True),
    (1, "ego vehicle", (0, 0, 0), False, True),
    (2, "rectification border", (0, 0, 0), False, True),
    (3, "out of roi", (0, 0, 0), False, True),
    (4, "static", (0, 0, 0), False, True),
    (5, "dynamic", (111, 74, 0), False, True),
    (6, "ground", (81, 0, 81), False, True),
    (7, "road", (128, 64, 128), False, False),
    (8, "sidewalk", (244, 35, 232), False, False),
    (9, "parking", (250, 170, 160), False, True),
    (10, "rail track", (230, 150, 140), False, True),
    (11, "building", (70, 70, 70), False, False),
    (12, "wall", (102, 102, 156), False, False),
    (13, "fence", (190, 153, 153), False, False),
    (14, "guard rail", (180, 165, 180), False, True),
    (15, "bridge", (150, 100, 100), False, True),
    (16, "tunnel", (150, 120, 90), False, True),
    (17, "pole", (153, 153, 153), False, False),
    (18, "polegroup", (153, 153, 153), False, True),
    (19, "traffic light", (250, 170, 30), False, False),
    (20, "traffic sign", (220, 220, 0), False, False),
    (21, "vegetation", (107, 142, 35), False, False),
    (22, "terrain", (152, 251, 152), False, False),
    (23, "sky", (70, 130, 180), False, False),
    (24, "person", (220, 20, 60), True, False),
    (25, "rider", (255, 0, 0), True, False),
    (26, "car", (0, 0, 142), True, False),
    (27, "truck", (0, 0, 70), True, False),
    (28, "bus", (0, 60, 100), True, False),
    (29, "caravan", (0, 0, 90), True, True),
    (30, "trailer", (0, 0, 110), True, True),
    (31, "train", (0, 80, 100), True, False),
    (32, "motorcycle", (0, 0, 230), True, False),
    (33, "bicycle", (119, 11, 32), True, False),
    # cityscapesscripts gives "license plate" the id -1; SDM's label_nc = 35 keeps index 34 empty.
    (34, "license plate", (0, 0, 142), False, True),
]

CITYSCAPES = ClassSpace(
    name="cityscapes",
    names=tuple(r[1] for r in _CITYSCAPES),
    colors=tuple(r[2] for r in _CITYSCAPES),
    thing_ids=frozenset(r[0] for r in _CITYSCAPES if r[3]),
    ignore_ids=frozenset(r[0] for r in _CITYSCAPES if r[4]),
)


def _generated_palette(n: int, seed: int) -> tuple[tuple[int, int, int], ...]:
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, 256, size=(n, 3))
    cols[0] = 0
    return tuple(tuple(int(v) for v in c) for c in cols)


def _generic_space(name: str, n: int, seed: int, ignore: frozenset[int]) -> ClassSpace:
    return ClassSpace(
        name=name,
        names=tuple(f"{name}-{i}" for i in range(n)),
        colors=_generated_palette(n, seed),
        ignore_ids=ignore,
    )


COCO_STUFF = _generic_space("coco-stuff", 183, seed=183, ignore=frozenset({182}))
ADE20K = _generic_space("ade20k", 151, seed=151, ignore=frozenset({0}))

CLASS_SPACES: dict[str, ClassSpace] = {s.name: s for s in (CITYSCAPES, COCO_STUFF, ADE20K)}


def get_class_space(name: str) -> ClassSpace:
    """Look up a class space by name; raise :class:`ClassIdError` for an unknown name."""
    try:
        return CLASS_SPACES[name]
    except KeyError:
        raise ClassIdError(f"unknown class space {name!r}; known: {sorted(CLASS_SPACES)}") from None
