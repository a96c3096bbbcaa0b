"""SimOTA label assignment for one image (official YOLOX, current ``main`` or the v0.3.0 release).

Steps (see ``simota_assign``): geometry test -> candidates -> IoU and class cost -> dynamic k -> the k
cheapest candidates per GT -> conflicts resolved by the cheapest GT. The assignment is discrete and
carries no gradient.
"""

from dataclasses import dataclass

import numpy as np

from .boxes import _check_finite, _check_grids_strides, _check_sized, box_iou, cell_centers, cxcywh_to_xyxy

__all__ = ["Assignment", "dynamic_k", "simota_assign", "geometry_constraint", "class_cost", "VARIANTS"]

VARIANTS = ("main", "v0.3.0")
IOU_COST_WEIGHT = 3.0
LOG_CLAMP = -100.0  # torch.nn.functional.binary_cross_entropy clamps each log at -100


@dataclass
class Assignment:
    """Result of SimOTA for one image with A anchors, G ground truths and K candidates.

    fg_mask (A,) bool; gt_index (A,) int64, matched GT or -1; iou (A,) IoU of each fg anchor's
    predicted box with its GT (0 elsewhere); num_fg int.
    Intermediates: candidate_mask (A,) bool; candidate_index (K,) int64 anchor index of each candidate;
    geometry_mask (G, K) bool, pairs that pass the geometry test (no penalty); iou_matrix (G, K);
    cls_cost (G, K); cost (G, K) = cls_cost + 3 * (-ln(IoU + 1e-8)) + penalty; dynamic_k (G,) int64;
    initial_matching (G, K) bool, the k cheapest per GT before conflicts; matching (G, K) bool, final.
    """

    fg_mask: np.ndarray
    gt_index: np.ndarray
    iou: np.ndarray
    num_fg: int
    candidate_mask: np.ndarray
    candidate_index: np.ndarray
    geometry_mask: np.ndarray
    iou_matrix: np.ndarray
    cls_cost: np.ndarray
    cost: np.ndarray
    dynamic_k: np.ndarray
    initial_matching: np.ndarray
    matching: np.ndarray


def dynamic_k(iou_matrix, n_candidate_k=10):
    """Number of positives per GT: ``max(1, int(sum of the top-min(n_candidate_k, K) IoUs))``.

    iou_matrix (G, K) IoUs between every GT and every candidate -> (G,) int64.
    """
    iou_matrix = np.asarray(iou_matrix, dtype=np.float64)
    if iou_matrix.ndim != 2:
        raise ValueError(f"iou_matrix must have shape (G, K), got shape {iou_matrix.shape}")
    _check_finite(iou_matrix, "iou_matrix")
    if isinstance(n_candidate_k, bool) or not isinstance(n_candidate_k, (int, np.integer)) or n_candidate_k < 1:
        raise ValueError(f"n_candidate_k must be a positive integer, got {n_candidate_k!r}")
    ### BEGIN SOLUTION
    # HINT: q = min(n_candidate_k, K); sort each row descending, sum its first q values, floor, at least 1.
    q = min(int(n_candidate_k), iou_matrix.shape[1])
    top = -np.sort(-iou_matrix, axis=1)[:, :q]
    return np.maximum(np.floor(top.sum(axis=1)).astype(np.int64), 1)
    ### END SOLUTION


def geometry_constraint(anchor_centers, strides, gt_boxes, variant="main"):
    """Geometry test of every anchor against every GT.

    anchor_centers (A, 2) cell centres in pixels, strides (A,), gt_boxes (G, 4) (cx, cy, w, h).
    Returns ``candidate_mask`` (A,) and ``pair_ok`` (G, A) bool.
    main: a pair passes when the anchor centre lies strictly within 1.5 strides of the GT centre in both
    axes; candidates are anchors passing for any GT.
    v0.3.0: ``in_box`` = centre strictly inside the GT box, ``in_ctr`` = strictly within 2.5 strides of the
    GT centre; candidates = any ``in_box`` OR any ``in_ctr``; a pair passes when both hold.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    ax = anchor_centers[None, :, 0]
    ay = anchor_centers[None, :, 1]
    s = np.asarray(strides, dtype=np.float64)[None, :]
    cx, cy = gt_boxes[:, 0:1], gt_boxes[:, 1:2]

    def strictly_within(radius_x, radius_y):
        # all four distances to the region's edges positive, as the official code tests it
        return (
            (ax - (cx - radius_x) > 0)
            & ((cx + radius_x) - ax > 0)
            & (ay - (cy - radius_y) > 0)
            & ((cy + radius_y) - ay > 0)
        )

    if variant == "main":
        in_ctr = strictly_within(1.5 * s, 1.5 * s)
        return in_ctr.any(axis=0), in_ctr
    in_box = strictly_within(gt_boxes[:, 2:3] / 2, gt_boxes[:, 3:4] / 2)
    in_ctr = strictly_within(2.5 * s, 2.5 * s)
    return in_box.any(axis=0) | in_ctr.any(axis=0), in_box & in_ctr


def _log_sigmoid(z):
    return -np.logaddexp(0.0, -z)


def class_cost(cls_logits, obj_logits, gt_classes):
    """Pairwise class cost (G, K): ``sum_c BCE(sqrt(sigmoid(cls) * sigmoid(obj)), onehot(gt_class))``.

    cls_logits (K, C), obj_logits (K,), gt_classes (G,) int. Each log is clamped at -100 as in PyTorch's
    ``binary_cross_entropy``. Uses ``BCE(p, onehot(c)) = -ln p_c - sum_{c' != c} ln(1 - p_c')`` so that no
    (G, K, C) array is built.
    """
    cls_logits = np.asarray(cls_logits, dtype=np.float64)
    obj_logits = np.asarray(obj_logits, dtype=np.float64)
    log_p = 0.5 * (_log_sigmoid(cls_logits) + _log_sigmoid(obj_logits)[:, None])
    log_1mp = np.maximum(np.log1p(-np.exp(log_p)), LOG_CLAMP)
    log_p = np.maximum(log_p, LOG_CLAMP)
    all_negative = -log_1mp.sum(axis=1)  # (K,) cost if every class were a negative
    gt_classes = np.asarray(gt_classes, dtype=np.int64)
    return (all_negative[:, None] + log_1mp[:, gt_classes] - log_p[:, gt_classes]).T


def _check_assign_inputs(pred_boxes, cls_logits, obj_logits, grids, strides, gt_boxes, gt_classes, variant):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    pred_boxes = _check_sized(pred_boxes, "pred_boxes", "cxcywh")
    if pred_boxes.ndim != 2:
        raise ValueError(f"pred_boxes must have shape (A, 4), got shape {pred_boxes.shape}")
    num_anchors = pred_boxes.shape[0]
    cls_logits = np.asarray(cls_logits, dtype=np.float64)
    if cls_logits.ndim != 2 or cls_logits.shape[0] != num_anchors or cls_logits.shape[1] < 1:
        raise ValueError(f"cls_logits must have shape (A, C) = ({num_anchors}, C >= 1), got {cls_logits.shape}")
    _check_finite(cls_logits, "cls_logits")
    obj_logits = np.asarray(obj_logits, dtype=np.float64)
    if obj_logits.shape != (num_anchors,):
        raise ValueError(f"obj_logits must have shape (A,) = ({num_anchors},), got {obj_logits.shape}")
    _check_finite(obj_logits, "obj_logits")
    grids, strides = _check_grids_strides(grids, strides, num_anchors=num_anchors)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64)
    if gt_boxes.size == 0:
        gt_boxes = gt_boxes.reshape(0, 4)
    gt_boxes = _check_sized(gt_boxes, "gt_boxes", "cxcywh")
    if gt_boxes.ndim != 2:
        raise ValueError(f"gt_boxes must have shape (G, 4), got shape {gt_boxes.shape}")
    gt_classes = np.asarray(gt_classes)
    if gt_classes.size == 0:
        gt_classes = gt_classes.reshape(0)
    if gt_classes.shape != (gt_boxes.shape[0],):
        raise ValueError(f"gt_classes must have shape (G,) = ({gt_boxes.shape[0]},), got {gt_classes.shape}")
    if gt_classes.size:
        as_float = gt_classes.astype(np.float64)
        _check_finite(as_float, "gt_classes")
        bad = (as_float != np.round(as_float)) | (as_float < 0) | (as_float >= cls_logits.shape[1])
        if bad.any():
            g = np.flatnonzero(bad)[0]
            raise ValueError(
                f"gt_classes[{g}] = {gt_classes[g]} is not a class index in [0, {cls_logits.shape[1]})"
            )
    return (
        pred_boxes.astype(np.float64),
        cls_logits,
        obj_logits,
        grids,
        strides.astype(np.float64),
        gt_boxes,
        gt_classes.astype(np.int64),
    )


def simota_assign(pred_boxes, cls_logits, obj_logits, grids, strides, gt_boxes, gt_classes, variant="main"):
    """SimOTA for one image; returns an ``Assignment``.

    pred_boxes (A, 4) decoded (cx, cy, w, h) pixels; cls_logits (A, C); obj_logits (A,); grids (A, 2)
    integer cells (x, y); strides (A,); gt_boxes (G, 4) (cx, cy, w, h); gt_classes (G,) int (G may be 0).
    variant "main" (current official code) or "v0.3.0" (released weights), see ``geometry_constraint``;
    pairs failing the geometry test get a cost penalty of 1e6 (main) or 1e5 (v0.3.0), not an exclusion.
    Computed in float64. As in the official code, exact cost ties at the k-th place are resolved in no
    guaranteed order, and a doubly claimed anchor goes to the lowest GT index among equal costs.
    """
    pred_boxes, cls_logits, obj_logits, grids, strides, gt_boxes, gt_classes = _check_assign_inputs(
        pred_boxes, cls_logits, obj_logits, grids, strides, gt_boxes, gt_classes, variant
    )
    ### BEGIN SOLUTION
    # HINT: geometry_constraint -> candidates; box_iou on xyxy boxes; class_cost; cost with the penalty;
    # dynamic_k; k cheapest per GT; an anchor claimed twice goes to the GT with the lowest cost.
    num_anchors, num_gt = pred_boxes.shape[0], gt_boxes.shape[0]
    candidate_mask, pair_ok = geometry_constraint(cell_centers(grids, strides), strides, gt_boxes, variant)
    candidate_index = np.flatnonzero(candidate_mask)
    num_cand = candidate_index.size
    geometry_mask = pair_ok[:, candidate_index]

    iou_matrix = box_iou(cxcywh_to_xyxy(gt_boxes), cxcywh_to_xyxy(pred_boxes[candidate_index]))
    cls_cost = class_cost(cls_logits[candidate_index], obj_logits[candidate_index], gt_classes)
    penalty = 1e6 if variant == "main" else 100000.0
    cost = cls_cost + IOU_COST_WEIGHT * -np.log(iou_matrix + 1e-8) + penalty * ~geometry_mask

    ks = dynamic_k(iou_matrix, 10)
    initial = np.zeros((num_gt, num_cand), dtype=bool)
    if num_gt and num_cand:
        k_max = int(min(ks.max(), num_cand))
        cand_pos = np.arange(num_cand)
        # the k_max cheapest per GT (argpartition), then ordered by (cost, candidate position)
        if k_max < num_cand:
            nearest = np.argpartition(cost, k_max - 1, axis=1)[:, :k_max]
        else:
            nearest = np.broadcast_to(cand_pos, (num_gt, num_cand))
        near_cost = np.take_along_axis(cost, nearest, axis=1)
        order = np.lexsort((nearest, near_cost), axis=1)
        cheapest = np.take_along_axis(nearest, order, axis=1)
        rank_ok = np.arange(k_max)[None, :] < ks[:, None]
        rows = np.repeat(np.arange(num_gt), k_max).reshape(num_gt, k_max)
        initial[rows[rank_ok], cheapest[rank_ok]] = True

    matching = initial.copy()
    claimed_twice = matching.sum(axis=0) > 1
    if claimed_twice.any():
        best_gt = np.argmin(cost[:, claimed_twice], axis=0)
        matching[:, claimed_twice] = False
        matching[best_gt, np.flatnonzero(claimed_twice)] = True

    is_fg = matching.any(axis=0)
    matched_gt = np.argmax(matching, axis=0) if num_gt else np.zeros(num_cand, dtype=np.int64)
    fg_mask = np.zeros(num_anchors, dtype=bool)
    fg_mask[candidate_index[is_fg]] = True
    gt_index = np.full(num_anchors, -1, dtype=np.int64)
    gt_index[candidate_index[is_fg]] = matched_gt[is_fg]
    iou = np.zeros(num_anchors, dtype=np.float64)
    iou[candidate_index[is_fg]] = iou_matrix[matched_gt[is_fg], np.flatnonzero(is_fg)]
    return Assignment(
        fg_mask=fg_mask,
        gt_index=gt_index,
        iou=iou,
        num_fg=int(is_fg.sum()),
        candidate_mask=candidate_mask,
        candidate_index=candidate_index,
        geometry_mask=geometry_mask,
        iou_matrix=iou_matrix,
        cls_cost=cls_cost,
        cost=cost,
        dynamic_k=ks,
        initial_matching=initial,
        matching=matching,
    )
    ### END SOLUTION
