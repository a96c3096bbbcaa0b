"""COCO bounding-box evaluation, written from the protocol of ``pycocotools.cocoeval.COCOeval``.

Protocol (bbox): IoU thresholds 0.50:0.05:0.95; 101 recall points; area ranges all / small (< 32^2) /
medium (32^2..96^2) / large (> 96^2) judged by the ground truth's ``area`` field (a detection's area is
w * h); at most 1 / 10 / 100 detections per image and category, highest scores first (stable sort).
Per image and category, detections are matched greedily in score order to the best-IoU ground truth still
free; a crowd annotation (``iscrowd`` = 1) may absorb any number of detections, its IoU is intersection /
detection area, and it is ignored like a box outside the area range: detections matched to it, and
unmatched detections outside the area range, count neither as true nor as false positives.
Precision is made monotone from the right and read at each recall point; AP averages the entries that are
not -1 (-1 marks a category / area range without ground truth).

Differences from pycocotools, all on input pycocotools mishandles: ground-truth annotations with id 0 are
matched normally (pycocotools treats their matches as unmatched); detections or annotations whose
``category_id`` is not in ``categories`` raise ``ValueError`` (pycocotools ignores them silently); an empty
detection list gives AP 0 (pycocotools fails). Like pycocotools, an annotation's ``ignore`` field is not
used (only ``iscrowd``); a missing ``iscrowd`` counts as 0.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

import numba
import numpy as np

from yolox_np.eval.ap import RECALL_THRESHOLDS, sample_precision_envelope

__all__ = [
    "coco_eval",
    "format_summary",
    "IOU_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "AREA_RANGES",
    "MAX_DETS",
    "SUMMARY_KEYS",
]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
AREA_RANGES = {"all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}
MAX_DETS = (1, 10, 100)
SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")

# (key, is AP, IoU threshold or None for the mean over all, area range, max detections)
_SUMMARY_SPECS = (
    ("AP", True, None, "all", 100),
    ("AP50", True, 0.5, "all", 100),
    ("AP75", True, 0.75, "all", 100),
    ("APs", True, None, "small", 100),
    ("APm", True, None, "medium", 100),
    ("APl", True, None, "large", 100),
    ("AR1", False, None, "all", 1),
    ("AR10", False, None, "all", 10),
    ("AR100", False, None, "all", 100),
    ("ARs", False, None, "small", 100),
    ("ARm", False, None, "medium", 100),
    ("ARl", False, None, "large", 100),
)


# ---------------------------------------------------------------------------------------------------
# reading and validating the inputs


def _load_json(source, what):
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{what} file not found: {path}")
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{what} file {path} is not valid JSON: {err}") from err
    return source


def _check_id(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, str)):
        raise ValueError(f"{where} must be an integer (or string) id, got {value!r}")
    return int(value) if isinstance(value, np.integer) else value


def _check_number(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite, got {value}")
    return value


_PLAIN_NUMBER_TYPES = {int, float, np.float64, np.float32, np.int64, np.int32}


def _check_bbox(bbox, where):
    if type(bbox) in (list, tuple) and len(bbox) == 4 and all(type(v) in _PLAIN_NUMBER_TYPES for v in bbox):
        x, y, w, h = (float(v) for v in bbox)  # the common case, checked without per-value messages
        if math.isfinite(x) and math.isfinite(y) and math.isfinite(w) and math.isfinite(h) and w >= 0 and h >= 0:
            return x, y, w, h
    if not isinstance(bbox, (list, tuple, np.ndarray)) or len(bbox) != 4:
        raise ValueError(f"{where}: bbox must be [x, y, w, h] (4 numbers), got {bbox!r}")
    x, y, w, h = (_check_number(v, f"{where}: bbox value") for v in bbox)
    if w < 0 or h < 0:
        raise ValueError(f"{where}: bbox {[x, y, w, h]} has a negative width or height")
    return x, y, w, h


def _require_keys(record, keys, where):
    if not isinstance(record, dict):
        raise ValueError(f"{where} must be a dict, got {type(record).__name__}")
    missing = [k for k in keys if k not in record]
    if missing:
        raise ValueError(f"{where} has no {', '.join(repr(k) for k in missing)} (keys: {sorted(record)})")


def _sorted_ids(ids, what):
    if len(set(ids)) != len(ids):
        seen = set()
        dup = next(i for i in ids if i in seen or seen.add(i))
        raise ValueError(f"{what} id {dup!r} appears more than once")
    try:
        return sorted(ids)
    except TypeError:
        raise ValueError(f"{what} ids must all be of one comparable type (all int or all str)") from None


def _parse_ground_truth(gt):
    data = _load_json(gt, "ground-truth")
    if not isinstance(data, dict):
        raise ValueError(f"ground truth must be a COCO instances dict, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"ground truth needs a list under {key!r}")
    image_ids = []
    for i, img in enumerate(data["images"]):
        _require_keys(img, ("id",), f"images[{i}]")
        image_ids.append(_check_id(img["id"], f"images[{i}]['id']"))
    category_ids = []
    for i, cat in enumerate(data["categories"]):
        _require_keys(cat, ("id",), f"categories[{i}]")
        category_ids.append(_check_id(cat["id"], f"categories[{i}]['id']"))
    image_ids = _sorted_ids(image_ids, "image")
    category_ids = _sorted_ids(category_ids, "category")
    known_images, known_cats = set(image_ids), set(category_ids)
    ann_ids = []
    n = len(data["annotations"])
    boxes = np.zeros((n, 4), dtype=np.float64)
    areas = np.zeros(n, dtype=np.float64)
    crowd = np.zeros(n, dtype=bool)
    groups = defaultdict(list)
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        _require_keys(ann, ("id", "image_id", "category_id", "bbox", "area"), where)
        ann_ids.append(_check_id(ann["id"], f"{where}['id']"))
        image_id = _check_id(ann["image_id"], f"{where}['image_id']")
        cat_id = _check_id(ann["category_id"], f"{where}['category_id']")
        if image_id not in known_images:
            raise ValueError(f"{where}: image_id {image_id!r} is not in 'images'")
        if cat_id not in known_cats:
            raise ValueError(f"{where}: category_id {cat_id!r} is not in 'categories'")
        boxes[i] = _check_bbox(ann["bbox"], where)
        areas[i] = _check_number(ann["area"], f"{where}['area']")
        if areas[i] < 0:
            raise ValueError(f"{where}: area {areas[i]} is negative")
        crowd[i] = bool(_check_number(ann.get("iscrowd", 0), f"{where}['iscrowd']"))
        groups[image_id, cat_id].append(i)
    _sorted_ids(ann_ids, "annotation")
    return image_ids, category_ids, boxes, areas, crowd, groups


def _parse_detections(detections, known_images, known_cats):
    data = _load_json(detections, "detections")
    if isinstance(data, dict) or not isinstance(data, (list, tuple)):
        raise ValueError(
            "detections must be a list of {image_id, category_id, bbox, score} records (COCO results format), "
            f"got {type(data).__name__}"
        )
    n = len(data)
    boxes = np.zeros((n, 4), dtype=np.float64)
    scores = np.zeros(n, dtype=np.float64)
    groups = defaultdict(list)
    for i, det in enumerate(data):
        where = f"detections[{i}]"
        _require_keys(det, ("image_id", "category_id", "bbox", "score"), where)
        image_id = _check_id(det["image_id"], f"{where}['image_id']")
        cat_id = _check_id(det["category_id"], f"{where}['category_id']")
        if image_id not in known_images:
            raise ValueError(f"{where}: image_id {image_id!r} is not an image of the ground truth")
        if cat_id not in known_cats:
            raise ValueError(
                f"{where}: category_id {cat_id!r} is not a category of the ground truth "
                "(map class indices to COCO category ids first)"
            )
        boxes[i] = _check_bbox(det["bbox"], where)
        scores[i] = _check_number(det["score"], f"{where}['score']")
        groups[image_id, cat_id].append(i)
    return boxes, scores, groups


# ---------------------------------------------------------------------------------------------------
# per image and category


@numba.njit(cache=True)
def _evaluate_pair(dt_boxes, gt_boxes, gt_areas, gt_crowd, thresholds, area_ranges):
    """One image and category: match detections to ground truths for every area range and IoU threshold.

    ``dt_boxes`` (D, 4) and ``gt_boxes`` (G, 4) are xywh, detections sorted by descending score (at most
    100). IoU is pycocotools' bbIou, same operations in the same order: for a crowd ground truth the union
    is the detection's area. Per area range the ground truths are ordered non-ignored first (stable); each
    detection, best score first, takes the free ground truth with the highest IoU >= the threshold (the
    later one on equal IoU); a crowd stays free; once a detection holds a regular match it stops at the
    first ignored ground truth. Returns ``matched``, ``dt_ignore`` (A, T, D) bool and the number of
    non-ignored ground truths per area range (A,).
    """
    num_d, num_g = dt_boxes.shape[0], gt_boxes.shape[0]
    num_a, num_t = area_ranges.shape[0], thresholds.shape[0]
    ious = np.zeros((num_d, num_g))
    for d in range(num_d):
        dx, dy, dw, dh = dt_boxes[d, 0], dt_boxes[d, 1], dt_boxes[d, 2], dt_boxes[d, 3]
        det_area = dw * dh
        for g in range(num_g):
            gx, gy, gw, gh = gt_boxes[g, 0], gt_boxes[g, 1], gt_boxes[g, 2], gt_boxes[g, 3]
            w = min(dw + dx, gw + gx) - max(dx, gx)
            if w <= 0:
                continue
            h = min(dh + dy, gh + gy) - max(dy, gy)
            if h <= 0:
                continue
            inter = w * h
            union = det_area if gt_crowd[g] else det_area + gw * gh - inter
            ious[d, g] = inter / union
    matched = np.zeros((num_a, num_t, num_d), dtype=np.bool_)
    dt_ignore = np.zeros((num_a, num_t, num_d), dtype=np.bool_)
    positives = np.zeros(num_a, dtype=np.int64)
    order = np.empty(num_g, dtype=np.int64)
    ignore = np.empty(num_g, dtype=np.bool_)
    taken = np.empty(num_g, dtype=np.bool_)
    for a in range(num_a):
        lo, hi = area_ranges[a, 0], area_ranges[a, 1]
        n = 0
        for first_pass in (True, False):
            for g in range(num_g):
                ignored = gt_crowd[g] or gt_areas[g] < lo or gt_areas[g] > hi
                if ignored != first_pass:
                    order[n] = g
                    ignore[n] = ignored
                    n += 1
        for g in range(num_g):
            if not ignore[g]:
                positives[a] += 1
        for t in range(num_t):
            taken[:] = False
            for d in range(num_d):
                best = min(thresholds[t], 1 - 1e-10)
                m = -1
                for k in range(num_g):
                    if taken[k] and not gt_crowd[order[k]]:
                        continue
                    if m > -1 and not ignore[m] and ignore[k]:
                        break
                    if ious[d, order[k]] < best:
                        continue
                    best = ious[d, order[k]]
                    m = k
                if m > -1:
                    matched[a, t, d] = True
                    taken[m] = True
                    dt_ignore[a, t, d] = ignore[m]
                else:
                    det_area = dt_boxes[d, 2] * dt_boxes[d, 3]
                    dt_ignore[a, t, d] = det_area < lo or det_area > hi
    return matched, dt_ignore, positives


# ---------------------------------------------------------------------------------------------------
# accumulation and summary


def _accumulate(entries, num_categories):
    """entries[k]: per-image (scores, matched, dt_ignore, positives) in image order.

    Returns precision (T, R, K, A, M), recall (T, K, A, M) and scores (T, R, K, A, M), -1 where a category
    has no ground truth in an area range.
    """
    num_t, num_r, num_a, num_m = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(AREA_RANGES), len(MAX_DETS)
    precision = -np.ones((num_t, num_r, num_categories, num_a, num_m))
    recall = -np.ones((num_t, num_categories, num_a, num_m))
    scores_at = -np.ones((num_t, num_r, num_categories, num_a, num_m))
    for k in range(num_categories):
        per_image = entries[k]
        if not per_image:
            continue
        scores = np.concatenate([e[0] for e in per_image])
        rank = np.concatenate([np.arange(len(e[0])) for e in per_image])  # rank inside its image
        matched = np.concatenate([e[1] for e in per_image], axis=2)  # (A, T, D)
        dt_ignore = np.concatenate([e[2] for e in per_image], axis=2)
        positives = np.sum([e[3] for e in per_image], axis=0)  # (A,)
        for m, max_det in enumerate(MAX_DETS):
            sel = np.flatnonzero(rank < max_det)
            order = sel[np.argsort(-scores[sel], kind="mergesort")]
            sorted_scores = scores[order]
            n = len(order)
            for a in range(num_a):
                if positives[a] == 0:
                    continue
                hit, skip = matched[a][:, order], dt_ignore[a][:, order]
                tp_sum = np.cumsum(hit & ~skip, axis=1).astype(np.float64)
                fp_sum = np.cumsum(~hit & ~skip, axis=1).astype(np.float64)
                rc = tp_sum / positives[a]
                pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
                recall[:, k, a, m] = rc[:, -1] if n else 0.0
                for t in range(num_t):
                    q, pos = sample_precision_envelope(rc[t], pr[t], RECALL_THRESHOLDS)
                    precision[t, :, k, a, m] = q
                    inside = pos < n
                    scores_at[t, inside, k, a, m] = sorted_scores[pos[inside]]
                    scores_at[t, ~inside, k, a, m] = 0.0
    return precision, recall, scores_at


def _mean_valid(values):
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def _summaries(precision, recall):
    areas, stats = list(AREA_RANGES), {}
    for key, is_ap, iou, area, max_det in _SUMMARY_SPECS:
        a, m = areas.index(area), MAX_DETS.index(max_det)
        if is_ap:
            s = precision[:, :, :, a, m]
            if iou is not None:
                s = s[np.flatnonzero(np.isclose(IOU_THRESHOLDS, iou))]
        else:
            s = recall[:, :, a, m]
        stats[key] = _mean_valid(s)
    return stats


def coco_eval(gt, detections):
    """COCO bbox evaluation of ``detections`` against ``gt`` (the 12 COCOeval summary numbers and more).

    ``gt``: COCO instances JSON path or dict (``images``, ``annotations`` with ``id``, ``image_id``,
    ``category_id``, ``bbox`` [x, y, w, h], ``area``, optional ``iscrowd``; ``categories``).
    ``detections``: COCO results JSON path or list of ``{image_id, category_id, bbox: [x, y, w, h], score}``.
    Every image of ``gt`` is evaluated, including images without annotations.

    Returns a dict: the floats ``AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl`` (fractions,
    -1 where nothing can be measured), ``per_class`` {category_id: AP@[.5:.95] or -1 without ground truth},
    ``precision`` (T=10, R=101, K, A=4, M=3) and ``scores`` (same shape) and ``recall`` (T, K, A, M) laid out
    as COCOeval's ``eval`` arrays (-1 = no ground truth), and the axes: ``iou_thresholds``,
    ``recall_thresholds``, ``category_ids``, ``area_ranges`` (names), ``max_dets``, ``image_ids``.
    Bad input (missing keys, a bbox not of 4 numbers, negative w/h, an unknown image or category id)
    raises ``ValueError`` naming the record.
    """
    image_ids, category_ids, gt_boxes, gt_areas, gt_crowd, gt_groups = _parse_ground_truth(gt)
    dt_boxes, dt_scores, dt_groups = _parse_detections(detections, set(image_ids), set(category_ids))
    image_pos = {img: i for i, img in enumerate(image_ids)}
    cat_pos = {cat: k for k, cat in enumerate(category_ids)}
    # detections of a group come out ordered by score (ties in input order), as COCOeval's mergesort does
    dt_rank = np.empty(len(dt_scores), dtype=np.int64)
    dt_rank[np.argsort(-dt_scores, kind="mergesort")] = np.arange(len(dt_scores))
    area_ranges = np.array(list(AREA_RANGES.values()), dtype=np.float64)
    entries = [[] for _ in category_ids]
    no_index = np.zeros(0, dtype=np.int64)
    for image_id, cat_id in sorted(set(gt_groups) | set(dt_groups), key=lambda p: image_pos[p[0]]):
        g = np.asarray(gt_groups.get((image_id, cat_id), no_index), dtype=np.int64)
        d = np.asarray(dt_groups.get((image_id, cat_id), no_index), dtype=np.int64)
        d = d[np.argsort(dt_rank[d])][: MAX_DETS[-1]]
        matched, dt_ignore, positives = _evaluate_pair(
            dt_boxes[d], gt_boxes[g], gt_areas[g], gt_crowd[g], IOU_THRESHOLDS, area_ranges
        )
        entries[cat_pos[cat_id]].append((dt_scores[d], matched, dt_ignore, positives))
    precision, recall, scores = _accumulate(entries, len(category_ids))
    result = _summaries(precision, recall)
    result["per_class"] = {cat: _mean_valid(precision[:, :, k, 0, -1]) for k, cat in enumerate(category_ids)}
    result.update(
        precision=precision,
        recall=recall,
        scores=scores,
        iou_thresholds=IOU_THRESHOLDS.copy(),
        recall_thresholds=RECALL_THRESHOLDS.copy(),
        category_ids=list(category_ids),
        area_ranges=tuple(AREA_RANGES),
        max_dets=MAX_DETS,
        image_ids=list(image_ids),
    )
    return result


def format_summary(result):
    """The 12 summary numbers of a ``coco_eval`` result as a 12-line table (COCO's usual layout)."""
    lines = []
    for key, is_ap, iou, area, max_det in _SUMMARY_SPECS:
        name = "Average Precision  (AP)" if is_ap else "Average Recall     (AR)"
        iou_text = "0.50:0.95" if iou is None else f"{iou:0.2f}"
        lines.append(f" {name} @[ IoU={iou_text:<9} | area={area:>6s} | maxDets={max_det:>3d} ] = {result[key]:0.3f}")
    return "\n".join(lines)
