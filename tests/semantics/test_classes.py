"""Class spaces (gesco.semantics.classes): the Cityscapes table against the official one,
the sizes of the three class spaces, and the errors of the look-up and the id check."""

from __future__ import annotations

import numpy as np
import pytest

from gesco.errors import ClassIdError, GescoInputError
from gesco.semantics.classes import ADE20K, CITYSCAPES, COCO_STUFF, get_class_space

labels_module = pytest.importorskip("cityscapesscripts.helpers.labels")

# The official table; "license plate" has id -1 there (kept at index 34 by gesco, see classes.py).
OFFICIAL = [lab for lab in labels_module.labels if lab.id >= 0]


def test_cityscapes_ids_cover_0_to_33_then_the_empty_34():
    assert [lab.id for lab in OFFICIAL] == list(range(34))
    assert CITYSCAPES.num_classes == 35
    assert CITYSCAPES.names[34] == "license plate"


@pytest.mark.parametrize("lab", OFFICIAL, ids=lambda lab: f"{lab.id}-{lab.name}")
def test_cityscapes_row_matches_cityscapesscripts(lab):
    i = lab.id
    assert CITYSCAPES.names[i] == lab.name
    assert CITYSCAPES.colors[i] == tuple(lab.color)
    assert (i in CITYSCAPES.thing_ids) == lab.hasInstances
    assert (i in CITYSCAPES.ignore_ids) == lab.ignoreInEval


def test_cityscapes_eval_ids_are_the_19_train_classes():
    official_eval = [lab.id for lab in OFFICIAL if not lab.ignoreInEval]
    assert CITYSCAPES.eval_ids == official_eval
    assert len(official_eval) == 19
    # the 19 scored classes are exactly those with a train id in 0..18
    assert sorted(lab.trainId for lab in OFFICIAL if lab.id in official_eval) == list(range(19))


def test_cityscapes_license_plate_matches_the_official_row_with_id_minus_1():
    plate = next(lab for lab in labels_module.labels if lab.name == "license plate")
    assert CITYSCAPES.colors[34] == tuple(plate.color)
    assert 34 in CITYSCAPES.ignore_ids
    assert 34 not in CITYSCAPES.thing_ids


@pytest.mark.parametrize(
    ("name", "size", "ignored"),
    [("cityscapes", 35, None), ("coco-stuff", 183, {182}), ("ade20k", 151, {0})],
)
def test_class_space_sizes(name, size, ignored):
    space = get_class_space(name)
    assert space.name == name
    assert space.num_classes == size
    assert space.label_channels == size + 1  # + the instance-edge map
    assert len(space.names) == len(space.colors) == size
    pal = space.palette()
    assert pal.shape == (size, 3) and pal.dtype == np.uint8
    if ignored is not None:
        assert set(space.ignore_ids) == ignored
        assert len(space.eval_ids) == size - len(ignored)


def test_module_constants_are_the_registered_spaces():
    assert get_class_space("cityscapes") is CITYSCAPES
    assert get_class_space("coco-stuff") is COCO_STUFF
    assert get_class_space("ade20k") is ADE20K


@pytest.mark.parametrize("bad", ["", "Cityscapes", "coco", "voc"])
def test_unknown_class_space_raises_class_id_error_listing_known_names(bad):
    with pytest.raises(ClassIdError) as exc:
        get_class_space(bad)
    msg = str(exc.value)
    assert repr(bad) in msg
    for known in ("cityscapes", "coco-stuff", "ade20k"):
        assert known in msg
    assert isinstance(exc.value, GescoInputError)


def test_check_ids_accepts_the_full_range():
    CITYSCAPES.check_ids(np.arange(35).reshape(5, 7))
    CITYSCAPES.check_ids(np.zeros((0,), dtype=np.int64))  # empty: nothing to check


@pytest.mark.parametrize("bad_value", [-1, 35, 255])
def test_check_ids_rejects_out_of_range_and_names_the_ids(bad_value):
    ids = np.array([[0, 7], [bad_value, 26]])
    with pytest.raises(ClassIdError) as exc:
        CITYSCAPES.check_ids(ids)
    assert str(bad_value) in str(exc.value)
    assert "[0, 35)" in str(exc.value)
