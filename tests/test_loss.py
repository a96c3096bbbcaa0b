"""Element losses, their gradients (float64 central differences) and the full YOLOX loss."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import arrays

from yolox_np.boxes import box_giou_pairs, box_iou_pairs, cxcywh_to_xyxy, make_grid, make_grids
from yolox_np.loss import (
    bce_with_logits,
    bce_with_logits_backward,
    giou_loss,
    giou_loss_backward,
    iou_loss,
    iou_loss_backward,
    l1_loss,
    l1_loss_backward,
    l1_targets,
    sigmoid,
    yolox_loss,
)

EPS = 1e-6


def numeric_grad(f, x, eps=EPS, columns=None):
    """Central differences of the scalar f at every entry of x (float64), or only in the given last-axis columns."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        if columns is not None and idx[-1] not in columns:
            continue
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grad[idx] = (f(plus) - f(minus)) / (2 * eps)
    return grad


# --- BCE -------------------------------------------------------------------------------------------


def test_bce_article_one_hot_example():
    """Spec §11: element-wise BCE of the article's probability vectors against [0, 1, 0, 0]."""
    labels = np.array([0.0, 1, 0, 0])
    cases = {
        (0.45, 0.25, 0.05, 0.25): ([0.5978, 1.3863, 0.0513, 0.2877], 2.3231),
        (0.25, 0.25, 0.25, 0.25): ([0.2877, 1.3863, 0.2877, 0.2877], 2.2493),
        (0.1, 0.7, 0.1, 0.1): ([0.1054, 0.3567, 0.1054, 0.1054], 0.6728),
    }
    for probs, (elements, total) in cases.items():
        p = np.array(probs)
        loss = bce_with_logits(np.log(p / (1 - p)), labels)
        np.testing.assert_allclose(loss, elements, atol=1e-4)
        assert loss.sum() == pytest.approx(total, abs=1e-4)


def test_bce_extreme_logits_finite():
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0, 0.0])
    t = np.array([0.0, 0.0, 1.0, 1.0, 0.5])
    loss = bce_with_logits(z, t)
    np.testing.assert_allclose(loss, [1000, 0, 0, 1000, math.log(2)])
    np.testing.assert_allclose(bce_with_logits_backward(z, t), [1, 0, 0, -1, 0])
    np.testing.assert_allclose(sigmoid(np.array([-1000.0, 1000.0])), [0, 1])


@settings(max_examples=80, deadline=None)
@given(arrays((6,), lo=-1000, hi=1000), arrays((6,), lo=0, hi=1))
def test_bce_nonnegative_finite_and_matches_naive(z, t):
    loss = bce_with_logits(z, t)
    assert np.isfinite(loss).all() and (loss >= 0).all()
    moderate = np.abs(z) < 15  # where the naive formula is still accurate
    p = 1 / (1 + np.exp(-z[moderate]))
    naive = -(t[moderate] * np.log(p) + (1 - t[moderate]) * np.log(1 - p))
    np.testing.assert_allclose(loss[moderate], naive, rtol=1e-7, atol=1e-10)


def test_bce_gradient_finite_differences():
    rng = np.random.default_rng(0)
    z, t, up = rng.normal(size=(3, 5)) * 3, rng.uniform(size=(3, 5)), rng.normal(size=(3, 5))
    want = numeric_grad(lambda v: float((bce_with_logits(v, t) * up).sum()), z)
    np.testing.assert_allclose(bce_with_logits_backward(z, t, up), want, rtol=1e-6, atol=1e-9)


def test_bce_validation():
    with pytest.raises(ValueError, match="same shape"):
        bce_with_logits(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="logits: non-finite value at index 1"):
        bce_with_logits(np.array([0.0, np.nan]), np.zeros(2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bce_with_logits(np.zeros(2), np.array([0.0, 2.0]))


# --- IoU, GIoU, L1 losses ---------------------------------------------------------------------------


def random_pairs(rng, n):
    """(n, 4) cxcywh prediction/target pairs: most overlap, some do not."""
    target = np.column_stack([rng.uniform(0, 50, (n, 2)), rng.uniform(4, 20, (n, 2))])
    pred = target + np.column_stack([rng.normal(0, 4, (n, 2)), rng.normal(0, 3, (n, 2))])
    pred[:, 2:] = np.abs(pred[:, 2:]) + 1
    pred[-2:, :2] += 60  # no overlap
    return pred, target


def test_iou_and_giou_loss_values():
    rng = np.random.default_rng(1)
    pred, target = random_pairs(rng, 12)
    iou = box_iou_pairs(cxcywh_to_xyxy(pred), cxcywh_to_xyxy(target))
    giou = box_giou_pairs(cxcywh_to_xyxy(pred), cxcywh_to_xyxy(target))
    np.testing.assert_allclose(iou_loss(pred, target), 1 - iou**2, atol=1e-12)
    np.testing.assert_allclose(giou_loss(pred, target), 1 - giou, atol=1e-12)
    assert iou_loss(pred[-1:], target[-1:])[0] == 1.0
    same = np.array([[10.0, 10, 4, 6]])
    assert iou_loss(same, same)[0] == pytest.approx(0.0, abs=1e-12)
    assert giou_loss(same, same)[0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("which", ["iou", "giou"])
def test_iou_giou_loss_gradients(which):
    rng = np.random.default_rng(2)
    pred, target = random_pairs(rng, 10)
    up = rng.normal(size=10)
    fwd, back = (iou_loss, iou_loss_backward) if which == "iou" else (giou_loss, giou_loss_backward)
    want = numeric_grad(lambda p: float((fwd(p, target) * up).sum()), pred)
    got = back(pred, target, up)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)
    if which == "iou":
        np.testing.assert_array_equal(got[-2:], 0)  # no overlap: no gradient through 1 - IoU^2
    else:
        assert np.abs(got[-2:]).sum() > 0  # GIoU still pulls disjoint boxes together


def test_l1_loss_and_gradient():
    rng = np.random.default_rng(3)
    p, t, up = rng.normal(size=(4, 4)), rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    np.testing.assert_allclose(l1_loss(p, t), np.abs(p - t))
    want = numeric_grad(lambda v: float((l1_loss(v, t) * up).sum()), p)
    np.testing.assert_allclose(l1_loss_backward(p, t, up), want, rtol=1e-6, atol=1e-9)


def test_element_loss_validation():
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        iou_loss(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="target: box 0 has negative width"):
        giou_loss(np.ones((1, 4)), np.array([[0, 0, -1, 1.0]]))
    with pytest.raises(ValueError, match="grad_out must have shape"):
        iou_loss_backward(np.ones((2, 4)), np.ones((2, 4)), np.ones(3))


# --- the worked example of spec §7.3 ---------------------------------------------------------------

STRIDE = 8
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
TARGETS = np.array([[0, 14, 8, 16, 12], [1, 22, 8, 12, 14]], dtype=np.float64)
L1_TARGETS = {  # anchor -> (t*_x, t*_y, t*_w, t*_h), from the spec
    1: (0.75, 1.0, 0.6931, 0.4055),
    6: (0.75, 0.0, 0.6931, 0.4055),
    2: (0.75, 1.0, 0.4055, 0.5596),
    7: (0.75, 0.0, 0.4055, 0.5596),
}


def worked_example():
    grids = make_grid(16, 40, STRIDE)  # 2 rows x 5 columns, anchor n = 5 j + i
    strides = np.full(len(grids), STRIDE)
    # invert the official decode: t = c / s - cell, t_wh = ln(wh / s)
    reg = np.concatenate([DECODED[:, :2] / STRIDE - grids, np.log(DECODED[:, 2:] / STRIDE)], axis=1)
    raw = np.concatenate([reg, OBJ[:, None], CLS], axis=1)[None]
    return raw, grids, strides


@pytest.mark.parametrize("assign_variant", ["main", "v0.3.0"])
def test_worked_example_official(assign_variant):
    raw, grids, strides = worked_example()
    out = yolox_loss(raw, grids, strides, [TARGETS], assign_variant=assign_variant)
    a = out["assignments"][0]
    np.testing.assert_array_equal(a.gt_index, [-1, 0, 1, -1, -1, -1, 0, 1, -1, -1])
    np.testing.assert_array_equal(a.dynamic_k, [3, 2])
    assert out["num_fg"] == 4
    assert out["iou"] == pytest.approx(2.1099, abs=1e-4)
    assert out["obj"] == pytest.approx(0.7661, abs=1e-4)
    assert out["cls"] == pytest.approx(1.1512, abs=1e-4)
    assert out["l1"] == 0.0
    assert out["total"] == pytest.approx(4.0272, abs=1e-4)
    assert out["grad"].shape == raw.shape and out["grad"].dtype == np.float64


def test_worked_example_l1_targets_and_term():
    raw, grids, strides = worked_example()
    anchors = np.array(list(L1_TARGETS))
    gt = TARGETS[[0, 0, 1, 1], 1:]  # anchors 1, 6 -> GT0; 2, 7 -> GT1
    np.testing.assert_allclose(
        l1_targets(gt, grids[anchors], strides[anchors]), np.array(list(L1_TARGETS.values())), atol=1e-4
    )
    out = yolox_loss(raw, grids, strides, [TARGETS], use_l1=True)
    want = sum(np.abs(raw[0, n, :4] - np.array(t)).sum() for n, t in L1_TARGETS.items()) / 4
    assert out["l1"] == pytest.approx(want, abs=2e-4)
    assert out["total"] == pytest.approx(4.0272 + want, abs=3e-4)


def test_worked_example_article_variant():
    """Article variant against a longhand reference built from the spec's IoU table."""
    raw, grids, strides = worked_example()
    out = yolox_loss(raw, grids, strides, [TARGETS], variant="article")
    fg = {1: 0, 6: 0, 2: 1, 7: 1}
    iou_match = {1: 0.8824, 6: 0.7971, 2: 0.5909, 7: 0.7409}
    best_iou_negatives = {0: 0.3448, 3: 0.4118, 4: 0.0, 5: 0.1822, 8: 0.2525, 9: 0.0}

    def bce(z, t):
        p = 1 / (1 + math.exp(-z))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    giou = box_giou_pairs(cxcywh_to_xyxy(DECODED[list(fg)]), cxcywh_to_xyxy(TARGETS[list(fg.values()), 1:]))
    want_reg = 5 * (1 - giou).sum() / 4
    obj_target = {**best_iou_negatives, **iou_match}
    want_obj = sum(bce(OBJ[n], obj_target[n]) for n in range(10)) / 4
    want_cls = sum(bce(CLS[n, c], float(c == g)) for n, g in fg.items() for c in range(2)) / 4
    assert out["num_fg"] == 4
    assert out["iou"] == pytest.approx(want_reg, abs=1e-9)
    assert out["obj"] == pytest.approx(want_obj, abs=2e-4)  # table IoUs are rounded to 1e-4
    assert out["cls"] == pytest.approx(want_cls, abs=1e-9)
    assert out["total"] == pytest.approx(want_reg + want_obj + want_cls, abs=2e-4)


# --- gradient of the full loss ----------------------------------------------------------------------


def small_batch(seed=0, dtype=np.float64):
    """B = 3 (the middle image has no objects), 32x32 input, strides 8 and 16 (A = 20), C = 3."""
    rng = np.random.default_rng(seed)
    grids, strides = make_grids(32, 32, strides=(8, 16))
    raw = np.concatenate(
        [rng.normal(0, 0.4, (3, 20, 2)) + 0.5, rng.normal(0.8, 0.3, (3, 20, 2)), rng.normal(0, 1, (3, 20, 4))],
        axis=2,
    ).astype(dtype)
    targets = [
        np.array([[0, 9.3, 10.1, 12.2, 9.7], [2, 21.4, 20.6, 14.1, 17.3]]),
        np.zeros((0, 5)),
        np.array([[1, 15.2, 14.4, 20.3, 18.6]]),
    ]
    return raw, grids, strides, targets


@pytest.mark.parametrize("variant", ["official", "article"])
@pytest.mark.parametrize("use_l1", [False, True])
def test_loss_gradient_finite_differences(variant, use_l1):
    raw, grids, strides, targets = small_batch()
    out = yolox_loss(raw, grids, strides, targets, use_l1=use_l1, variant=variant)
    assert out["num_fg"] > 2
    fixed = out["assignments"]

    def f(r, terms=("total",)):
        res = yolox_loss(r, grids, strides, targets, use_l1=use_l1, variant=variant, assignments=fixed)
        return sum(res[t] for t in terms)

    if variant == "official":
        want = numeric_grad(f, raw)
    else:
        # the objectness target (best IoU of each prediction) depends on the reg outputs but carries no
        # gradient, so the reg columns are checked against the terms without objectness
        want = numeric_grad(f, raw, columns=range(4, raw.shape[-1]))
        want[..., :4] = numeric_grad(lambda r: f(r, ("iou", "cls", "l1")), raw, columns=range(4))[..., :4]
    np.testing.assert_allclose(out["grad"], want, rtol=1e-5, atol=1e-8)
    assert (out["grad"][1, :, 5:] == 0).all()  # no fg in the empty image: only objectness has gradient
    assert np.abs(out["grad"][1, :, 4]).sum() > 0


def test_assignment_stable_under_perturbation():
    """The configuration used for the gradient check keeps its assignment when perturbed."""
    raw, grids, strides, targets = small_batch()
    base = yolox_loss(raw, grids, strides, targets)["assignments"]
    rng = np.random.default_rng(5)
    for _ in range(5):
        moved = yolox_loss(raw + rng.normal(0, 1e-5, raw.shape), grids, strides, targets)["assignments"]
        for a, b in zip(base, moved):
            np.testing.assert_array_equal(a.gt_index, b.gt_index)


def test_precomputed_assignment_gives_same_result():
    raw, grids, strides, targets = small_batch(seed=4)
    first = yolox_loss(raw, grids, strides, targets, use_l1=True)
    again = yolox_loss(raw, grids, strides, targets, use_l1=True, assignments=first["assignments"])
    for key in ("total", "iou", "obj", "cls", "l1", "num_fg"):
        assert first[key] == again[key]
    np.testing.assert_array_equal(first["grad"], again["grad"])


def test_loss_terms_sum_and_normalisation():
    raw, grids, strides, targets = small_batch(seed=1)
    out = yolox_loss(raw, grids, strides, targets, use_l1=True)
    assert out["total"] == pytest.approx(out["iou"] + out["obj"] + out["cls"] + out["l1"])
    fg = np.stack([a.fg_mask for a in out["assignments"]])
    assert out["num_fg"] == fg.sum()
    obj_target = fg.astype(float)
    assert out["obj"] == pytest.approx(bce_with_logits(raw[..., 4], obj_target).sum() / out["num_fg"])


def test_float32_raw_gives_float32_grad():
    raw, grids, strides, targets = small_batch(dtype=np.float32)
    out32 = yolox_loss(raw, grids, strides, targets)
    out64 = yolox_loss(raw.astype(np.float64), grids, strides, targets)
    assert out32["grad"].dtype == np.float32
    assert out32["total"] == pytest.approx(out64["total"], rel=1e-6)
    np.testing.assert_allclose(out32["grad"], out64["grad"], rtol=1e-5, atol=1e-7)


def test_batch_without_objects():
    raw, grids, strides, _ = small_batch()
    out = yolox_loss(raw, grids, strides, [np.zeros((0, 5))] * 3)
    assert out["num_fg"] == 0
    assert out["iou"] == out["cls"] == out["l1"] == 0.0
    assert out["obj"] == pytest.approx(bce_with_logits(raw[..., 4], np.zeros((3, 20))).sum())  # / max(0, 1)
    np.testing.assert_allclose(out["grad"][..., 4], sigmoid(raw[..., 4]))
    assert (out["grad"][..., :4] == 0).all() and (out["grad"][..., 5:] == 0).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["official", "article"]))
def test_loss_is_finite_and_nonnegative(seed, variant):
    raw, grids, strides, targets = small_batch(seed=seed)
    out = yolox_loss(raw * 3, grids, strides, targets, use_l1=True, variant=variant)
    for key in ("total", "iou", "obj", "cls", "l1"):
        assert np.isfinite(out[key]) and out[key] >= 0
    assert np.isfinite(out["grad"]).all()


def test_yolox_loss_validation():
    raw, grids, strides, targets = small_batch()
    with pytest.raises(ValueError, match=r"raw must have shape \(B, A, 5 \+ C\)"):
        yolox_loss(raw[0], grids, strides, targets)
    with pytest.raises(ValueError, match=r"raw must have shape"):
        yolox_loss(raw[..., :5], grids, strides, targets)
    with pytest.raises(ValueError, match="grids has 20 cells but the predictions have A = 19"):
        yolox_loss(raw[:, :19], grids, strides, targets)
    with pytest.raises(ValueError, match="strides must have shape"):
        yolox_loss(raw, grids, strides[:5], targets)
    with pytest.raises(ValueError, match="targets has 2 entries but raw has batch size B = 3"):
        yolox_loss(raw, grids, strides, targets[:2])
    with pytest.raises(ValueError, match="list of B = 3 arrays"):
        yolox_loss(raw, grids, strides, np.zeros((3, 1, 5)))
    with pytest.raises(ValueError, match=r"targets\[0\] must have shape \(G, 5\)"):
        yolox_loss(raw, grids, strides, [targets[0][:, :4], targets[1], targets[2]])
    bad = [t.copy() for t in targets]
    bad[2][0, 3] = np.nan
    with pytest.raises(ValueError, match=r"targets\[2\]: non-finite value at index \(0, 3\)"):
        yolox_loss(raw, grids, strides, bad)
    bad = [t.copy() for t in targets]
    bad[0][1, 0] = 3
    with pytest.raises(ValueError, match=r"targets\[0\] row 1: class 3.0 is not an index in \[0, 3\)"):
        yolox_loss(raw, grids, strides, bad)
    bad = [t.copy() for t in targets]
    bad[0][0, 4] = -2
    with pytest.raises(ValueError, match="negative height"):
        yolox_loss(raw, grids, strides, bad)
    nan_raw = raw.copy()
    nan_raw[1, 7, 6] = np.inf
    with pytest.raises(ValueError, match=r"raw: non-finite value at index \(1, 7, 6\)"):
        yolox_loss(nan_raw, grids, strides, targets)
    huge = raw.copy()
    huge[0, 3, 2] = 1e4
    with pytest.raises(ValueError, match="image 0, anchor 3 overflow"):
        yolox_loss(huge, grids, strides, targets)
    with pytest.raises(ValueError, match="variant"):
        yolox_loss(raw, grids, strides, targets, variant="v2")
    with pytest.raises(ValueError, match="assign_variant"):
        yolox_loss(raw, grids, strides, targets, assign_variant="old")
    with pytest.raises(ValueError, match="assignments"):
        yolox_loss(raw, grids, strides, targets, assignments=[None, None, None])
