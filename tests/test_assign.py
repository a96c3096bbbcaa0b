"""SimOTA: the worked example of the spec, a loop-based reference transcription, properties, edge cases."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yolox_np.assign import Assignment, dynamic_k, simota_assign
from yolox_np.boxes import decode, make_grid, make_grids

PROPS = settings(max_examples=40, deadline=None)


# --- an independent, deliberately simple transcription (per-GT loops, plain floats) -----------------


def reference_simota(pred, cls, obj, grids, strides, gt, gt_cls, variant="main"):
    """Return (gt_index list, dynamic k list, candidates list, cost rows) computed with plain loops."""
    num_anchors, num_classes = cls.shape

    def centre(a):
        return (grids[a][0] + 0.5) * strides[a], (grids[a][1] + 0.5) * strides[a]

    def inside(a, g, half_w, half_h):
        x, y = centre(a)
        cx, cy = gt[g][0], gt[g][1]
        return cx - half_w < x < cx + half_w and cy - half_h < y < cy + half_h

    def passes(a, g):
        s = strides[a]
        if variant == "main":
            return inside(a, g, 1.5 * s, 1.5 * s)
        return inside(a, g, gt[g][2] / 2, gt[g][3] / 2) and inside(a, g, 2.5 * s, 2.5 * s)

    def candidate(a):
        s = strides[a]
        if variant == "main":
            return any(inside(a, g, 1.5 * s, 1.5 * s) for g in range(len(gt)))
        return any(inside(a, g, gt[g][2] / 2, gt[g][3] / 2) or inside(a, g, 2.5 * s, 2.5 * s) for g in range(len(gt)))

    def iou(p, q):
        left, right = max(p[0] - p[2] / 2, q[0] - q[2] / 2), min(p[0] + p[2] / 2, q[0] + q[2] / 2)
        top, bottom = max(p[1] - p[3] / 2, q[1] - q[3] / 2), min(p[1] + p[3] / 2, q[1] + q[3] / 2)
        inter = (right - left) * (bottom - top) if (right > left and bottom > top) else 0.0
        uni = p[2] * p[3] + q[2] * q[3] - inter
        return inter / uni if uni > 0 else 0.0

    def clamped_log(x):
        return max(math.log(x), -100.0) if x > 0 else -100.0

    def sig(z):
        return 1 / (1 + math.exp(-z))

    cands = [a for a in range(num_anchors) if candidate(a)]
    penalty = 1e6 if variant == "main" else 100000.0
    costs, ious, ks = [], [], []
    for g in range(len(gt)):
        cost_row, iou_row = [], []
        for a in cands:
            v = iou(pred[a], gt[g])
            bce = 0.0
            for c in range(num_classes):
                p = math.sqrt(sig(cls[a][c]) * sig(obj[a]))
                t = 1.0 if c == gt_cls[g] else 0.0
                bce += -(t * clamped_log(p) + (1 - t) * clamped_log(1 - p))
            cost_row.append(bce + 3.0 * -math.log(v + 1e-8) + (0.0 if passes(a, g) else penalty))
            iou_row.append(v)
        costs.append(cost_row)
        ious.append(iou_row)
        top = sorted(iou_row, reverse=True)[: min(10, len(cands))]
        ks.append(max(1, int(sum(top))))

    claims = {}
    for g in range(len(gt)):
        order = sorted(range(len(cands)), key=lambda k: costs[g][k])
        for k in order[: ks[g]]:
            claims.setdefault(k, []).append(g)
    gt_index = [-1] * num_anchors
    for k, owners in claims.items():
        if len(owners) == 1:
            gt_index[cands[k]] = owners[0]
        else:
            column = [costs[g][k] for g in range(len(gt))]
            gt_index[cands[k]] = column.index(min(column))
    return gt_index, ks, cands, costs, ious


def random_case(seed, num_gt, variant_image=64, num_classes=4):
    rng = np.random.default_rng(seed)
    grids, strides = make_grids(variant_image, variant_image)
    raw = np.concatenate([rng.normal(0.5, 0.5, (len(grids), 2)), rng.normal(0.5, 0.5, (len(grids), 2))], axis=1)
    pred = decode(raw, grids, strides)
    cls = rng.normal(0, 2, (len(grids), num_classes))
    obj = rng.normal(0, 2, len(grids))
    gt = np.column_stack([rng.uniform(-8, variant_image + 8, (num_gt, 2)), rng.uniform(2, 40, (num_gt, 2))])
    gt_cls = rng.integers(0, num_classes, num_gt)
    return pred, cls, obj, grids, strides, gt, gt_cls


def check_invariants(a: Assignment, num_anchors, num_gt):
    assert a.fg_mask.shape == a.gt_index.shape == a.iou.shape == a.candidate_mask.shape == (num_anchors,)
    assert a.num_fg == a.fg_mask.sum()
    np.testing.assert_array_equal(a.fg_mask, a.gt_index >= 0)
    assert (a.gt_index < num_gt).all()
    assert not (a.fg_mask & ~a.candidate_mask).any()  # fg only among candidates
    np.testing.assert_array_equal(np.flatnonzero(a.candidate_mask), a.candidate_index)
    assert (a.matching.sum(axis=0) <= 1).all()  # each fg anchor has exactly one GT
    np.testing.assert_array_equal(a.matching.any(axis=0), a.fg_mask[a.candidate_index])
    assert a.dynamic_k.shape == (num_gt,)
    if num_gt:
        assert ((a.dynamic_k >= 1) & (a.dynamic_k <= 10)).all()
        assert (a.initial_matching.sum(axis=1) == np.minimum(a.dynamic_k, a.candidate_index.size)).all()
    assert a.num_fg <= a.dynamic_k.sum()
    single = a.initial_matching.sum(axis=0) <= 1  # only doubly claimed columns are re-decided ...
    np.testing.assert_array_equal(a.matching[:, single], a.initial_matching[:, single])
    if num_gt:  # ... by the cheapest GT over all GTs (which need not be one of the claimants)
        np.testing.assert_array_equal(a.matching[:, ~single].argmax(axis=0), a.cost[:, ~single].argmin(axis=0))
    fg = np.flatnonzero(a.fg_mask)
    pos = np.searchsorted(a.candidate_index, fg)
    np.testing.assert_allclose(a.iou[fg], a.iou_matrix[a.gt_index[fg], pos])
    assert (a.iou[~a.fg_mask] == 0).all()
    assert a.cost.shape == a.iou_matrix.shape == a.cls_cost.shape == a.geometry_mask.shape


@PROPS
@given(st.integers(0, 2**31 - 1), st.integers(1, 6), st.sampled_from(["main", "v0.3.0"]))
def test_matches_loop_reference(seed, num_gt, variant):
    pred, cls, obj, grids, strides, gt, gt_cls = random_case(seed, num_gt)
    a = simota_assign(pred, cls, obj, grids, strides, gt, gt_cls, variant=variant)
    gt_index, ks, cands, costs, ious = reference_simota(pred, cls, obj, grids, strides, gt, gt_cls, variant)
    np.testing.assert_array_equal(a.candidate_index, cands)
    np.testing.assert_allclose(a.cost, np.array(costs).reshape(num_gt, -1), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(a.iou_matrix, np.array(ious).reshape(num_gt, -1), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(a.dynamic_k, ks)
    np.testing.assert_array_equal(a.gt_index, gt_index)
    check_invariants(a, len(grids), num_gt)


@PROPS
@given(st.integers(0, 2**31 - 1), st.integers(0, 12), st.sampled_from(["main", "v0.3.0"]))
def test_invariants(seed, num_gt, variant):
    pred, cls, obj, grids, strides, gt, gt_cls = random_case(seed, num_gt)
    a = simota_assign(pred.astype(np.float32), cls, obj, grids, strides, gt, gt_cls, variant=variant)
    check_invariants(a, len(grids), num_gt)
    if num_gt == 0:
        assert a.num_fg == 0


# --- the worked example of spec §7.3 --------------------------------------------------------------

DECODED = np.array(
    [[8, 7, 12, 10], [13, 8, 16, 12], [19, 8, 14, 13], [26, 8, 10, 12], [36, 6, 8, 8],
     [6, 10, 10, 10], [14, 9, 15, 12], [21, 9, 12, 14], [27, 10, 8, 10], [36, 12, 8, 8]],
    dtype=np.float64,
)  # fmt: skip
OBJ = np.array([-1.0, 1.0, 1.5, 0.0, -3.0, -2.0, 0.5, 0.8, -0.5, -3.0])
CLS = np.array(
    [[0, -2], [2, -1], [1, 1], [-1, 1], [-3, -3], [-1, -2], [1, -1], [-0.5, 1.5], [-1, 0.5], [-3, -3]],
    dtype=np.float64,
)
GT = np.array([[14.0, 8, 16, 12], [22, 8, 12, 14]])
GT_CLS = np.array([0, 1])


def worked_example(variant):
    grids = make_grid(16, 40, 8)
    return simota_assign(DECODED, CLS, OBJ, grids, np.full(10, 8), GT, GT_CLS, variant=variant)


def test_worked_example_main_intermediates():
    a = worked_example("main")
    np.testing.assert_array_equal(a.candidate_index, [0, 1, 2, 3, 5, 6, 7, 8])
    np.testing.assert_array_equal(
        a.geometry_mask, [[1, 1, 1, 0, 1, 1, 1, 0], [0, 1, 1, 1, 0, 1, 1, 1]]
    )
    np.testing.assert_allclose(
        a.iou_matrix,
        [[0.3448, 0.8824, 0.4724, 0.0400, 0.1822, 0.7971, 0.3043, 0],
         [0, 0.2000, 0.5909, 0.4118, 0, 0.2340, 0.7409, 0.2525]],
        atol=1e-4,
    )  # fmt: skip
    np.testing.assert_allclose(
        a.cls_cost,
        [[1.2005, 0.8060, 1.7406, 1.9310, 1.8470, 0.9199, 2.0632, 1.8068],
         [2.1769, 2.4350, 1.7406, 0.9600, 2.3242, 2.0163, 1.0004, 1.1078]],
        atol=1e-4,
    )  # fmt: skip
    np.testing.assert_allclose(
        a.cost,
        [[4.3946, 1.1815, 3.9901, 1e6 + 11.59, 6.9552, 1.6002, 5.6319, 1e6 + 57.07],
         [1e6 + 57.44, 7.2633, 3.3189, 3.6219, 1e6 + 57.59, 6.3731, 1.8999, 5.2365]],
        atol=1e-2,
    )  # fmt: skip
    np.testing.assert_allclose(a.cost[a.geometry_mask], np.array([4.3946, 1.1815, 3.9901, 6.9552, 1.6002, 5.6319,
                                                                   7.2633, 3.3189, 3.6219, 6.3731, 1.8999, 5.2365]),
                               atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(a.iou_matrix.sum(axis=1), [3.0233, 2.4302], atol=1e-4)
    np.testing.assert_array_equal(a.dynamic_k, [3, 2])
    # GT0 takes {a1, a6, a2}, GT1 takes {a7, a2}; a2 is then given to GT1
    np.testing.assert_array_equal(a.candidate_index[a.initial_matching[0]], [1, 2, 6])
    np.testing.assert_array_equal(a.candidate_index[a.initial_matching[1]], [2, 7])
    np.testing.assert_array_equal(a.gt_index, [-1, 0, 1, -1, -1, -1, 0, 1, -1, -1])
    assert a.num_fg == 4
    np.testing.assert_allclose(a.iou[[1, 6, 2, 7]], [0.8824, 0.7971, 0.5909, 0.7409], atol=1e-4)


def test_worked_example_v030():
    a = worked_example("v0.3.0")
    np.testing.assert_array_equal(a.candidate_index, np.arange(10))
    np.testing.assert_array_equal(np.flatnonzero(a.geometry_mask[0]), [1, 2, 6, 7])
    np.testing.assert_array_equal(np.flatnonzero(a.geometry_mask[1]), [2, 7])
    np.testing.assert_array_equal(a.dynamic_k, [3, 2])
    np.testing.assert_array_equal(a.gt_index, [-1, 0, 1, -1, -1, -1, 0, 1, -1, -1])
    assert a.cost[0, 0] == pytest.approx(100000 + 4.3946, abs=1e-3)


# --- dynamic k ------------------------------------------------------------------------------------


def test_dynamic_k_by_hand():
    np.testing.assert_array_equal(dynamic_k(np.array([[0.9, 0.8, 0.7, 0.1], [0.0, 0.0, 0.0, 0.0]])), [2, 1])
    np.testing.assert_array_equal(dynamic_k(np.full((1, 12), 0.5)), [5])  # only the top 10 count
    np.testing.assert_array_equal(dynamic_k(np.full((1, 12), 0.5), n_candidate_k=4), [2])
    np.testing.assert_array_equal(dynamic_k(np.full((1, 12), 1.0)), [10])
    assert dynamic_k(np.zeros((0, 5))).shape == (0,)
    np.testing.assert_array_equal(dynamic_k(np.zeros((2, 0))), [1, 1])
    with pytest.raises(ValueError, match=r"shape \(G, K\)"):
        dynamic_k(np.zeros(3))
    with pytest.raises(ValueError, match="n_candidate_k"):
        dynamic_k(np.zeros((1, 3)), n_candidate_k=0)


# --- edge cases -------------------------------------------------------------------------------------


def empty_image_inputs(num_anchors=84, num_classes=3):
    grids, strides = make_grids(64, 64)
    rng = np.random.default_rng(0)
    pred = decode(rng.normal(0, 0.5, (num_anchors, 4)), grids, strides)
    return pred, rng.normal(size=(num_anchors, num_classes)), rng.normal(size=num_anchors), grids, strides


@pytest.mark.parametrize("variant", ["main", "v0.3.0"])
def test_no_ground_truth(variant):
    pred, cls, obj, grids, strides = empty_image_inputs()
    a = simota_assign(pred, cls, obj, grids, strides, np.zeros((0, 4)), np.zeros(0, dtype=int), variant=variant)
    assert a.num_fg == 0 and not a.fg_mask.any() and not a.candidate_mask.any()
    assert (a.gt_index == -1).all() and (a.iou == 0).all()
    assert a.cost.shape == a.matching.shape == (0, 0) and a.dynamic_k.shape == (0,)
    check_invariants(a, 84, 0)


@pytest.mark.parametrize("variant", ["main", "v0.3.0"])
def test_gt_smaller_than_stride_and_partly_outside(variant):
    pred, cls, obj, grids, strides = empty_image_inputs()
    gt = np.array([[30.3, 41.7, 3.0, 2.0], [-6.0, 20.0, 24.0, 16.0], [70.0, 70.0, 20.0, 20.0]])
    a = simota_assign(pred, cls, obj, grids, strides, gt, np.array([0, 1, 2]), variant=variant)
    check_invariants(a, 84, 3)
    assert set(np.unique(a.gt_index[a.fg_mask])) == {0, 1, 2}  # every GT gets at least one anchor here


def test_gt_far_outside_gets_no_candidates():
    pred, cls, obj, grids, strides = empty_image_inputs()
    a = simota_assign(pred, cls, obj, grids, strides, np.array([[-500.0, -500, 10, 10]]), [1])
    assert a.candidate_index.size == 0 and a.num_fg == 0
    np.testing.assert_array_equal(a.dynamic_k, [1])


def test_penalty_is_a_cost_not_a_mask():
    """GT0's dynamic k exceeds its 4 geometry-passing anchors, so it also takes penalised ones."""
    grids = make_grid(32, 80, 8)
    strides = np.full(len(grids), 8)
    gt = np.array([[16.0, 16, 12, 12], [60, 16, 12, 12]])
    pred = np.tile(gt[0], (len(grids), 1))  # every prediction is exactly GT0's box
    rng = np.random.default_rng(0)
    cls, obj = rng.normal(size=(len(grids), 2)), rng.normal(size=len(grids))
    a = simota_assign(pred, cls, obj, grids, strides, gt, [0, 1])
    assert a.candidate_index.size == 10 and a.geometry_mask[0].sum() == 4
    np.testing.assert_array_equal(a.dynamic_k, [10, 1])
    assert (a.gt_index == 0).sum() == 9 and (a.gt_index == 1).sum() == 1
    assert not a.geometry_mask[0, a.matching[0]].all()
    assert a.geometry_mask[1, a.matching[1]].all()  # GT1 keeps its cheap anchor in the conflict


def test_v030_all_pairs_penalised_still_assigns():
    grids, strides = make_grids(64, 64, strides=(8,))
    gt = np.array([[16.0, 16, 2, 2]])  # no cell centre strictly inside the box
    pred = np.tile(gt[0], (len(grids), 1))
    rng = np.random.default_rng(1)
    a = simota_assign(pred, rng.normal(size=(len(grids), 2)), rng.normal(size=len(grids)), grids, strides, gt, [0],
                      variant="v0.3.0")  # fmt: skip
    assert not a.geometry_mask.any()
    assert a.dynamic_k[0] == 10 and a.num_fg == 10


def test_many_gts_on_640_grid():
    rng = np.random.default_rng(7)
    grids, strides = make_grids(640, 640)
    assert len(grids) == 8400
    pred = decode(rng.normal(0.5, 0.5, (8400, 4)), grids, strides)
    gt = np.column_stack([rng.uniform(0, 640, (200, 2)), rng.uniform(4, 150, (200, 2))])
    for variant in ("main", "v0.3.0"):
        a = simota_assign(pred, rng.normal(size=(8400, 80)), rng.normal(size=8400), grids, strides, gt,
                          rng.integers(0, 80, 200), variant=variant)  # fmt: skip
        check_invariants(a, 8400, 200)
        assert a.num_fg > 50


def test_validation():
    pred, cls, obj, grids, strides = empty_image_inputs()
    gt, gc = np.array([[30.0, 30, 10, 10]]), np.array([1])
    with pytest.raises(ValueError, match=r"pred_boxes must have shape \(A, 4\)"):
        simota_assign(pred[None], cls, obj, grids, strides, gt, gc)
    with pytest.raises(ValueError, match=r"cls_logits must have shape \(A, C\)"):
        simota_assign(pred, cls[:5], obj, grids, strides, gt, gc)
    with pytest.raises(ValueError, match=r"obj_logits must have shape \(A,\)"):
        simota_assign(pred, cls, obj[:, None], grids, strides, gt, gc)
    with pytest.raises(ValueError, match="grids has 20 cells"):
        simota_assign(pred, cls, obj, grids[:20], strides[:20], gt, gc)
    bad = pred.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match="pred_boxes: box 17 has a non-finite"):
        simota_assign(bad, cls, obj, grids, strides, gt, gc)
    with pytest.raises(ValueError, match="gt_boxes: box 0 has negative height"):
        simota_assign(pred, cls, obj, grids, strides, np.array([[30.0, 30, 10, -1]]), gc)
    with pytest.raises(ValueError, match=r"gt_classes\[0\] = 3 is not a class index in \[0, 3\)"):
        simota_assign(pred, cls, obj, grids, strides, gt, np.array([3]))
    with pytest.raises(ValueError, match=r"gt_classes must have shape \(G,\)"):
        simota_assign(pred, cls, obj, grids, strides, gt, np.array([1, 2]))
    with pytest.raises(ValueError, match="cls_logits: non-finite"):
        simota_assign(pred, np.full_like(cls, np.inf), obj, grids, strides, gt, gc)
    with pytest.raises(ValueError, match="variant"):
        simota_assign(pred, cls, obj, grids, strides, gt, gc, variant="ota")
