"""Soft-NMS (Bodla et al.) and the seed article's variant, against plain loops written here."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yolox_np.postprocess import article_soft_nms, nms, soft_nms


def iou_pair(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def soft_nms_loop(boxes, scores, method, sigma, nt, threshold):
    """Bodla et al.'s loop with Python lists: pick the best, rescore the others, drop the low ones."""
    live = {i: s for i, s in enumerate(scores) if s >= threshold}
    keep, kept = [], []
    while live:
        best = min(live, key=lambda i: (-live[i], i))
        keep.append(best)
        kept.append(live.pop(best))
        for i in list(live):
            iou = iou_pair(boxes[best], boxes[i])
            if method == "gaussian":
                live[i] *= math.exp(-iou * iou / sigma)
            elif iou > nt:
                live[i] *= (1 - iou) if method == "linear" else 0.0
            if live[i] < threshold:
                del live[i]
    return keep, kept


def article_loop(boxes_xywh, scores, iou_thr, score_thr):
    """The article's pseudocode with (x, y) read as the centre, plus the guards the spec asks for."""
    boxes = [[x - w / 2, y - h / 2, x + w / 2, y + h / 2] for x, y, w, h in boxes_xywh]
    live = {i: s for i, s in enumerate(scores) if s >= score_thr}
    keep, kept = [], []
    while live:
        best = min(live, key=lambda i: (-live[i], i))
        keep.append(best)
        kept.append(live.pop(best))
        if not live:
            break
        mu = sum(live.values()) / len(live)
        for i in list(live):
            iou = iou_pair(boxes[best], boxes[i])
            if iou > iou_thr:
                live[i] = live[i] * math.exp(-iou * iou / mu) if mu > 0 else 0.0
        live = {i: s for i, s in live.items() if s >= score_thr}
    return keep, kept


@st.composite
def boxes_and_scores(draw, max_n=25):
    n = draw(st.integers(0, max_n))
    coords = draw(st.lists(st.tuples(*[st.integers(0, 10)] * 4), min_size=n, max_size=n))
    boxes = np.array([[min(a, c), min(b, d), max(a, c), max(b, d)] for a, b, c, d in coords], float)
    boxes = boxes.reshape(n, 4) * 3.0
    scores = draw(st.lists(st.floats(0.0, 1.0, allow_nan=False).map(lambda v: round(v, 2)), min_size=n, max_size=n))
    return boxes, np.array(scores, dtype=np.float64)


@settings(max_examples=80, deadline=None)
@given(
    data=boxes_and_scores(),
    method=st.sampled_from(["linear", "gaussian", "hard"]),
    sigma=st.sampled_from([0.1, 0.5, 2.0]),
    nt=st.sampled_from([0.0, 0.3, 0.5]),
    threshold=st.sampled_from([0.0, 0.001, 0.2]),
)
def test_soft_nms_matches_plain_loop(data, method, sigma, nt, threshold):
    boxes, scores = data
    keep, kept = soft_nms(boxes, scores, method=method, sigma=sigma, iou_threshold=nt, score_threshold=threshold)
    ref_keep, ref_kept = soft_nms_loop(boxes.tolist(), scores.tolist(), method, sigma, nt, threshold)
    assert keep.tolist() == ref_keep
    np.testing.assert_allclose(kept, ref_kept, rtol=1e-12, atol=0)
    assert keep.dtype == np.int64 and kept.dtype == np.float64


@settings(max_examples=60, deadline=None)
@given(data=boxes_and_scores(), method=st.sampled_from(["linear", "gaussian", "hard"]))
def test_scores_never_increase(data, method):
    boxes, scores = data
    keep, kept = soft_nms(boxes, scores, method=method)
    assert (kept <= scores[keep] + 1e-15).all()
    assert (np.diff(kept) <= 0).all()  # selection order is by current score
    assert len(set(keep.tolist())) == len(keep)


@settings(max_examples=60, deadline=None)
@given(data=boxes_and_scores(), nt=st.sampled_from([0.0, 0.3, 0.5, 0.7]))
def test_hard_method_is_nms(data, nt):
    boxes, scores = data
    scores = scores * 0.9 + 0.05  # all above the score threshold
    keep, kept = soft_nms(boxes, scores, method="hard", iou_threshold=nt, score_threshold=0.01)
    assert keep.tolist() == nms(boxes, scores, nt).tolist()
    np.testing.assert_array_equal(kept, scores[keep])


def test_huge_sigma_keeps_every_box_with_its_score():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (30, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (30, 2))], axis=1)
    scores = rng.uniform(0.1, 1, 30)
    keep, kept = soft_nms(boxes, scores, method="gaussian", sigma=1e12)
    assert keep.tolist() == np.argsort(-scores, kind="stable").tolist()
    np.testing.assert_allclose(kept, scores[keep], rtol=1e-9)


@pytest.mark.parametrize("method", ["linear", "gaussian", "hard"])
def test_non_overlapping_boxes_keep_their_scores(method):
    boxes = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [0, 20, 5, 25], [30, 30, 31, 31]], dtype=float)
    scores = np.array([0.3, 0.9, 0.6, 0.0005])
    keep, kept = soft_nms(boxes, scores, method=method)
    assert keep.tolist() == [1, 2, 0]  # touching edges do not overlap; 0.0005 < 0.001 is dropped
    np.testing.assert_array_equal(kept, [0.9, 0.6, 0.3])


def test_soft_nms_hand_computed_decays():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], dtype=float)  # IoU 0.5
    scores = np.array([0.9, 0.8])
    _, kept = soft_nms(boxes, scores, method="linear", iou_threshold=0.3)
    np.testing.assert_allclose(kept, [0.9, 0.4])
    _, kept = soft_nms(boxes, scores, method="gaussian", sigma=0.5)
    np.testing.assert_allclose(kept, [0.9, 0.8 * math.exp(-0.25 / 0.5)])
    keep, _ = soft_nms(boxes, scores, method="hard", iou_threshold=0.5)
    assert keep.tolist() == [0, 1]  # IoU 0.5 is not > 0.5


def test_soft_nms_rejects_bad_input():
    boxes, scores = np.zeros((2, 4)), np.zeros(2)
    with pytest.raises(ValueError, match="method"):
        soft_nms(boxes, scores, method="cubic")
    with pytest.raises(ValueError, match="sigma"):
        soft_nms(boxes, scores, sigma=0)
    with pytest.raises(ValueError, match="score_threshold"):
        soft_nms(boxes, scores, score_threshold=-1)
    with pytest.raises(ValueError, match="box 1"):
        soft_nms(np.array([[0, 0, 1, 1], [0, 0, -1, 1.0]]), scores)
    with pytest.raises(ValueError, match="scores must have shape"):
        soft_nms(boxes, np.zeros(3))


# ---------------------------------------------------------------------------------------------------
# the article's variant


@st.composite
def centre_boxes_and_scores(draw, max_n=20):
    n = draw(st.integers(0, max_n))
    rows = draw(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 12), st.integers(0, 12)),
                         min_size=n, max_size=n))
    scores = draw(st.lists(st.sampled_from([0.0, 0.2, 0.5, 0.55, 0.7, 0.9]), min_size=n, max_size=n))
    return np.array(rows, dtype=float).reshape(n, 4), np.array(scores)


@settings(max_examples=80, deadline=None)
@given(data=centre_boxes_and_scores(), iou_thr=st.sampled_from([0.0, 0.3, 0.5]),
       score_thr=st.sampled_from([0.0, 0.1, 0.5]))
def test_article_soft_nms_matches_plain_loop(data, iou_thr, score_thr):
    boxes, scores = data
    keep, kept = article_soft_nms(boxes, scores, iou_thr, score_thr)
    ref_keep, ref_kept = article_loop(boxes.tolist(), scores.tolist(), iou_thr, score_thr)
    assert keep.tolist() == ref_keep
    np.testing.assert_allclose(kept, ref_kept, rtol=1e-12)


def test_article_reads_xy_as_the_centre():
    # as centres the boxes overlap (IoU 25/475); read as top-left corners they would only touch
    boxes = np.array([[0, 0, 10, 10], [10, 10, 20, 20]], dtype=float)
    scores = np.array([0.9, 0.8])
    keep, kept = article_soft_nms(boxes, scores, iou_threshold=0.01, score_threshold=0.0)
    iou = 25 / 475
    assert keep.tolist() == [0, 1]
    np.testing.assert_allclose(kept, [0.9, 0.8 * math.exp(-iou**2 / 0.8)])


def test_article_decays_only_above_the_iou_threshold_and_uses_the_mean_score():
    boxes = np.array([[5, 5, 10, 10], [5, 5, 10, 10], [6, 5, 10, 10], [100, 100, 4, 4]], dtype=float)
    scores = np.array([0.9, 0.6, 0.3, 0.5])
    keep, kept = article_soft_nms(boxes, scores, iou_threshold=0.95, score_threshold=0.0)
    # round 1: M = box 0, mu = (0.6 + 0.3 + 0.5) / 3; only box 1 (IoU 1) decays; box 2 has IoU 90/110 < 0.95;
    # later rounds: box 3 (no overlap), box 2 (IoU 90/110 with box 1, no decay), box 1
    s1 = 0.6 * math.exp(-1 / ((0.6 + 0.3 + 0.5) / 3))
    assert keep.tolist() == [0, 3, 2, 1]
    np.testing.assert_allclose(kept, [0.9, 0.5, 0.3, s1], rtol=1e-12)


def test_article_guards_single_box_and_zero_mean():
    keep, kept = article_soft_nms(np.array([[5.0, 5, 2, 2]]), np.array([0.7]), 0.5, 0.1)
    assert keep.tolist() == [0] and kept.tolist() == [0.7]
    boxes = np.array([[5.0, 5, 2, 2], [5.0, 5, 2, 2]])
    keep, kept = article_soft_nms(boxes, np.array([0.7, 0.0]), 0.5, 0.0)  # mean of the rest is 0
    assert keep.tolist() == [0, 1] and kept.tolist() == [0.7, 0.0]


def test_article_rejects_bad_input():
    with pytest.raises(ValueError, match="negative width"):
        article_soft_nms(np.array([[0, 0, -1, 1.0]]), np.array([0.5]), 0.5, 0.1)
    with pytest.raises(ValueError, match="iou_threshold"):
        article_soft_nms(np.zeros((1, 4)), np.array([0.5]), 2.0, 0.1)
