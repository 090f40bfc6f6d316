"""Semantic layouts (gesco.semantics.layout): present-class one-hot maps, instance edges,
the ``Pad`` of Eq. (2), the full conditioning, and the errors on malformed input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gesco.errors import ClassIdError, DTypeError, GescoInputError, ShapeError
from gesco.semantics.classes import ADE20K, CITYSCAPES, COCO_STUFF
from gesco.semantics.layout import (
    SemanticLayout,
    check_class_ids,
    encode_layout,
    full_conditioning,
    instance_edges,
    pad_maps,
)


def _random_label(rng: np.random.Generator, shape=(12, 17), ids=(0, 7, 11, 23, 26, 33)) -> np.ndarray:
    return rng.choice(np.asarray(ids), size=shape).astype(np.int64)


def _brute_force_edges(inst: np.ndarray) -> np.ndarray:
    """Pixel (i, j) is an edge iff one of its 4-neighbours inside the image has another id."""
    h, w = inst.shape
    out = np.zeros((h, w), dtype=np.uint8)
    for i in range(h):
        for j in range(w):
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                a, b = i + di, j + dj
                if 0 <= a < h and 0 <= b < w and inst[a, b] != inst[i, j]:
                    out[i, j] = 1
    return out


# ----------------------------------------------------------------------------- encode_layout


def test_only_present_classes_are_kept_in_increasing_id_order():
    label = np.array([[26, 26, 7], [23, 7, 7]], dtype=np.int32)
    lay = encode_layout(label, CITYSCAPES)
    assert lay.class_ids.tolist() == [7, 23, 26]
    assert lay.class_ids.dtype == np.int64
    assert lay.maps.shape == (3, 2, 3) and lay.maps.dtype == np.uint8
    assert lay.maps[0].tolist() == [[0, 0, 1], [0, 1, 1]]  # road
    assert lay.maps[1].tolist() == [[0, 0, 0], [1, 0, 0]]  # sky
    assert lay.maps[2].tolist() == [[1, 1, 0], [0, 0, 0]]  # car
    assert lay.num_classes == 35 and not lay.has_edges
    assert (lay.height, lay.width) == (2, 3)


@pytest.mark.parametrize("seed", range(5))
def test_present_maps_partition_the_image(seed):
    rng = np.random.default_rng(seed)
    label = _random_label(rng, shape=(20, 31), ids=rng.choice(183, size=8, replace=False))
    lay = encode_layout(label, COCO_STUFF)
    assert np.all(np.diff(lay.class_ids) > 0)
    assert set(lay.class_ids.tolist()) == set(np.unique(label).tolist())
    assert set(np.unique(lay.maps).tolist()) <= {0, 1}
    np.testing.assert_array_equal(lay.maps.sum(axis=0), np.ones(label.shape))
    for k, cid in enumerate(lay.class_ids):
        np.testing.assert_array_equal(lay.maps[k], (label == cid).astype(np.uint8))
        assert lay.maps[k].any()  # no empty map is sent


def test_single_class_image():
    lay = encode_layout(np.full((4, 5), 150, dtype=np.uint8), ADE20K)
    assert lay.class_ids.tolist() == [150]
    assert lay.maps.shape == (1, 4, 5) and lay.maps.all()


@pytest.mark.parametrize("seed", range(5))
def test_label_map_inverts_encode_layout(seed):
    rng = np.random.default_rng(100 + seed)
    label = _random_label(rng, shape=(9, 14))
    inst = rng.integers(0, 4, size=label.shape)
    for lay in (encode_layout(label, CITYSCAPES), encode_layout(label, CITYSCAPES, inst)):
        out = lay.label_map()
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out, label)


def test_edge_map_is_appended_last():
    label = np.array([[24, 24, 24], [24, 24, 24]])
    inst = np.array([[24000, 24000, 24001], [24000, 24000, 24001]])
    lay = encode_layout(label, CITYSCAPES, inst)
    assert lay.has_edges
    assert lay.class_ids.tolist() == [24]
    assert lay.maps.shape == (2, 2, 3)
    assert lay.maps[-1].tolist() == [[0, 1, 1], [0, 1, 1]]


# ----------------------------------------------------------------------------- instance edges


def test_instance_edges_small_example():
    inst = np.array(
        [
            [1, 1, 1, 1],
            [1, 2, 2, 1],
            [1, 1, 1, 1],
        ]
    )
    expected = np.array(
        [
            [0, 1, 1, 0],
            [1, 1, 1, 1],
            [0, 1, 1, 0],
        ]
    )
    np.testing.assert_array_equal(instance_edges(inst), expected)


def test_constant_instance_map_has_no_edges():
    assert not instance_edges(np.full((6, 9), 26001)).any()


def test_diagonal_neighbours_do_not_make_an_edge():
    inst = np.array([[1, 2], [3, 1]])  # every pixel has a 4-neighbour with another id
    # (0, 0) and (1, 1) only touch the "2" diagonally: not edges
    inst2 = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 2]])
    assert instance_edges(inst).all()
    assert instance_edges(inst2)[0, 0] == 0 and instance_edges(inst2)[1, 1] == 0
    assert instance_edges(inst2)[1, 2] == 1 and instance_edges(inst2)[2, 1] == 1


@pytest.mark.parametrize("seed", range(10))
def test_instance_edges_match_brute_force_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 12, size=2)
    inst = rng.integers(0, 1 + seed % 4, size=(h, w)) * 1000 + 24  # few ids, so both edges and flats occur
    out = instance_edges(inst)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, _brute_force_edges(inst))


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        dtype=np.int64,
        shape=st.tuples(st.integers(1, 8), st.integers(1, 8)),
        elements=st.integers(0, 3),
    )
)
def test_instance_edges_property(inst):
    np.testing.assert_array_equal(instance_edges(inst), _brute_force_edges(inst))


# ----------------------------------------------------------------------------- pad_maps


def test_pad_maps_puts_maps_at_their_class_index_and_zeros_elsewhere():
    rng = np.random.default_rng(3)
    label = _random_label(rng, shape=(8, 10), ids=(7, 11, 26))
    inst = rng.integers(0, 3, size=label.shape)
    lay = encode_layout(label, CITYSCAPES, inst)
    # noisy received maps: absent classes must still come out as exact zeros
    received = torch.from_numpy(lay.maps).float() + 0.3 * torch.randn(lay.maps.shape, generator=torch.Generator().manual_seed(0))
    full = pad_maps(received, lay.class_ids, CITYSCAPES.num_classes, has_edges=True)
    assert full.shape == (36, 8, 10) and full.dtype == torch.float32
    for c in range(35):
        if c in (7, 11, 26):
            k = lay.class_ids.tolist().index(c)
            assert torch.equal(full[c], received[k])
        else:
            assert torch.count_nonzero(full[c]) == 0, f"absent class {c} is not an exact zero map"
    assert torch.equal(full[35], received[-1])  # edge map last


def test_pad_maps_without_edges_leaves_the_edge_channel_zero():
    maps = torch.ones(2, 3, 4, dtype=torch.float64)
    full = pad_maps(maps, np.array([0, 34]), 35, has_edges=False)
    assert full.dtype == torch.float64
    assert torch.equal(full[0], maps[0]) and torch.equal(full[34], maps[1])
    assert torch.count_nonzero(full[1:34]) == 0
    assert torch.count_nonzero(full[35]) == 0


def test_pad_maps_batched_equals_per_sample():
    g = torch.Generator().manual_seed(5)
    maps = torch.randn(4, 3, 5, 6, generator=g)  # 2 classes + edge map, batch of 4
    ids = torch.tensor([3, 9])
    batched = pad_maps(maps, ids, 12, has_edges=True)
    assert batched.shape == (4, 13, 5, 6)
    for b in range(4):
        assert torch.equal(batched[b], pad_maps(maps[b], ids, 12, has_edges=True))


def test_pad_maps_with_no_classes_only_edges():
    full = pad_maps(torch.ones(1, 3, 3), np.array([], dtype=np.int64), 5, has_edges=True)
    assert torch.count_nonzero(full[:5]) == 0 and torch.equal(full[5], torch.ones(3, 3))


@pytest.mark.parametrize(
    ("n_maps", "ids", "has_edges"),
    [(2, [1, 2, 3], False), (3, [1, 2, 3], True), (4, [1, 2], True), (1, [], False)],
)
def test_pad_maps_rejects_maps_count_not_matching_the_header(n_maps, ids, has_edges):
    with pytest.raises(ShapeError) as exc:
        pad_maps(torch.zeros(n_maps, 4, 4), np.array(ids, dtype=np.int64), 35, has_edges)
    msg = str(exc.value)
    assert f"{n_maps} maps" in msg and f"{len(ids)} classes" in msg
    if has_edges:
        assert "edge map" in msg


@pytest.mark.parametrize("shape", [(4, 4), (4,), (1, 1, 2, 4, 4)])
def test_pad_maps_rejects_wrong_ndim(shape):
    with pytest.raises(ShapeError, match="maps must be"):
        pad_maps(torch.zeros(shape), np.array([0]), 35, False)


@pytest.mark.parametrize(
    ("ids", "needle"),
    [([3, 3], "unique and increasing"), ([5, 2], "unique and increasing"), ([0, 35], "outside"), ([-1], "outside")],
)
def test_pad_maps_rejects_bad_header_ids(ids, needle):
    with pytest.raises(ClassIdError, match=needle):
        pad_maps(torch.zeros(len(ids), 2, 2), np.array(ids), 35, False)


def test_check_class_ids():
    assert check_class_ids([0, 5, 34], 35).tolist() == [0, 5, 34]
    assert check_class_ids(np.array([], dtype=np.int64), 35).size == 0
    with pytest.raises(ClassIdError, match="1-D"):
        check_class_ids(np.array([[1, 2]]), 35)
    with pytest.raises(ClassIdError, match=r"\[0, 35\)"):
        check_class_ids([40], 35)


# ----------------------------------------------------------------------------- full_conditioning


def test_full_conditioning_is_the_one_hot_over_the_whole_space():
    rng = np.random.default_rng(8)
    label = _random_label(rng, shape=(6, 11))
    cond = full_conditioning(label, CITYSCAPES)
    assert cond.shape == (36, 6, 11) and cond.dtype == torch.float32
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(label), 35).permute(2, 0, 1).float()
    assert torch.equal(cond[:35], one_hot)
    assert torch.count_nonzero(cond[35]) == 0  # no instances: zero edge channel


def test_full_conditioning_with_instances_has_the_edge_channel():
    rng = np.random.default_rng(9)
    label = _random_label(rng, shape=(7, 7))
    inst = rng.integers(0, 3, size=label.shape)
    cond = full_conditioning(label, CITYSCAPES, inst)
    assert torch.equal(cond[35], torch.from_numpy(instance_edges(inst)).float())
    assert torch.equal(cond[:35].argmax(0), torch.from_numpy(label))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_wrong_ndim_label_raises_shape_error(shape):
    with pytest.raises(ShapeError, match="2-D") as exc:
        encode_layout(np.zeros(shape, dtype=np.int64), CITYSCAPES)
    assert str(shape) in str(exc.value)


def test_empty_label_raises_shape_error():
    with pytest.raises(ShapeError, match="empty"):
        encode_layout(np.zeros((0, 4), dtype=np.int64), CITYSCAPES)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, bool])
def test_non_integer_label_raises_dtype_error(dtype):
    with pytest.raises(DTypeError, match="integer") as exc:
        encode_layout(np.zeros((3, 3), dtype=dtype), CITYSCAPES)
    assert np.dtype(dtype).name in str(exc.value)


@pytest.mark.parametrize(("space", "bad"), [(CITYSCAPES, 35), (CITYSCAPES, -2), (ADE20K, 151), (COCO_STUFF, 255)])
def test_ids_outside_the_space_raise_class_id_error(space, bad):
    label = np.zeros((4, 4), dtype=np.int64)
    label[1, 2] = bad
    with pytest.raises(ClassIdError) as exc:
        encode_layout(label, space)
    assert str(bad) in str(exc.value) and space.name in str(exc.value)


def test_instance_shape_mismatch_raises_shape_error():
    with pytest.raises(ShapeError, match="differs") as exc:
        encode_layout(np.zeros((4, 5), dtype=np.int64), CITYSCAPES, np.zeros((5, 4), dtype=np.int64))
    assert "(5, 4)" in str(exc.value) and "(4, 5)" in str(exc.value)


def test_float_instance_map_raises_dtype_error():
    with pytest.raises(DTypeError, match="instance map"):
        encode_layout(np.zeros((4, 5), dtype=np.int64), CITYSCAPES, np.zeros((4, 5), dtype=np.float32))
    with pytest.raises(DTypeError, match="instance map"):
        instance_edges(np.zeros((4, 5), dtype=np.float32))


def test_all_layout_errors_are_input_errors():
    """The services map GescoInputError to 4xx; every check above must be one."""
    for exc_type in (ShapeError, DTypeError, ClassIdError):
        assert issubclass(exc_type, GescoInputError)


def test_layout_is_immutable():
    lay = encode_layout(np.zeros((2, 2), dtype=np.int64), CITYSCAPES)
    assert isinstance(lay, SemanticLayout)
    with pytest.raises(AttributeError):
        lay.has_edges = True  # type: ignore[misc]
