"""Tests of gesco.semantics.instances: instance maps derived from label maps."""

from __future__ import annotations

import numpy as np
import pytest

from gesco.data.synthetic import generate_scene
from gesco.errors import ClassIdError, DTypeError, GescoInputError
from gesco.semantics.classes import get_class_space
from gesco.semantics.instances import INSTANCE_STRIDE, derive_instances
from gesco.semantics.layout import instance_edges

SPACE = get_class_space("cityscapes")
ROAD, SKY, PERSON, CAR = 7, 23, 24, 26


def test_things_are_numbered_by_component_and_stuff_keeps_its_id():
    label = np.full((6, 10), ROAD, np.uint8)
    label[:3] = SKY
    label[3:5, 1:3] = CAR      # first car (row-major first)
    label[3:5, 6:8] = CAR      # second car, not touching the first
    label[4:6, 4] = PERSON
    inst = derive_instances(label, SPACE)
    assert inst.dtype == np.int64 and inst.shape == label.shape
    assert set(np.unique(inst[label == ROAD])) == {ROAD} and set(np.unique(inst[label == SKY])) == {SKY}
    assert set(np.unique(inst[3:5, 1:3])) == {CAR * INSTANCE_STRIDE}
    assert set(np.unique(inst[3:5, 6:8])) == {CAR * INSTANCE_STRIDE + 1}
    assert set(np.unique(inst[label == PERSON])) == {PERSON * INSTANCE_STRIDE}
    # the edge map separates the two cars from each other and from the road
    edges = instance_edges(inst)
    assert edges[3, 2] == 1 and edges[3, 6] == 1


def test_touching_objects_of_one_class_merge_and_diagonals_connect():
    label = np.full((4, 8), ROAD, np.uint8)
    label[1:3, 1:3] = CAR
    label[1:3, 3:5] = CAR      # touches the first: one component (the documented limitation)
    label[3, 5] = CAR          # diagonal neighbour of (2, 4): 8-connected, the same component
    inst = derive_instances(label, SPACE)
    assert set(np.unique(inst[label == CAR])) == {CAR * INSTANCE_STRIDE}


def test_derived_edges_lie_on_the_true_edges_and_cover_every_class_boundary():
    """On synthetic scenes: the derived instances only merge true instances, never split them
    across a 4-neighbourhood, so their edges are a subset of the ground truth's, and they hold
    every class boundary; touching instances are where the two differ."""
    missed = 0
    for seed in range(1_000_000, 1_000_006):  # validation-split scenes
        scene = generate_scene(seed, 64, 128)
        derived = instance_edges(derive_instances(scene.label, SPACE)).astype(bool)
        truth = instance_edges(scene.instance).astype(bool)
        classes = instance_edges(scene.label).astype(bool)
        assert not (derived & ~truth).any(), seed
        assert not (classes & ~derived).any(), seed
        missed += int((truth & ~derived).sum())
    assert missed > 0  # some scenes have touching instances of one class (e.g. parked cars)


def test_bad_label_maps_are_refused():
    with pytest.raises(ClassIdError, match="40"):
        derive_instances(np.full((2, 2), 40, np.uint8), SPACE)
    with pytest.raises(DTypeError):
        derive_instances(np.zeros((2, 2), np.float32), SPACE)
    many = np.full((64, 64), ROAD, np.uint8)
    many[::2, ::2] = CAR  # 1024 separate one-pixel cars
    with pytest.raises(GescoInputError, match="1024 separate regions"):
        derive_instances(many, SPACE)
