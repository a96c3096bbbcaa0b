"""Post-processing: golden YOLOX-Nano detections, NMS against a plain loop, the official postprocess rules."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yolox_np.postprocess import (
    _batched_nms_fast,
    _greedy_nms_kernel,
    _greedy_nms_numpy,
    batched_nms,
    nms,
    postprocess,
)

STRIDES = (8, 16, 32)


# ---------------------------------------------------------------------------------------------------
# independent references


def decode_reference(raw, size=416):
    """Official decode of a (B, A, 85) raw output, written from the assets README formulas."""
    grid, stride = [], []
    for s in STRIDES:
        n = size // s
        for gy in range(n):
            for gx in range(n):
                grid.append((gx, gy))
                stride.append(s)
    grid = np.asarray(grid, dtype=np.float32)
    stride = np.asarray(stride, dtype=np.float32)[:, None]
    out = raw.astype(np.float32).copy()
    out[..., 0:2] = (raw[..., 0:2] + grid) * stride
    out[..., 2:4] = np.exp(raw[..., 2:4]) * stride
    return out


def iou_pair(a, b):
    """IoU of two xyxy boxes in float64, continuous areas."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms_loop(boxes, scores, thr):
    """Textbook greedy NMS with Python lists."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(iou_pair(boxes[i], boxes[k]) <= thr for k in keep):
            keep.append(i)
    return keep


def postprocess_loop(decoded, conf, thr, agnostic):
    """One image of the official rules, spelled out: filter, per-class greedy NMS, sort by score."""
    rows = []
    for a, p in enumerate(decoded):
        cls = int(np.argmax(p[5:]))
        cls_prob = float(p[5 + cls])
        if p[4] * cls_prob >= conf:
            box = [p[0] - p[2] / 2, p[1] - p[3] / 2, p[0] + p[2] / 2, p[1] + p[3] / 2]
            rows.append((a, box, float(p[4]), cls_prob, cls, float(p[4] * cls_prob)))
    kept = []
    for group in sorted({0} if agnostic else {r[4] for r in rows}):
        members = [r for r in rows if agnostic or r[4] == group]
        keep = nms_loop([r[1] for r in members], [r[5] for r in members], thr)
        kept += [members[k] for k in keep]
    kept.sort(key=lambda r: (-r[5], r[0]))
    return [r[0] for r in kept]


# ---------------------------------------------------------------------------------------------------
# golden detections of the real YOLOX-Nano


@pytest.mark.assets
@pytest.mark.parametrize("photo", ["chelsea", "coffee"])
def test_postprocess_reproduces_golden_detections(assets_dir, photo):
    golden = np.load(assets_dir / "yolox_nano" / f"golden_{photo}.npz")
    decoded = decode_reference(golden["raw_output"])
    dets, rows = postprocess(decoded, 80, conf_thre=0.3, nms_thre=0.45, return_indices=True)
    assert len(dets) == 1 and dets[0].dtype == np.float32
    np.testing.assert_array_equal(rows[0], golden["anchor_index"])
    ref = golden["detections"]  # x1, y1, x2, y2, score, class_id, obj (original pixels)
    det = dets[0]
    np.testing.assert_allclose(det[:, :4] / float(golden["ratio"]), ref[:, :4], rtol=0, atol=1e-4)
    np.testing.assert_allclose(det[:, 4] * det[:, 5], ref[:, 4], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(det[:, 6], ref[:, 5])
    np.testing.assert_allclose(det[:, 4], ref[:, 6], rtol=0, atol=1e-6)


@pytest.mark.assets
@pytest.mark.parametrize("photo", ["chelsea", "coffee", "astronaut", "rocket", "camera", "coins"])
def test_batched_nms_keeps_the_golden_candidates(assets_dir, photo):
    golden = np.load(assets_dir / "yolox_nano" / f"golden_{photo}.npz")
    cand = golden["candidates"]  # NMS of the golden files ran on these rows (original pixels)
    keep = batched_nms(cand[:, :4], cand[:, 4], cand[:, 5], 0.45)
    np.testing.assert_array_equal(golden["candidate_index"][keep], golden["anchor_index"])
    np.testing.assert_array_equal(cand[keep], golden["detections"])


# ---------------------------------------------------------------------------------------------------
# NMS: fenced clear version, Numba kernel, NumPy fallback and a plain loop agree


@st.composite
def boxes_and_scores(draw, max_n=40, dtype=np.float64):
    """Boxes on a coarse grid (exact IoU ties and touching edges) and scores with ties."""
    n = draw(st.integers(0, max_n))
    coords = draw(st.lists(st.tuples(*[st.integers(0, 12)] * 4), min_size=n, max_size=n))
    boxes = np.array([[min(a, c), min(b, d), max(a, c), max(b, d)] for a, b, c, d in coords], dtype=dtype)
    boxes = boxes.reshape(n, 4) * 2.5
    scores = np.array(draw(st.lists(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9, 0.95]), min_size=n, max_size=n)))
    return boxes, scores.astype(dtype)


@settings(max_examples=80, deadline=None)
@given(data=boxes_and_scores(), thr=st.sampled_from([0.0, 0.2, 0.25, 0.5, 0.65, 1.0]))
def test_nms_matches_plain_loop(data, thr):
    boxes, scores = data
    expected = nms_loop(boxes.tolist(), scores.tolist(), thr)
    order = np.argsort(-scores, kind="stable")
    assert nms(boxes, scores, thr).tolist() == expected
    assert _greedy_nms_kernel(boxes, order, np.float64(thr)).tolist() == expected
    assert _greedy_nms_numpy(boxes, order, np.float64(thr)).tolist() == expected


def test_nms_float32_versions_agree_on_many_random_boxes():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 400, (1500, 2)).astype(np.float32)
    wh = rng.uniform(1, 120, (1500, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.random(1500).astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    for thr in (0.3, 0.45, 0.65):
        fenced = nms(boxes, scores, thr)
        np.testing.assert_array_equal(_greedy_nms_kernel(boxes, order, np.float64(thr)), fenced)
        np.testing.assert_array_equal(_greedy_nms_numpy(boxes, order, np.float64(thr)), fenced)
        np.testing.assert_array_equal(batched_nms(boxes, scores, np.zeros(1500), thr), fenced)


def test_nms_suppresses_strictly_above_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 2]], dtype=np.float64)  # IoU 0.5 and 0.2
    scores = np.array([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1, 2]  # IoU exactly 0.5 is not > 0.5
    assert nms(boxes, scores, 0.49).tolist() == [0, 2]
    assert nms(boxes, scores, 0.1).tolist() == [0]


@settings(max_examples=60, deadline=None)
@given(data=boxes_and_scores(max_n=30), classes=st.lists(st.integers(0, 3), min_size=30, max_size=30))
def test_batched_nms_is_per_class_nms_sorted_by_score(data, classes):
    boxes, scores = data
    classes = np.array(classes[: len(scores)])
    expected = []
    for c in sorted(set(classes.tolist())):
        members = np.flatnonzero(classes == c)
        expected += members[nms_loop(boxes[members].tolist(), scores[members].tolist(), 0.45)].tolist()
    expected.sort(key=lambda i: (-scores[i], i))
    assert batched_nms(boxes, scores, classes, 0.45).tolist() == expected
    assert _batched_nms_fast(boxes, scores, classes, 0.45).tolist() == expected


def test_boxes_of_other_classes_never_suppress():
    boxes = np.array([[0, 0, 10, 10]] * 3, dtype=np.float32)
    scores = np.array([0.5, 0.9, 0.7], dtype=np.float32)
    assert batched_nms(boxes, scores, [0, 1, 2], 0.1).tolist() == [1, 2, 0]
    assert batched_nms(boxes, scores, [0, 0, 2], 0.1).tolist() == [1, 2]
    assert nms(boxes, scores, 0.1).tolist() == [1]


def test_nms_empty_input():
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5).shape == (0,)


@pytest.mark.parametrize(
    "boxes, scores, match",
    [
        (np.zeros((3, 5)), np.zeros(3), "shape"),
        (np.zeros((3, 4)), np.zeros(2), "scores must have shape"),
        (np.array([[0, 0, 1, 1], [2, 0, 1, 1.0]]), np.zeros(2), "box 1"),
        (np.array([[0, 0, 1, np.nan]]), np.zeros(1), "box 0"),
        (np.zeros((1, 4)), np.array([np.inf]), "score 0"),
    ],
)
def test_nms_rejects_bad_input(boxes, scores, match):
    with pytest.raises(ValueError, match=match):
        nms(boxes, scores, 0.5)


def test_nms_rejects_bad_threshold_and_classes():
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(np.zeros((1, 4)), np.zeros(1), 1.5)
    with pytest.raises(ValueError, match="classes"):
        batched_nms(np.zeros((2, 4)), np.zeros(2), [0.5, 1], 0.5)
    with pytest.raises(ValueError, match="classes must have shape"):
        batched_nms(np.zeros((2, 4)), np.zeros(2), [0], 0.5)


# ---------------------------------------------------------------------------------------------------
# postprocess follows the official rules


def random_decoded(rng, batch=3, anchors=60, num_classes=4):
    decoded = np.empty((batch, anchors, 5 + num_classes), dtype=np.float32)
    decoded[..., 0:2] = rng.uniform(0, 100, (batch, anchors, 2))
    decoded[..., 2:4] = rng.uniform(2, 40, (batch, anchors, 2))
    decoded[..., 4:] = rng.random((batch, anchors, 1 + num_classes)) ** 2
    return decoded


@pytest.mark.parametrize("agnostic", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_postprocess_matches_spelled_out_rules(seed, agnostic):
    rng = np.random.default_rng(seed)
    decoded = random_decoded(rng)
    dets, rows = postprocess(decoded, 4, conf_thre=0.05, nms_thre=0.5, class_agnostic=agnostic,
                             return_indices=True)
    for b in range(decoded.shape[0]):
        expected = postprocess_loop(decoded[b], 0.05, 0.5, agnostic)
        assert rows[b].tolist() == expected
        p = decoded[b, expected]
        cls = np.argmax(p[:, 5:], axis=1)
        np.testing.assert_array_equal(dets[b][:, 6], cls)
        np.testing.assert_array_equal(dets[b][:, 5], p[np.arange(len(p)), 5 + cls])
        np.testing.assert_array_equal(dets[b][:, 4], p[:, 4])
        np.testing.assert_allclose(dets[b][:, 0], p[:, 0] - p[:, 2] / 2, rtol=1e-6)
        np.testing.assert_allclose(dets[b][:, 3], p[:, 1] + p[:, 3] / 2, rtol=1e-6)


def test_postprocess_properties():
    rng = np.random.default_rng(5)
    decoded = random_decoded(rng, batch=2, anchors=200, num_classes=3)
    for det in postprocess(decoded, 3, conf_thre=0.1, nms_thre=0.3):
        score = det[:, 4] * det[:, 5]
        assert (score >= np.float32(0.1)).all()
        assert (np.diff(score) <= 0).all()
        for i in range(len(det)):
            for j in range(i + 1, len(det)):
                if det[i, 6] == det[j, 6]:
                    assert iou_pair(det[i, :4].astype(float), det[j, :4].astype(float)) <= 0.3 + 1e-6


def test_postprocess_threshold_is_inclusive_and_empty_images_give_empty_arrays():
    decoded = np.zeros((2, 2, 7), dtype=np.float32)
    decoded[0, 0] = [10, 10, 4, 4, 0.5, 0.5, 0.25]  # score exactly 0.25
    decoded[0, 1] = [50, 50, 4, 4, 0.5, 0.2, 0.4]  # score 0.2
    out = postprocess(decoded, 2, conf_thre=0.25, nms_thre=0.5)
    assert out[0].shape == (1, 7) and out[0][0, 6] == 0
    assert out[1].shape == (0, 7) and out[1].dtype == np.float32


def test_postprocess_float64_input_gives_float32_output():
    decoded = random_decoded(np.random.default_rng(1), batch=1).astype(np.float64)
    out = postprocess(decoded, 4, 0.05, 0.5)[0]
    assert out.dtype == np.float32 and len(out) > 0


@pytest.mark.parametrize(
    "decoded, num_classes, match",
    [
        (np.zeros((10, 7)), 2, r"\(B, A, 5 \+ num_classes\)"),
        (np.zeros((1, 10, 7)), 3, "= \\(B, A, 8\\)"),
        (np.zeros((1, 10, 7)), 0, "num_classes"),
    ],
)
def test_postprocess_rejects_bad_shapes(decoded, num_classes, match):
    with pytest.raises(ValueError, match=match):
        postprocess(decoded, num_classes)


def test_postprocess_rejects_nan_and_negative_sizes():
    decoded = np.ones((2, 5, 7), dtype=np.float32)
    decoded[1, 3, 6] = np.nan
    with pytest.raises(ValueError, match="image 1, anchor 3, column 6"):
        postprocess(decoded, 2)
    decoded[1, 3, 6] = 0.5
    decoded[0, 2, 3] = -1
    with pytest.raises(ValueError, match="negative height at image 0, anchor 2"):
        postprocess(decoded, 2)
    with pytest.raises(ValueError, match="conf_thre"):
        postprocess(np.ones((1, 1, 7)), 2, conf_thre=-0.1)


def test_runs_with_numba_jit_disabled(tmp_path):
    rng = np.random.default_rng(3)
    decoded = random_decoded(rng, batch=2, anchors=80)
    np.save(tmp_path / "decoded.npy", decoded)
    code = (
        "import numpy as np, sys\n"
        "from yolox_np.postprocess import postprocess\n"
        f"d = np.load(r'{tmp_path / 'decoded.npy'}')\n"
        "out = postprocess(d, 4, 0.05, 0.5)\n"
        f"np.savez(r'{tmp_path / 'out.npz'}', *out)\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    jit_free = np.load(tmp_path / "out.npz")
    for b, det in enumerate(postprocess(decoded, 4, 0.05, 0.5)):
        np.testing.assert_array_equal(jit_free[f"arr_{b}"], det)
