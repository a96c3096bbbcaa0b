"""From decoded predictions to detections: score filtering, hard NMS and Soft-NMS.

Boxes are (x1, y1, x2, y2) pixels with continuous areas (no "+1"), as in ``yolox_np.boxes``.

``postprocess`` reproduces the official ``yolox.utils.boxes.postprocess``: score = obj x max class
probability, keep score >= ``conf_thre``, greedy hard NMS (a box is suppressed when its IoU with a kept box is
> ``nms_thre``), class-aware unless ``class_agnostic``, output sorted by descending score, no cap on the count.
IoU is computed in the boxes' own float dtype and compared with the threshold in float64, as torchvision does.

``nms``, ``batched_nms``, ``soft_nms`` and ``article_soft_nms`` are exercises written for clarity;
``postprocess`` uses a fast kernel instead (a Numba loop, or a vectorised NumPy loop when
``NUMBA_DISABLE_JIT=1``) that the tests hold equal to them.
"""

from __future__ import annotations

import numba
import numpy as np

from yolox_np.boxes import box_iou, cxcywh_to_xyxy

__all__ = [
    "postprocess",
    "nms",
    "batched_nms",
    "soft_nms",
    "article_soft_nms",
    "SOFT_NMS_METHODS",
]

SOFT_NMS_METHODS = ("linear", "gaussian", "hard")


# ---------------------------------------------------------------------------------------------------
# validation


def _as_float_array(x, name):
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _check_boxes_scores(boxes, scores):
    """Validate (N, 4) xyxy boxes and (N,) scores; returns them as float arrays."""
    boxes = _as_float_array(boxes, "boxes")
    scores = _as_float_array(scores, "scores")
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got shape {boxes.shape}")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"scores must have shape (N,) = ({boxes.shape[0]},), got shape {scores.shape}")
    bad = ~np.isfinite(boxes).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"boxes: box {i} has a non-finite coordinate {boxes[i].tolist()}")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"boxes: box {i} = {boxes[i].tolist()} has x2 < x1 or y2 < y1; boxes must be (x1, y1, x2, y2)"
        )
    bad = ~np.isfinite(scores)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"scores: score {i} is not finite ({scores[i]})")
    return boxes, scores


def _check_fraction(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def _check_non_negative(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from None
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


# ---------------------------------------------------------------------------------------------------
# fast greedy NMS (used by the package)


@numba.njit(cache=True)
def _greedy_nms_kernel(boxes, order, iou_threshold):
    """Greedy NMS over ``order`` (indices by descending score) -> kept indices, in that order."""
    n = order.shape[0]
    # coordinates gathered in score order, so the inner loop reads contiguous memory
    x1 = np.empty(n, dtype=boxes.dtype)
    y1 = np.empty(n, dtype=boxes.dtype)
    x2 = np.empty(n, dtype=boxes.dtype)
    y2 = np.empty(n, dtype=boxes.dtype)
    for a in range(n):
        x1[a], y1[a], x2[a], y2[a] = boxes[order[a], 0], boxes[order[a], 1], boxes[order[a], 2], boxes[order[a], 3]
    areas = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(n, dtype=np.bool_)
    keep = np.empty(n, dtype=np.int64)
    count = 0
    for a in range(n):
        if suppressed[a]:
            continue
        keep[count] = order[a]
        count += 1
        for b in range(a + 1, n):
            if suppressed[b]:
                continue
            w = min(x2[a], x2[b]) - max(x1[a], x1[b])
            if w <= 0:
                continue
            h = min(y2[a], y2[b]) - max(y1[a], y1[b])
            if h <= 0:
                continue
            inter = w * h
            union = areas[a] + areas[b] - inter
            # float32 IoU compared in float64, like torchvision's kernel
            if union > 0 and np.float64(inter / union) > iou_threshold:
                suppressed[b] = True
    return keep[:count]


def _greedy_nms_numpy(boxes, order, iou_threshold):
    """Same result as ``_greedy_nms_kernel`` with one vectorised step per kept box."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, 0).astype(boxes.dtype)
        order = rest[~(iou.astype(np.float64) > iou_threshold)]
    return np.asarray(keep, dtype=np.int64)


def _nms_fast(boxes, scores, iou_threshold):
    """Validated inputs -> kept indices by descending score (ties: lower index first)."""
    order = np.argsort(-scores, kind="stable")
    boxes = np.ascontiguousarray(boxes)
    if numba.config.DISABLE_JIT:
        return _greedy_nms_numpy(boxes, order, np.float64(iou_threshold))
    return _greedy_nms_kernel(boxes, order, np.float64(iou_threshold))


# ---------------------------------------------------------------------------------------------------
# public NMS


def nms(boxes, scores, iou_threshold):
    """Greedy hard NMS: (N, 4) xyxy boxes, (N,) scores -> (K,) int64 kept indices by descending score.

    The highest-scoring box is kept and every box whose IoU with it is > ``iou_threshold`` is removed;
    repeat on what remains. Equal scores are taken in index order.
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    iou_threshold = _check_fraction(iou_threshold, "iou_threshold")
    ### BEGIN SOLUTION
    # HINT: sort by -score (stable); repeatedly keep the first, drop the rest with box_iou > iou_threshold
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        iou = box_iou(boxes[best][None, :], boxes[rest])[0]
        order = rest[~(iou.astype(np.float64) > np.float64(iou_threshold))]
    return np.asarray(keep, dtype=np.int64)
    ### END SOLUTION


def _check_classes(classes, n):
    classes = np.asarray(classes)
    if classes.shape != (n,):
        raise ValueError(f"classes must have shape (N,) = ({n},), got shape {classes.shape}")
    if classes.dtype == object or not np.issubdtype(classes.dtype, np.number):
        raise ValueError(f"classes must be a numeric array of class ids, got dtype {classes.dtype}")
    if np.issubdtype(classes.dtype, np.floating):
        bad = ~np.isfinite(classes) | (classes != np.round(classes))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"classes: entry {i} is not an integer class id ({classes[i]})")
    return classes.astype(np.int64)


def batched_nms(boxes, scores, classes, iou_threshold):
    """Class-aware hard NMS: boxes of different classes never suppress each other.

    (N, 4) xyxy boxes, (N,) scores, (N,) integer class ids -> (K,) int64 kept indices sorted by descending
    score (ties: lower index first), like ``torchvision.ops.batched_nms``.
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    classes = _check_classes(classes, boxes.shape[0])
    iou_threshold = _check_fraction(iou_threshold, "iou_threshold")
    ### BEGIN SOLUTION
    # HINT: run nms per class (np.unique(classes)), map kept positions back, sort all kept by -score (stable)
    kept = [np.zeros(0, dtype=np.int64)]
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        kept.append(members[nms(boxes[members], scores[members], iou_threshold)])
    kept = np.sort(np.concatenate(kept))
    return kept[np.argsort(-scores[kept], kind="stable")]
    ### END SOLUTION


def _batched_nms_fast(boxes, scores, classes, iou_threshold):
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    kept = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        kept.append(members[_nms_fast(boxes[members], scores[members], iou_threshold)])
    kept = np.sort(np.concatenate(kept))
    return kept[np.argsort(-scores[kept], kind="stable")]


# ---------------------------------------------------------------------------------------------------
# Soft-NMS


def soft_nms(boxes, scores, method="gaussian", sigma=0.5, iou_threshold=0.3, score_threshold=0.001):
    """Soft-NMS (Bodla et al., ICCV 2017) on (N, 4) xyxy boxes and (N,) scores.

    Greedy loop: take the box M with the highest current score, then rescale every remaining score by
    f(IoU(M, b)) and drop boxes whose score fell below ``score_threshold``:

    * ``"linear"``: f = 1 - IoU where IoU > ``iou_threshold``, else 1;
    * ``"gaussian"``: f = exp(-IoU**2 / ``sigma``) for every remaining box (``iou_threshold`` unused);
    * ``"hard"``: f = 0 where IoU > ``iou_threshold``, else 1 (plain NMS when ``score_threshold`` > 0).

    Boxes whose input score is below ``score_threshold`` are never selected. Areas are continuous (no "+1",
    unlike the authors' code). Ties go to the lower index.
    Returns ``(keep, kept_scores)``: (K,) int64 indices into the original arrays in selection order and
    (K,) float64 decayed scores at selection time (non-increasing).
    """
    boxes, scores = _check_boxes_scores(boxes, scores)
    if method not in SOFT_NMS_METHODS:
        raise ValueError(f"method must be one of {SOFT_NMS_METHODS}, got {method!r}")
    sigma = _check_non_negative(sigma, "sigma")
    if sigma == 0:
        raise ValueError("sigma must be > 0")
    iou_threshold = _check_fraction(iou_threshold, "iou_threshold")
    score_threshold = _check_non_negative(score_threshold, "score_threshold")
    boxes = boxes.astype(np.float64)
    ### BEGIN SOLUTION
    # HINT: each round keep the argmax, multiply the others' scores by f(box_iou), drop those < score_threshold
    current = scores.astype(np.float64)
    remaining = np.flatnonzero(current >= score_threshold)
    keep, kept_scores = [], []
    while remaining.size > 0:
        best = remaining[np.argmax(current[remaining])]
        keep.append(best)
        kept_scores.append(current[best])
        remaining = remaining[remaining != best]
        if remaining.size == 0:
            break
        iou = box_iou(boxes[best][None, :], boxes[remaining])[0]
        if method == "linear":
            decay = np.where(iou > iou_threshold, 1.0 - iou, 1.0)
        elif method == "gaussian":
            decay = np.exp(-(iou**2) / sigma)
        else:
            decay = np.where(iou > iou_threshold, 0.0, 1.0)
        current[remaining] *= decay
        remaining = remaining[current[remaining] >= score_threshold]
    return np.asarray(keep, dtype=np.int64), np.asarray(kept_scores, dtype=np.float64)
    ### END SOLUTION


def article_soft_nms(boxes_xywh, scores, iou_threshold, score_threshold):
    """The seed article's Soft-NMS variant (not Bodla's): (N, 4) boxes, (N,) scores -> (keep, kept_scores).

    Boxes are (x, y, w, h) with (x, y) the box **centre** (the article decodes its (l_x, l_y) from the cell
    centre, so they are read as the centre here; see the reference, section 10 #5). Each round: take the
    highest-scoring box M and remove it; mu = mean of the remaining scores; for the remaining boxes with
    IoU(M, b) > ``iou_threshold`` only, s <- s * exp(-IoU**2 / mu); drop boxes with s < ``score_threshold``.
    Differences from Bodla's Gaussian: sigma is the (changing) mean score, and only boxes above the IoU
    threshold decay. Classes are ignored (the article runs it class-agnostic on objectness scores).
    Guards the article's pseudocode leaves open: the loop stops when no box remains (no mean of an empty
    list); a mean of 0 decays the overlapping boxes to 0 (the limit of the formula); boxes whose input score
    is below ``score_threshold`` are dropped before the first round (the article prunes at 0.5 beforehand).
    Returns (K,) int64 indices into the inputs in selection order and their (K,) float64 scores then.
    """
    xyxy = cxcywh_to_xyxy(_as_float_array(boxes_xywh, "boxes_xywh"))
    xyxy, scores = _check_boxes_scores(xyxy, scores)
    iou_threshold = _check_fraction(iou_threshold, "iou_threshold")
    score_threshold = _check_non_negative(score_threshold, "score_threshold")
    xyxy = xyxy.astype(np.float64)
    ### BEGIN SOLUTION
    # HINT: as soft_nms, but mu = mean of the remaining scores and only IoU > iou_threshold decays: exp(-IoU**2/mu)
    current = scores.astype(np.float64)
    remaining = np.flatnonzero(current >= score_threshold)
    keep, kept_scores = [], []
    while remaining.size > 0:
        best = remaining[np.argmax(current[remaining])]
        keep.append(best)
        kept_scores.append(current[best])
        remaining = remaining[remaining != best]
        if remaining.size == 0:
            break
        mean_score = current[remaining].mean()
        iou = box_iou(xyxy[best][None, :], xyxy[remaining])[0]
        hit = remaining[iou > iou_threshold]
        if mean_score > 0:
            current[hit] *= np.exp(-(iou[iou > iou_threshold] ** 2) / mean_score)
        else:
            current[hit] = 0.0
        remaining = remaining[current[remaining] >= score_threshold]
    return np.asarray(keep, dtype=np.int64), np.asarray(kept_scores, dtype=np.float64)
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------------
# official post-processing


def _check_decoded(decoded, num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes <= 0:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    decoded = _as_float_array(decoded, "decoded")
    if decoded.ndim != 3 or decoded.shape[2] != 5 + num_classes:
        raise ValueError(
            f"decoded must have shape (B, A, 5 + num_classes) = (B, A, {5 + num_classes}), got {decoded.shape}"
        )
    bad = ~np.isfinite(decoded)
    if bad.any():
        b, a, c = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"decoded: non-finite value at image {b}, anchor {a}, column {c} ({decoded[b, a, c]})")
    bad = decoded[..., 2:4] < 0
    if bad.any():
        b, a, c = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(
            f"decoded: negative {'width' if c == 0 else 'height'} at image {b}, anchor {a} "
            f"({decoded[b, a, 2 + c]}); decoded boxes are (cx, cy, w, h) with w, h >= 0"
        )
    return decoded


def postprocess(decoded, num_classes, conf_thre=0.01, nms_thre=0.65, class_agnostic=False, return_indices=False):
    """Official YOLOX post-processing of decoded predictions (B, A, 5 + C).

    ``decoded`` holds (cx, cy, w, h) in input pixels, then the sigmoid'd objectness and C class
    probabilities. Per image: class = argmax, cls_prob = max class probability, score = obj * cls_prob;
    keep score >= ``conf_thre``; hard NMS at ``nms_thre`` (class-aware unless ``class_agnostic``).
    Returns a list of B float32 arrays (N_b, 7) ``[x1, y1, x2, y2, obj, cls_prob, class]`` sorted by
    descending score; an image without detections gets a (0, 7) array (the official code returns None).
    With ``return_indices=True`` also returns, per image, the (N_b,) int64 anchor row of each detection.
    """
    decoded = _check_decoded(decoded, num_classes)
    conf_thre = _check_fraction(conf_thre, "conf_thre")
    nms_thre = _check_fraction(nms_thre, "nms_thre")
    outputs, indices = [], []
    for pred in decoded:
        half_w, half_h = pred[:, 2] / 2, pred[:, 3] / 2
        corners = np.stack([pred[:, 0] - half_w, pred[:, 1] - half_h, pred[:, 0] + half_w, pred[:, 1] + half_h], 1)
        cls_probs = pred[:, 5 : 5 + num_classes]
        class_pred = np.argmax(cls_probs, axis=1)
        class_conf = np.take_along_axis(cls_probs, class_pred[:, None], axis=1)[:, 0]
        score = pred[:, 4] * class_conf
        # a Python float threshold is cast to the scores' dtype, as a PyTorch scalar comparison does
        rows = np.flatnonzero(score >= conf_thre)
        if class_agnostic:
            keep = _nms_fast(corners[rows], score[rows], nms_thre) if rows.size else np.zeros(0, np.int64)
        else:
            keep = _batched_nms_fast(corners[rows], score[rows], class_pred[rows], nms_thre)
        rows = rows[keep]
        det = np.empty((rows.size, 7), dtype=np.float32)
        det[:, :4] = corners[rows]
        det[:, 4] = pred[rows, 4]
        det[:, 5] = class_conf[rows]
        det[:, 6] = class_pred[rows]
        outputs.append(det)
        indices.append(rows.astype(np.int64))
    return (outputs, indices) if return_indices else outputs
