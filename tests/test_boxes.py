"""Box conversions, IoU/GIoU (against naive loops and properties), grids and decoding."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import xyxy_boxes

from yolox_np.boxes import (
    anchor_points,
    box_area,
    box_giou,
    box_giou_pairs,
    box_iou,
    box_iou_pairs,
    cell_centers,
    cxcywh_to_xyxy,
    decode,
    decode_backward,
    enclosing_box,
    enclosing_box_pairs,
    intersection,
    intersection_pairs,
    make_grid,
    make_grids,
    union,
    union_pairs,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)

PROPS = settings(max_examples=60, deadline=None)


def naive_iou_giou(a, b):
    """Scalar IoU and GIoU of two xyxy boxes written out longhand."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    uni = area_a + area_b - inter
    iou = inter / uni if uni > 0 else 0.0
    c = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    giou = iou - (c - uni) / c if c > 0 else iou
    return iou, giou


# --- conversions -----------------------------------------------------------------------------------


def test_conversions_by_hand():
    xyxy = np.array([[10.0, 20.0, 30.0, 60.0]])
    np.testing.assert_allclose(xyxy_to_cxcywh(xyxy), [[20, 40, 20, 40]])
    np.testing.assert_allclose(xyxy_to_xywh(xyxy), [[10, 20, 20, 40]])
    np.testing.assert_allclose(cxcywh_to_xyxy([[20, 40, 20, 40]]), xyxy)
    np.testing.assert_allclose(xywh_to_xyxy([[10, 20, 20, 40]]), xyxy)
    # the article's decoded bear box read as a centre
    np.testing.assert_allclose(
        cxcywh_to_xyxy([100, 63, 32 * math.exp(0.2), 32 * math.exp(0.3)]), [80.46, 41.40, 119.54, 84.60], atol=0.01
    )


@PROPS
@given(xyxy_boxes(5))
def test_conversions_round_trip(boxes):
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes, atol=1e-9)
    np.testing.assert_allclose(xywh_to_xyxy(xyxy_to_xywh(boxes)), boxes, atol=1e-9)


def test_conversions_keep_leading_shape_and_float32():
    boxes = np.zeros((2, 3, 4), dtype=np.float32)
    boxes[..., 2:] = 1
    for fn in (xyxy_to_cxcywh, xyxy_to_xywh, cxcywh_to_xyxy, xywh_to_xyxy):
        out = fn(boxes)
        assert out.shape == (2, 3, 4) and out.dtype == np.float32


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn", [box_iou, box_giou, intersection, union, enclosing_box, box_iou_pairs, box_giou_pairs]
)
def test_bad_boxes_raise_with_index(fn):
    good = np.array([[0.0, 0, 1, 1], [0, 0, 2, 2]])
    bad_x = good.copy()
    bad_x[1] = [5, 0, 2, 1]
    with pytest.raises(ValueError, match=r"box 1 has x2 < x1"):
        fn(bad_x, good)
    bad_y = good.copy()
    bad_y[1] = [0, 5, 2, 1]
    with pytest.raises(ValueError, match=r"box 1 has y2 < y1"):
        fn(good, bad_y)
    nan = good.copy()
    nan[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"box 1 has a non-finite"):
        fn(nan, good)
    inf = good.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"box 0 has a non-finite"):
        fn(good, inf)
    with pytest.raises(ValueError, match=r"shape"):
        fn(good[:, :3], good)


def test_bad_inputs_other_functions():
    with pytest.raises(ValueError, match="negative width"):
        cxcywh_to_xyxy([[0, 0, -1, 2]])
    with pytest.raises(ValueError, match=r"box \(1, 0\) has x2 < x1"):
        box_area(np.array([[[0, 0, 1, 1]], [[3, 0, 1, 1]]]))
    with pytest.raises(ValueError, match="same number"):
        box_iou_pairs(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="numeric"):
        box_area(np.array([["a", "b", "c", "d"]]))


def test_zero_size_boxes_are_legal():
    line = np.array([[0.0, 0, 0, 10]])  # zero width
    point = np.array([[5.0, 5, 5, 5]])
    square = np.array([[0.0, 0, 10, 10]])
    assert box_area(line)[0] == 0
    assert box_iou(line, square)[0, 0] == 0
    assert box_iou(point, point)[0, 0] == 0  # union 0 -> IoU 0
    assert box_giou(point, point)[0, 0] == 0  # enclosing area 0 -> no penalty
    # two distinct points: union 0 but enclosing area 4 -> GIoU reaches its bound -1
    np.testing.assert_allclose(box_giou(np.array([[0.0, 0, 0, 0]]), np.array([[2.0, 2, 2, 2]])), [[-1.0]])


def test_empty_inputs():
    assert box_iou(np.zeros((0, 4)), np.array([[0.0, 0, 1, 1]])).shape == (0, 1)
    assert box_giou(np.array([[0.0, 0, 1, 1]]), np.zeros((0, 4))).shape == (1, 0)
    assert box_iou_pairs(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0,)


# --- IoU / GIoU against hand numbers and naive loops ---------------------------------------------


def test_iou_giou_by_hand():
    a = np.array([[0.0, 0, 2, 2]])
    b = np.array([[1.0, 1, 3, 3]])
    assert intersection(a, b)[0, 0] == 1
    assert union(a, b)[0, 0] == 7
    np.testing.assert_allclose(box_iou(a, b), [[1 / 7]])
    np.testing.assert_allclose(enclosing_box(a, b), [[[0, 0, 3, 3]]])
    np.testing.assert_allclose(box_giou(a, b), [[1 / 7 - 2 / 9]])
    far = np.array([[10.0, 0, 12, 2]])
    np.testing.assert_allclose(box_giou(a, far), [[0 - (24 - 8) / 24]])
    np.testing.assert_allclose(box_iou(a, a), [[1.0]])
    np.testing.assert_allclose(box_giou(a, a), [[1.0]])


@PROPS
@given(xyxy_boxes(4), xyxy_boxes(3))
def test_pairwise_matches_naive_loop(a, b):
    iou, giou = box_iou(a, b), box_giou(a, b)
    for i in range(len(a)):
        for j in range(len(b)):
            want_iou, want_giou = naive_iou_giou(a[i], b[j])
            assert iou[i, j] == pytest.approx(want_iou, abs=1e-12)
            assert giou[i, j] == pytest.approx(want_giou, abs=1e-12)


@PROPS
@given(xyxy_boxes(6), xyxy_boxes(6))
def test_pairs_equal_diagonal_of_pairwise(a, b):
    np.testing.assert_allclose(box_iou_pairs(a, b), np.diag(box_iou(a, b)), atol=1e-12)
    np.testing.assert_allclose(box_giou_pairs(a, b), np.diag(box_giou(a, b)), atol=1e-12)
    np.testing.assert_allclose(intersection_pairs(a, b), np.diag(intersection(a, b)), atol=1e-9)
    np.testing.assert_allclose(union_pairs(a, b), np.diag(union(a, b)), atol=1e-9)
    np.testing.assert_allclose(enclosing_box_pairs(a, b), enclosing_box(a, b)[np.arange(6), np.arange(6)])


@PROPS
@given(xyxy_boxes(5), xyxy_boxes(5))
def test_area_properties(a, b):
    inter, uni = intersection_pairs(a, b), union_pairs(a, b)
    area_a, area_b = box_area(a), box_area(b)
    tol = 1e-9 * (1 + np.abs(uni))
    assert (inter >= 0).all()
    assert (inter <= uni + tol).all()
    assert (np.maximum(area_a, area_b) <= uni + tol).all()
    assert (uni <= area_a + area_b + tol).all()
    enc = enclosing_box_pairs(a, b)
    assert (box_area(enc) >= uni - tol).all()


@PROPS
@given(xyxy_boxes(5, min_size=0.5), xyxy_boxes(5, min_size=0.5))
def test_iou_giou_ranges_and_symmetry(a, b):
    iou, giou = box_iou(a, b), box_giou(a, b)
    assert ((iou >= 0) & (iou <= 1 + 1e-12)).all()
    assert (giou > -1).all()
    assert (giou <= iou + 1e-12).all()
    np.testing.assert_allclose(iou, box_iou(b, a).T, atol=1e-12)
    np.testing.assert_allclose(giou, box_giou(b, a).T, atol=1e-12)
    distinct = np.abs(a[:, None, :] - b[None, :, :]).max(axis=-1) > 1e-6  # beyond rounding
    assert (giou[distinct] < 1).all()
    np.testing.assert_allclose(box_giou(a, a).diagonal(), 1.0)


@PROPS
@given(
    xyxy_boxes(4, min_size=0.5),
    xyxy_boxes(4, min_size=0.5),
    st.floats(-100, 100),
    st.floats(-100, 100),
    st.floats(0.25, 4.0),
)
def test_translation_and_scale_invariance(a, b, dx, dy, scale):
    shift = np.array([dx, dy, dx, dy])
    for fn in (box_iou, box_giou):
        np.testing.assert_allclose(fn(a + shift, b + shift), fn(a, b), atol=1e-9)
        np.testing.assert_allclose(fn(a * scale, b * scale), fn(a, b), atol=1e-9)


def test_float32_in_float32_out():
    a = np.array([[0, 0, 2, 2]], dtype=np.float32)
    assert box_iou(a, a).dtype == np.float32
    assert box_giou(a, a).dtype == np.float32
    assert box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3]])).dtype == np.float64


# --- grids -----------------------------------------------------------------------------------------


def test_make_grid_article_numbers():
    grid = make_grid(256, 256, 32)
    assert grid.shape == (64, 2)
    assert grid.dtype == np.int64
    np.testing.assert_array_equal(grid[:3], [[0, 0], [1, 0], [2, 0]])  # x fastest
    np.testing.assert_array_equal(grid[8], [0, 1])
    index = 1 * 8 + 2  # cell (2, 1)
    np.testing.assert_array_equal(grid[index], [2, 1])
    np.testing.assert_allclose(anchor_points(grid, np.full(64, 32), convention="article")[index], [80, 48])
    np.testing.assert_allclose(anchor_points(grid, np.full(64, 32))[index], [64, 32])
    np.testing.assert_allclose(cell_centers(grid, np.full(64, 32))[index], [80, 48])
    assert make_grid(1024, 1024, 1).shape[0] == 1_048_576


def test_make_grid_rectangular_row_major():
    grid = make_grid(16, 40, 8)  # 2 rows x 5 columns
    assert grid.shape == (10, 2)
    for n, (i, j) in enumerate(grid):
        assert n == 5 * j + i


def test_make_grids_levels():
    grids, strides = make_grids(256, 256)
    assert grids.shape == (1344, 2) and strides.shape == (1344,)
    np.testing.assert_array_equal(np.unique(strides, return_counts=True)[1], [1024, 256, 64])
    assert (strides[:1024] == 8).all() and (strides[-64:] == 32).all()
    np.testing.assert_array_equal(grids[1024:1280], make_grid(256, 256, 16))
    assert make_grids(640, 640)[0].shape[0] == 8400


def test_make_grid_validation():
    with pytest.raises(ValueError, match="not a multiple of stride 32"):
        make_grid(100, 256, 32)
    with pytest.raises(ValueError, match="positive integer"):
        make_grid(256, 0, 32)
    with pytest.raises(ValueError, match="positive integer"):
        make_grid(256.0, 256, 32)
    with pytest.raises(ValueError, match="at least one level"):
        make_grids(256, 256, strides=())


# --- decode ----------------------------------------------------------------------------------------


def _bear_inputs():
    grids = make_grid(256, 256, 32)
    strides = np.full(len(grids), 32)
    return grids, strides, 1 * 8 + 2


def test_decode_article_example():
    grids, strides, index = _bear_inputs()
    raw = np.zeros((len(grids), 4))
    raw[index] = [20, 15, 0.2, 0.3]
    out = decode(raw, grids, strides, convention="article")
    np.testing.assert_allclose(out[index], [100, 63, 39.1, 43.2], atol=0.05)
    assert round(out[index, 2]) == 39 and round(out[index, 3]) == 43


def test_decode_official_equivalent_of_article_example():
    grids, strides, index = _bear_inputs()
    raw = np.zeros((len(grids), 4))
    raw[index] = [1.125, 0.96875, 0.2, 0.3]
    official = decode(raw, grids, strides)
    np.testing.assert_allclose(official[index], [100, 63, 32 * math.exp(0.2), 32 * math.exp(0.3)], atol=1e-12)
    # the raw article offsets fed to the official decoder land far away
    raw[index] = [20, 15, 0.2, 0.3]
    np.testing.assert_allclose(decode(raw, grids, strides)[index, :2], [704, 512])


@PROPS
@given(st.integers(0, 2**31 - 1))
def test_article_equals_official_with_shifted_offsets(seed):
    rng = np.random.default_rng(seed)
    grids, strides = make_grids(64, 64)
    p = rng.normal(size=(2, len(grids), 6)) * 5
    t = p.copy()
    t[..., :2] = p[..., :2] / strides[:, None] + 0.5
    np.testing.assert_allclose(decode(p, grids, strides, "article"), decode(t, grids, strides), atol=1e-9)


def test_decode_shapes_dtype_and_passthrough():
    grids, strides = make_grids(64, 64)
    raw = np.random.default_rng(0).normal(size=(2, len(grids), 7)).astype(np.float32)
    out = decode(raw, grids, strides)
    assert out.shape == raw.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 4:], raw[..., 4:])
    assert not np.shares_memory(out, raw)
    np.testing.assert_allclose(out[0, 5, 0], (raw[0, 5, 0] + 5) * 8, rtol=1e-6)


def test_decode_validation():
    grids, strides = make_grids(64, 64)
    raw = np.zeros((1, len(grids), 6))
    with pytest.raises(ValueError, match="grids has 84 cells"):
        decode(raw[:, :-1], grids, strides)
    with pytest.raises(ValueError, match="strides must have shape"):
        decode(raw, grids, strides[:-1])
    with pytest.raises(ValueError, match="convention"):
        decode(raw, grids, strides, convention="centre")
    with pytest.raises(ValueError, match=r"shape \(\.\.\., A, 4 \+ k\)"):
        decode(raw[..., :3], grids, strides)
    bad = raw.copy()
    bad[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        decode(bad, grids, strides)
    with pytest.raises(ValueError, match="strides must be positive"):
        decode(raw, grids, np.zeros_like(strides))
    with pytest.raises(ValueError, match="integer cells"):
        decode(raw, grids + 0.5, strides)


@pytest.mark.parametrize("convention", ["official", "article"])
def test_decode_backward_finite_differences(convention):
    rng = np.random.default_rng(1)
    grids, strides = make_grids(32, 32, strides=(8, 16))
    raw = rng.normal(size=(2, len(grids), 6))
    upstream = rng.normal(size=raw.shape)
    grad = decode_backward(raw, grids, strides, upstream, convention=convention)
    f = lambda r: float((decode(r, grids, strides, convention) * upstream).sum())
    eps = 1e-6
    for idx in [(0, 0, 0), (0, 3, 1), (1, 7, 2), (1, 19, 3), (0, 2, 4), (1, 5, 5)]:
        plus, minus = raw.copy(), raw.copy()
        plus[idx] += eps
        minus[idx] -= eps
        assert grad[idx] == pytest.approx((f(plus) - f(minus)) / (2 * eps), rel=1e-6, abs=1e-8)
    with pytest.raises(ValueError, match="grad_decoded must have the shape"):
        decode_backward(raw, grids, strides, upstream[:1])
