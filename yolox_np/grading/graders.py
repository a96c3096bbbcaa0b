"""One grader per exercise: comparisons with `reference` on generated cases, plus hypothesis properties."""

from __future__ import annotations

import numpy as np

from . import reference as ref
from .core import Mismatch, assert_close, compare_check, property_check

GRADERS: dict[str, list] = {}


def grader(task_id: str):
    def deco(fn):
        GRADERS[task_id] = fn()
        return fn

    return deco


# ----------------------------------------------------------------------------- case generators
def _rng(i):
    return np.random.default_rng(1000 + i)


def random_boxes(rng, n, scale=100.0, degenerate=False):
    """(n, 4) xyxy boxes; with `degenerate`, some have zero width or height."""
    xy = rng.uniform(0, scale, (n, 2))
    wh = rng.uniform(1, scale / 2, (n, 2))
    if degenerate and n:
        wh[rng.random(n) < 0.2, rng.integers(0, 2)] = 0.0
    return np.concatenate([xy, xy + wh], axis=1)


def _box_strategy():
    from hypothesis import strategies as st

    coord = st.floats(0, 100, allow_nan=False, width=64)
    size = st.floats(0, 60, allow_nan=False, width=64)
    box = st.tuples(coord, coord, size, size).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])
    return st.tuples(st.lists(box, min_size=1, max_size=4), st.lists(box, min_size=1, max_size=4)).map(
        lambda ab: (np.array(ab[0], np.float64), np.array(ab[1], np.float64)))


def _pairwise_cases():
    yield (np.array([[0.0, 0, 10, 10]]), np.array([[5.0, 5, 15, 15]])), {}
    yield (np.array([[0.0, 0, 10, 10]]), np.array([[20.0, 20, 30, 30], [0, 0, 10, 10]])), {}
    yield (np.array([[0.0, 0, 10, 10], [2, 2, 2, 8]]), np.array([[0.0, 0, 0, 0], [1, 1, 9, 4]])), {}
    for i in range(6):
        r = _rng(i)
        yield (random_boxes(r, 1 + i, degenerate=True), random_boxes(r, 2 + i, degenerate=True)), {}


# ----------------------------------------------------------------------------- engine
def _conv_cases():
    configs = [(1, 1, 3, 3, 1, 1, 1, 0, 1), (1, 2, 4, 4, 2, 3, 1, 1, 1), (2, 3, 5, 6, 4, 3, 2, 1, 1),
               (1, 4, 5, 5, 4, 3, 1, 1, 4), (2, 4, 7, 5, 6, 3, 2, 0, 2), (1, 3, 6, 6, 2, 1, 2, 0, 1)]
    for i, (n, c, h, w, f, k, s, p, g) in enumerate(configs):
        r = _rng(i)
        x = r.standard_normal((n, c, h, w))
        wt = r.standard_normal((f, c // g, k, k))
        b = r.standard_normal(f)
        yield (x, wt, b), {"stride": s, "padding": p, "groups": g}


@grader("conv_forward")
def _conv_forward():
    def compare(got, args, kw):
        assert_close(got, ref.conv_forward(*args, **kw), "output", 1e-6, 1e-8)

    return [compare_check("output equals the reference convolution", _conv_cases, compare)]


@grader("conv_backward")
def _conv_backward():
    def cases():
        for (x, w, b), kw in _conv_cases():
            r = _rng(int(x.size))
            y = ref.conv_forward(x, w, b, **kw)
            yield (r.standard_normal(y.shape), x, w, b), kw

    def compare(got, args, kw):
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise Mismatch("conv_backward must return the tuple (dx, dw, db)")
        want = ref.conv_backward(*args, **kw)
        for name, g, wv in zip(("dx", "dw", "db"), got, want):
            assert_close(g, wv, name, 1e-6, 1e-8)

    return [compare_check("(dx, dw, db) equal the reference gradients", cases, compare)]


@grader("batchnorm_backward")
def _batchnorm_backward():
    def cases():
        for i, shape in enumerate([(2, 1, 1, 2), (2, 3, 2, 2), (4, 2, 3, 5), (1, 5, 4, 4)]):
            r = _rng(i)
            x = r.standard_normal(shape) * 3 + 1
            gamma, eps = r.standard_normal(shape[1]), 1e-5
            mean = x.mean(axis=(0, 2, 3), keepdims=True)
            var = x.var(axis=(0, 2, 3), keepdims=True)
            inv_std = 1 / np.sqrt(var + eps)
            xhat = (x - mean) * inv_std
            yield (r.standard_normal(shape), (xhat, inv_std.reshape(-1), gamma)), {}

    def compare(got, args, kw):
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise Mismatch("batchnorm_backward must return the tuple (dx, dgamma, dbeta)")
        for name, g, wv in zip(("dx", "dgamma", "dbeta"), got, ref.batchnorm_backward(*args)):
            assert_close(g, wv, name, 1e-6, 1e-8)

    return [compare_check("(dx, dgamma, dbeta) equal the reference", cases, compare)]


# ----------------------------------------------------------------------------- boxes
@grader("box_iou")
def _box_iou():
    def compare(got, args, kw):
        assert_close(got, ref.box_iou(*args), "IoU matrix", 1e-6, 1e-9)

    def bounds(fn, ab):
        iou = np.asarray(fn(*ab))
        if iou.shape != (len(ab[0]), len(ab[1])):
            raise Mismatch(f"IoU matrix has shape {iou.shape}, expected {(len(ab[0]), len(ab[1]))}")
        if not np.all((iou >= -1e-12) & (iou <= 1 + 1e-12)):
            raise Mismatch(f"IoU outside [0, 1]: {iou}")

    def symmetric(fn, ab):
        assert_close(np.asarray(fn(*ab)), np.asarray(fn(ab[1], ab[0])).T, "IoU(a, b) vs IoU(b, a).T", 1e-9, 1e-12)

    return [compare_check("equals the reference on hand-made and random boxes", _pairwise_cases, compare),
            property_check("0 <= IoU <= 1 (hypothesis)", _box_strategy, bounds),
            property_check("IoU is symmetric (hypothesis)", _box_strategy, symmetric)]


@grader("box_giou")
def _box_giou():
    def compare(got, args, kw):
        assert_close(got, ref.box_giou(*args), "GIoU matrix", 1e-6, 1e-9)

    def below_iou(fn, ab):
        giou = np.asarray(fn(*ab))
        iou = ref.box_iou(*ab)
        if giou.shape != iou.shape:
            raise Mismatch(f"GIoU matrix has shape {giou.shape}, expected {iou.shape}")
        if not np.all((giou <= iou + 1e-9) & (giou >= -1 - 1e-9)):
            raise Mismatch(f"need -1 <= GIoU <= IoU; got GIoU {giou} for IoU {iou}")

    return [compare_check("equals the reference on hand-made and random boxes", _pairwise_cases, compare),
            property_check("-1 <= GIoU <= IoU (hypothesis)", _box_strategy, below_iou)]


def _grids(h, w, strides=(8, 16, 32)):
    g, s = [], []
    for st in strides:
        ys, xs = np.meshgrid(np.arange(h // st), np.arange(w // st), indexing="ij")
        g.append(np.stack([xs.ravel(), ys.ravel()], 1))
        s.append(np.full(xs.size, st))
    return np.concatenate(g), np.concatenate(s)


@grader("decode")
def _decode():
    def cases():
        g = np.array([[2, 1]])
        yield (np.array([[20.0, 15.0, 0.2, 0.3]]), g, np.array([32])), {"convention": "article"}
        yield (np.array([[1.125, 0.96875, 0.2, 0.3]]), g, np.array([32])), {"convention": "official"}
        for i, conv in enumerate(["official", "article", "official"]):
            r = _rng(i)
            grids, strides = _grids(64, 96)
            raw = r.standard_normal((2, len(strides), 4 + 3))
            yield (raw, grids, strides), {"convention": conv}

    def compare(got, args, kw):
        assert_close(got, ref.decode(*args, **kw), "decoded array", 1e-6, 1e-6)

    return [compare_check("official and article conventions equal the reference (incl. the bear example)",
                          cases, compare)]


# ----------------------------------------------------------------------------- losses and SimOTA
@grader("bce_with_logits")
def _bce():
    def cases():
        yield (np.array([0.0, 2.0, -3.0]), np.array([1.0, 0.0, 0.5])), {}
        yield (np.array([1000.0, -1000.0, 1000.0, -1000.0]), np.array([1.0, 0.0, 0.0, 1.0])), {}
        r = _rng(0)
        yield (r.standard_normal((4, 5)) * 10, r.uniform(0, 1, (4, 5))), {}

    def compare(got, args, kw):
        got = np.asarray(got)
        if not np.all(np.isfinite(got)):
            raise Mismatch("BCE must be finite, even for logits of +-1000")
        assert_close(got, ref.bce_with_logits(*args), "BCE", 1e-6, 1e-9)

    return [compare_check("equals the stable reference, finite at +-1000", cases, compare)]


@grader("dynamic_k")
def _dynamic_k():
    def cases():
        yield (np.array([[0.3448, 0.8824, 0.4724, 0.04, 0.1822, 0.7971, 0.3043, 0.0],
                         [0.0, 0.2, 0.5909, 0.4118, 0.0, 0.234, 0.7409, 0.2525]]),), {}
        yield (np.zeros((2, 3)),), {}
        for i in range(4):
            r = _rng(i)
            yield (r.uniform(0, 1, (3, 5 + 7 * i)) ** 2,), {}

    def compare(got, args, kw):
        got = np.asarray(got)
        want = ref.dynamic_k(*args)
        if got.shape != want.shape or not np.array_equal(got.astype(np.int64), want):
            raise Mismatch(f"dynamic k is {got}, expected {want}")

    return [compare_check("k = max(1, int(sum of the top-10 IoUs)) per GT", cases, compare)]


def _simota_cases():
    # the worked example of the reference notes: stride 8, a 40x16 image, two GTs
    grids = np.array([[i, j] for j in range(2) for i in range(5)])
    strides = np.full(10, 8.0)
    pred = np.array([[8, 7, 12, 10], [13, 8, 16, 12], [19, 8, 14, 13], [26, 8, 10, 12], [36, 6, 8, 8],
                     [6, 10, 10, 10], [14, 9, 15, 12], [21, 9, 12, 14], [27, 10, 8, 10], [36, 12, 8, 8]], float)
    obj = np.array([-1.0, 1.0, 1.5, 0.0, -3.0, -2.0, 0.5, 0.8, -0.5, -3.0])
    cls = np.array([[0, -2], [2, -1], [1, 1], [-1, 1], [-3, -3], [-1, -2], [1, -1], [-0.5, 1.5], [-1, 0.5],
                    [-3, -3]], float)
    gt = np.array([[14.0, 8, 16, 12], [22, 8, 12, 14]])
    yield (pred, cls, obj, grids, strides, gt, np.array([0, 1])), {}
    yield (pred, cls, obj, grids, strides, np.zeros((0, 4)), np.zeros(0, np.int64)), {}
    for i in range(4):
        r = _rng(i)
        grids, strides = _grids(64, 64)
        n = len(strides)
        centres = (grids + 0.5) * strides[:, None]
        pred = np.concatenate([centres + r.normal(0, 4, (n, 2)), r.uniform(6, 40, (n, 2))], 1)
        g = 1 + i
        gt = np.concatenate([r.uniform(10, 54, (g, 2)), r.uniform(4, 40, (g, 2))], 1)
        yield (pred, r.standard_normal((n, 3)), r.standard_normal(n), grids, strides, gt,
               r.integers(0, 3, g)), {"variant": "main" if i % 2 == 0 else "v0.3.0"}


@grader("simota_assign")
def _simota():
    def compare(got, args, kw):
        fg_want, gt_want = ref.simota_assign(*args, **kw)
        fg = np.asarray(getattr(got, "fg_mask", None))
        gi = np.asarray(getattr(got, "gt_index", None))
        if fg.shape != fg_want.shape:
            raise Mismatch(f"fg_mask has shape {fg.shape}, expected {fg_want.shape}")
        if not np.array_equal(fg.astype(bool), fg_want):
            raise Mismatch(f"foreground anchors {np.flatnonzero(fg).tolist()}, expected "
                           f"{np.flatnonzero(fg_want).tolist()}")
        if not np.array_equal(gi[fg_want], gt_want[fg_want]):
            raise Mismatch(f"matched GTs {gi[fg_want].tolist()}, expected {gt_want[fg_want].tolist()}")
        if int(getattr(got, "num_fg", -1)) != int(fg_want.sum()):
            raise Mismatch(f"num_fg is {getattr(got, 'num_fg', None)}, expected {int(fg_want.sum())}")

    return [compare_check("foreground anchors and matched GTs equal the reference", _simota_cases, compare)]


# ----------------------------------------------------------------------------- post-processing
def _nms_cases(with_classes=False):
    def cases():
        boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], float)
        scores = np.array([0.9, 0.8, 0.7, 0.6])
        extra = (np.array([0, 1, 0, 0]),) if with_classes else ()
        yield (boxes, scores, *extra, 0.5), {}
        for i in range(5):
            r = _rng(i)
            n = 5 + 8 * i
            extra = (r.integers(0, 3, n),) if with_classes else ()
            yield (random_boxes(r, n, 60), r.permutation(n) / n + 0.01, *extra, [0.3, 0.5, 0.7][i % 3]), {}

    return cases


@grader("nms")
def _nms():
    def compare(got, args, kw):
        got = np.asarray(got).astype(np.int64)
        want = ref.nms(*args)
        if not np.array_equal(got, want):
            raise Mismatch(f"kept {got.tolist()}, expected {want.tolist()} (indices, by descending score)")

    return [compare_check("kept indices equal the reference greedy NMS", _nms_cases(), compare)]


@grader("batched_nms")
def _batched_nms():
    def compare(got, args, kw):
        got = np.asarray(got).astype(np.int64)
        want = ref.batched_nms(*args)
        if not np.array_equal(got, want):
            raise Mismatch(f"kept {got.tolist()}, expected {want.tolist()} (boxes of different classes never "
                           "suppress each other)")

    return [compare_check("kept indices equal the reference class-aware NMS", _nms_cases(True), compare)]


@grader("soft_nms")
def _soft_nms():
    def cases():
        for i, method in enumerate(["gaussian", "linear", "hard", "gaussian", "linear"]):
            r = _rng(i)
            n = 4 + 6 * i
            yield (random_boxes(r, n, 50), r.permutation(n) / n + 0.05), {
                "method": method, "sigma": 0.5, "iou_threshold": 0.3, "score_threshold": 0.001}

    def compare(got, args, kw):
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Mismatch("soft_nms must return (kept indices, their decayed scores)")
        idx_want, sc_want = ref.soft_nms(*args, **kw)
        idx = np.asarray(got[0]).astype(np.int64)
        if not np.array_equal(idx, idx_want):
            raise Mismatch(f"kept {idx.tolist()}, expected {idx_want.tolist()} (in selection order)")
        assert_close(got[1], sc_want, "decayed scores", 1e-6, 1e-9)

    return [compare_check("kept indices and decayed scores equal the reference (Bodla et al.)", cases, compare)]


@grader("average_precision")
def _average_precision():
    def cases():
        yield (np.array([0.5, 1.0]), np.array([1.0, 0.5])), {}
        yield (np.array([0.0, 0.2, 0.2, 0.6]), np.array([0.0, 1.0, 0.5, 0.6])), {}
        for i in range(4):
            r = _rng(i)
            tp = r.random(20 + 10 * i) < 0.6
            n_gt = int(tp.sum()) + i
            rec = np.cumsum(tp) / max(n_gt, 1)
            prec = np.cumsum(tp) / np.arange(1, tp.size + 1)
            yield (rec, prec), {}

    def compare(got, args, kw):
        assert_close(float(got), ref.average_precision(*args), "AP", 1e-9, 1e-12)

    return [compare_check("101-point interpolated AP equals the reference", cases, compare)]


# ----------------------------------------------------------------------------- augmentation
@grader("hflip")
def _hflip():
    def cases():
        img = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)
        yield (img, np.array([[0.0, 0, 2, 1]])), {}
        for i in range(3):
            r = _rng(i)
            h, w = 20 + i, 31 + 2 * i
            img = r.integers(0, 255, (h, w, 3), dtype=np.uint8)
            b = random_boxes(r, 1 + i, 15)
            yield (img, b), {}

    def compare(got, args, kw):
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Mismatch("hflip must return (image, boxes)")
        img_want, boxes_want = ref.hflip(*args)
        if np.asarray(got[0]).shape != img_want.shape or not np.array_equal(np.asarray(got[0]), img_want):
            raise Mismatch("the flipped image is not the input reversed left-right")
        assert_close(got[1], boxes_want, "flipped boxes", 1e-6, 1e-9)

    return [compare_check("image reversed left-right and x1' = W - x2, x2' = W - x1", cases, compare)]
