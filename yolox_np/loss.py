"""YOLOX training loss with its hand-written gradient.

Element losses (each with a ``*_backward`` giving the gradient with respect to the prediction):
``bce_with_logits``, ``iou_loss`` (official 1 - IoU^2), ``giou_loss`` (1 - clamp(GIoU, -1, 1)), ``l1_loss``.
``yolox_loss`` decodes the raw head output, runs SimOTA per image and returns every term and
d total / d raw.
"""

import numpy as np

from .assign import VARIANTS as ASSIGN_VARIANTS
from .assign import Assignment, simota_assign
from .boxes import (
    _check_finite,
    _check_grids_strides,
    _check_sized,
    _float_array,
    box_iou,
    cxcywh_to_xyxy,
    decode,
    decode_backward,
)

__all__ = [
    "sigmoid",
    "bce_with_logits",
    "bce_with_logits_backward",
    "iou_loss",
    "iou_loss_backward",
    "giou_loss",
    "giou_loss_backward",
    "l1_loss",
    "l1_loss_backward",
    "l1_targets",
    "yolox_loss",
    "REG_WEIGHT",
    "LOSS_VARIANTS",
]

REG_WEIGHT = 5.0
IOU_LOSS_EPS = 1e-16  # the official IOUloss guard; IoU itself (boxes.py) has none
L1_TARGET_EPS = 1e-8
LOSS_VARIANTS = ("official", "article")


def _same_shape(a, b, name_a, name_b):
    a = _float_array(a, name_a)
    b = _float_array(b, name_b)
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {a.shape} and {b.shape}")
    _check_finite(a, name_a)
    _check_finite(b, name_b)
    dtype = np.result_type(a.dtype, b.dtype)
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


def _upstream(grad_out, shape, dtype, name="grad_out"):
    if grad_out is None:
        return np.ones(shape, dtype=dtype)
    grad_out = _float_array(grad_out, name)
    if grad_out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {grad_out.shape}")
    _check_finite(grad_out, name)
    return grad_out


# ---------------------------------------------------------------------------------------------------
# binary cross-entropy with logits


def sigmoid(z):
    """Numerically stable logistic function, elementwise (no overflow warnings for large |z|)."""
    z = np.asarray(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def bce_with_logits(logits, targets):
    """Elementwise binary cross-entropy of ``sigmoid(logits)`` against ``targets`` in [0, 1].

    Stable form ``max(z, 0) - z * t + ln(1 + exp(-|z|))``: finite for logits of any size (e.g. +-1000).
    """
    z, t = _same_shape(logits, targets, "logits", "targets")
    if ((t < 0) | (t > 1)).any():
        bad = np.flatnonzero(((t < 0) | (t > 1)).reshape(-1))[0]
        raise ValueError(f"targets must lie in [0, 1], flat index {bad} is {t.reshape(-1)[bad]}")
    ### BEGIN SOLUTION
    # HINT: never compute exp(z) for large z: use max(z, 0) - z * t + log1p(exp(-|z|)).
    return np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    ### END SOLUTION


def bce_with_logits_backward(logits, targets, grad_out=None):
    """Gradient of ``sum(grad_out * bce_with_logits(logits, targets))`` w.r.t. the logits: ``sigmoid(z) - t``."""
    z, t = _same_shape(logits, targets, "logits", "targets")
    return (sigmoid(z) - t) * _upstream(grad_out, z.shape, z.dtype)


# ---------------------------------------------------------------------------------------------------
# IoU / GIoU losses on (cx, cy, w, h) pairs, as the official IOUloss computes them


def _pair_geometry(pred, target):
    """Quantities shared by the IoU and GIoU losses and their gradients ((N, 4) cxcywh pairs)."""
    p_lo, p_hi = pred[:, :2] - pred[:, 2:] / 2, pred[:, :2] + pred[:, 2:] / 2
    t_lo, t_hi = target[:, :2] - target[:, 2:] / 2, target[:, :2] + target[:, 2:] / 2
    tl, br = np.maximum(p_lo, t_lo), np.minimum(p_hi, t_hi)
    overlap = (tl < br).all(axis=1)
    side = (br - tl) * overlap[:, None]  # intersection side lengths, 0 without overlap
    inter = side[:, 0] * side[:, 1]
    area_p = pred[:, 2] * pred[:, 3]
    area_t = target[:, 2] * target[:, 3]
    uni = area_p + area_t - inter
    iou = inter / (uni + IOU_LOSS_EPS)
    c_lo, c_hi = np.minimum(p_lo, t_lo), np.maximum(p_hi, t_hi)
    encl_side = c_hi - c_lo
    encl = encl_side[:, 0] * encl_side[:, 1]
    return dict(
        p_lo=p_lo, p_hi=p_hi, t_lo=t_lo, t_hi=t_hi, overlap=overlap, side=side, inter=inter,
        uni=uni, iou=iou, encl_side=encl_side, encl=encl,
    )  # fmt: skip


def _tie_share(first, second):
    """Share of d max(first, second) / d first (1, 0, or 0.5 at a tie)."""
    return np.where(first > second, 1.0, np.where(first == second, 0.5, 0.0))


def _grad_to_cxcywh(g_lo, g_hi, g_wh):
    """Chain rule from box edges (lo, hi per axis) and direct (w, h) use back to (cx, cy, w, h)."""
    return np.concatenate([g_lo + g_hi, 0.5 * (g_hi - g_lo) + g_wh], axis=1)


def _check_loss_pairs(pred, target):
    pred, target = _same_shape(pred, target, "pred", "target")
    if pred.ndim != 2 or pred.shape[1] != 4:
        raise ValueError(f"pred and target must have shape (N, 4), got {pred.shape}")
    _check_sized(pred, "pred", "cxcywh")
    _check_sized(target, "target", "cxcywh")
    return pred, target


def _iou_grad(g, pred, grad_iou):
    """d/d pred (N, 4) of sum(grad_iou * IoU) with IoU = I / (U + eps)."""
    den = g["uni"] + IOU_LOSS_EPS
    d_inter = grad_iou * (den + g["inter"]) / den**2  # U depends on I with dU/dI = -1
    d_area_p = -grad_iou * g["inter"] / den**2
    # I = side_x * side_y; side = min(p_hi, t_hi) - max(p_lo, t_lo) where the boxes overlap
    d_side = d_inter[:, None] * g["side"][:, ::-1] * g["overlap"][:, None]
    g_hi = d_side * _tie_share(g["t_hi"], g["p_hi"])  # min picks p_hi when p_hi < t_hi
    g_lo = -d_side * _tie_share(g["p_lo"], g["t_lo"])
    g_wh = d_area_p[:, None] * pred[:, 2:][:, ::-1]
    return g_lo, g_hi, g_wh


def iou_loss(pred, target):
    """Official YOLOX IoU loss per pair: ``1 - IoU^2`` with ``IoU = I / (U + 1e-16)``.

    pred, target (N, 4) (cx, cy, w, h) -> (N,). The intersection counts only where the boxes overlap in
    both axes.
    """
    pred, target = _check_loss_pairs(pred, target)
    return 1 - _pair_geometry(pred, target)["iou"] ** 2


def iou_loss_backward(pred, target, grad_out=None):
    """Gradient (N, 4) of ``sum(grad_out * iou_loss(pred, target))`` w.r.t. ``pred`` (target is constant)."""
    pred, target = _check_loss_pairs(pred, target)
    up = _upstream(grad_out, (pred.shape[0],), pred.dtype)
    g = _pair_geometry(pred, target)
    g_lo, g_hi, g_wh = _iou_grad(g, pred, up * -2 * g["iou"])
    return _grad_to_cxcywh(g_lo, g_hi, g_wh)


def _giou(g):
    return g["iou"] - (g["encl"] - g["uni"]) / np.maximum(g["encl"], IOU_LOSS_EPS)


def giou_loss(pred, target):
    """GIoU loss per pair (the official ``loss_type="giou"``): ``1 - clamp(GIoU, -1, 1)``.

    ``GIoU = I / (U + 1e-16) - (C - U) / max(C, 1e-16)`` with C the enclosing-box area.
    pred, target (N, 4) (cx, cy, w, h) -> (N,).
    """
    pred, target = _check_loss_pairs(pred, target)
    return 1 - np.clip(_giou(_pair_geometry(pred, target)), -1.0, 1.0)


def giou_loss_backward(pred, target, grad_out=None):
    """Gradient (N, 4) of ``sum(grad_out * giou_loss(pred, target))`` w.r.t. ``pred`` (target is constant).

    Zero where the clamp is active (GIoU outside [-1, 1], which only rounding can produce).
    """
    pred, target = _check_loss_pairs(pred, target)
    up = _upstream(grad_out, (pred.shape[0],), pred.dtype)
    g = _pair_geometry(pred, target)
    giou = _giou(g)
    d_giou = -up * ((giou >= -1) & (giou <= 1))
    g_lo, g_hi, g_wh = _iou_grad(g, pred, d_giou)
    # penalty -(C - U) / max(C, 1e-16): d/dU = 1 / C', d/dC = -U / C^2 above the clamp, -1 / 1e-16 below it
    c = np.maximum(g["encl"], IOU_LOSS_EPS)
    d_uni = d_giou / c
    d_encl = np.where(g["encl"] > IOU_LOSS_EPS, -d_giou * g["uni"] / c**2, -d_giou / IOU_LOSS_EPS)
    # U = area_p + area_t - I
    d_side = (-d_uni)[:, None] * g["side"][:, ::-1] * g["overlap"][:, None]
    g_hi += d_side * _tie_share(g["t_hi"], g["p_hi"])
    g_lo -= d_side * _tie_share(g["p_lo"], g["t_lo"])
    g_wh += d_uni[:, None] * pred[:, 2:][:, ::-1]
    # C = (max hi - min lo) per axis
    d_encl_side = d_encl[:, None] * g["encl_side"][:, ::-1]
    g_hi += d_encl_side * _tie_share(g["p_hi"], g["t_hi"])
    g_lo -= d_encl_side * _tie_share(g["t_lo"], g["p_lo"])
    return _grad_to_cxcywh(g_lo, g_hi, g_wh)


# ---------------------------------------------------------------------------------------------------
# L1


def l1_loss(pred, target):
    """Elementwise ``|pred - target|``."""
    pred, target = _same_shape(pred, target, "pred", "target")
    return np.abs(pred - target)


def l1_loss_backward(pred, target, grad_out=None):
    """Gradient of ``sum(grad_out * l1_loss(pred, target))`` w.r.t. ``pred``: ``sign(pred - target)`` (0 at 0)."""
    pred, target = _same_shape(pred, target, "pred", "target")
    return np.sign(pred - target) * _upstream(grad_out, pred.shape, pred.dtype)


def l1_targets(gt_boxes, grids, strides):
    """L1 regression targets in raw (official) units for GT boxes matched to cells.

    gt_boxes (N, 4) (cx, cy, w, h) pixels, grids (N, 2), strides (N,) of the matched anchors -> (N, 4)
    ``(cx/s - i, cy/s - j, ln(w/s + 1e-8), ln(h/s + 1e-8))``.
    """
    gt = _check_sized(gt_boxes, "gt_boxes", "cxcywh").astype(np.float64)
    if gt.ndim != 2:
        raise ValueError(f"gt_boxes must have shape (N, 4), got {gt.shape}")
    grids, strides = _check_grids_strides(grids, strides, num_anchors=gt.shape[0])
    s = strides.astype(np.float64)[:, None]
    return np.concatenate([gt[:, :2] / s - grids, np.log(gt[:, 2:] / s + L1_TARGET_EPS)], axis=1)


# ---------------------------------------------------------------------------------------------------
# the full loss


def _check_loss_inputs(raw, grids, strides, targets, variant, assign_variant, assignments):
    if variant not in LOSS_VARIANTS:
        raise ValueError(f"variant must be one of {LOSS_VARIANTS}, got {variant!r}")
    if assign_variant not in ASSIGN_VARIANTS:
        raise ValueError(f"assign_variant must be one of {ASSIGN_VARIANTS}, got {assign_variant!r}")
    raw = _float_array(raw, "raw")
    if raw.ndim != 3 or raw.shape[2] < 6:
        raise ValueError(f"raw must have shape (B, A, 5 + C) with C >= 1, got shape {raw.shape}")
    _check_finite(raw, "raw")
    batch, num_anchors, num_classes = raw.shape[0], raw.shape[1], raw.shape[2] - 5
    grids, strides = _check_grids_strides(grids, strides, num_anchors=num_anchors)
    if not isinstance(targets, (list, tuple)):
        raise ValueError(f"targets must be a list of B = {batch} arrays (G_i, 5), got {type(targets).__name__}")
    if len(targets) != batch:
        raise ValueError(f"targets has {len(targets)} entries but raw has batch size B = {batch}")
    checked = []
    for b, tgt in enumerate(targets):
        tgt = _float_array(tgt, f"targets[{b}]").astype(np.float64)
        if tgt.size == 0:
            tgt = tgt.reshape(0, 5)
        if tgt.ndim != 2 or tgt.shape[1] != 5:
            raise ValueError(f"targets[{b}] must have shape (G, 5) [class, cx, cy, w, h], got {tgt.shape}")
        _check_finite(tgt, f"targets[{b}]")
        cls = tgt[:, 0]
        bad = (cls != np.round(cls)) | (cls < 0) | (cls >= num_classes)
        if bad.any():
            g = np.flatnonzero(bad)[0]
            raise ValueError(f"targets[{b}] row {g}: class {cls[g]} is not an index in [0, {num_classes})")
        _check_sized(tgt[:, 1:], f"targets[{b}][:, 1:]", "cxcywh")
        checked.append(tgt)
    if assignments is not None:
        if len(assignments) != batch or not all(isinstance(a, Assignment) for a in assignments):
            raise ValueError(f"assignments must be a list of B = {batch} Assignment objects")
        for b, (a, tgt) in enumerate(zip(assignments, checked)):
            fg_gt = a.gt_index[a.fg_mask] if a.gt_index.shape == a.fg_mask.shape else np.array([-1])
            if a.fg_mask.shape != (num_anchors,) or (fg_gt < 0).any() or (fg_gt >= len(tgt)).any():
                raise ValueError(f"assignments[{b}] does not fit A = {num_anchors} anchors and G = {len(tgt)} GTs")
    return raw, grids, strides, checked


def yolox_loss(
    raw,
    grids,
    strides,
    targets,
    use_l1=False,
    variant="official",
    assign_variant="main",
    assignments=None,
):
    """YOLOX loss of a batch and its gradient with respect to ``raw``.

    raw (B, A, 5 + C) head output in the order [reg(4), obj(1), cls(C)] (raw logits); grids (A, 2) integer
    cells (x, y); strides (A,); targets: list of B arrays (G_i, 5) [class, cx, cy, w, h] in input pixels
    (G_i may be 0). The reg part is decoded with the official convention (``boxes.decode``) and SimOTA
    (``assign.simota_assign`` with ``assign_variant``) runs per image without gradient; pass
    ``assignments`` (a list of B ``Assignment``) to reuse a fixed assignment instead.

    Returns a dict: ``total``, ``iou`` (already x 5), ``obj``, ``cls``, ``l1`` (floats), ``num_fg`` (int,
    foreground anchors over the batch), ``grad`` (d total / d raw, shape and float dtype of raw) and
    ``assignments``. Every summed term is divided by ``max(num_fg, 1)``; ``total = iou + obj + cls + l1``.

    variant="official": regression ``1 - IoU^2`` (IoU with a 1e-16 guard) on fg anchors; objectness BCE on
    every anchor of every image with target 1 for fg, 0 otherwise; class BCE on fg anchors with target
    ``one_hot(class) * IoU_match`` (a constant); L1 (if ``use_l1``) on the raw reg logits of fg anchors
    against ``l1_targets``.

    variant="article" (the seed article's description) differs only in three places:
    regression uses the GIoU loss ``1 - clamp(GIoU, -1, 1)`` instead of ``1 - IoU^2``; the objectness
    target is ``IoU(pred, assigned GT)`` for fg anchors and the highest IoU with any GT of the image for the
    others (0 in an image without GTs) instead of 1/0, and no gradient flows through that target; class
    targets are plain one-hot instead of IoU-scaled. Decoding, SimOTA, the weights 5/1/1, the
    normalisation and the optional L1 term are the official ones.
    """
    raw, grids, strides, targets = _check_loss_inputs(
        raw, grids, strides, targets, variant, assign_variant, assignments
    )
    batch, num_anchors, width = raw.shape
    num_classes = width - 5
    reg = raw[..., :4].astype(np.float64)
    obj = raw[..., 4].astype(np.float64)
    with np.errstate(over="ignore"):  # an overflow is reported below as a ValueError
        boxes = decode(reg, grids, strides)
    if not np.isfinite(boxes).all():
        b, a = np.argwhere(~np.isfinite(boxes).all(axis=-1))[0]
        raise ValueError(f"raw reg logits of image {b}, anchor {a} overflow when decoded: {raw[b, a, :4]}")

    if assignments is None:
        assignments = [
            simota_assign(
                boxes[b], raw[b, :, 5:], raw[b, :, 4], grids, strides, tgt[:, 1:], tgt[:, 0].astype(np.int64),
                variant=assign_variant,
            )  # fmt: skip
            for b, tgt in enumerate(targets)
        ]
    num_fg = int(sum(a.num_fg for a in assignments))
    norm = float(max(num_fg, 1))

    fg_mask = np.stack([a.fg_mask for a in assignments])  # (B, A)
    img_idx, anc_idx = np.nonzero(fg_mask)
    iou_match = np.concatenate([a.iou[a.fg_mask] for a in assignments]).astype(np.float64)
    matched = np.concatenate([tgt[a.gt_index[a.fg_mask]] for a, tgt in zip(assignments, targets)])
    matched = matched.reshape(-1, 5)
    gt_boxes, gt_cls = matched[:, 1:], matched[:, 0].astype(np.int64)

    grad = np.zeros((batch, num_anchors, width), dtype=raw.dtype)
    grad_boxes = np.zeros_like(boxes)
    fg_boxes = boxes[img_idx, anc_idx]

    # regression
    reg_fn, reg_back = (iou_loss, iou_loss_backward) if variant == "official" else (giou_loss, giou_loss_backward)
    if num_fg:
        loss_iou = REG_WEIGHT * reg_fn(fg_boxes, gt_boxes).sum() / norm
        grad_boxes[img_idx, anc_idx] = REG_WEIGHT / norm * reg_back(fg_boxes, gt_boxes)
    else:
        loss_iou = 0.0

    # objectness
    if variant == "official":
        obj_target = fg_mask.astype(np.float64)
    else:
        obj_target = np.zeros((batch, num_anchors))
        for b, tgt in enumerate(targets):
            if len(tgt):
                ious = box_iou(cxcywh_to_xyxy(boxes[b]), cxcywh_to_xyxy(tgt[:, 1:]))
                obj_target[b] = ious.max(axis=1)
        obj_target[img_idx, anc_idx] = iou_match
        obj_target = np.clip(obj_target, 0.0, 1.0)  # guard against a rounding ulp above 1
    loss_obj = bce_with_logits(obj, obj_target).sum() / norm
    grad[..., 4] = bce_with_logits_backward(obj, obj_target) / norm

    # classification
    if num_fg:
        cls_logits = raw[img_idx, anc_idx, 5:].astype(np.float64)
        cls_target = np.zeros((num_fg, num_classes))
        cls_target[np.arange(num_fg), gt_cls] = iou_match if variant == "official" else 1.0
        loss_cls = bce_with_logits(cls_logits, cls_target).sum() / norm
        grad[img_idx, anc_idx, 5:] = bce_with_logits_backward(cls_logits, cls_target) / norm
    else:
        loss_cls = 0.0

    # gradient of the regression term back through the decode, then the optional L1 term on raw logits
    grad_reg = decode_backward(reg, grids, strides, grad_boxes)
    loss_l1 = 0.0
    if use_l1 and num_fg:
        t_star = l1_targets(gt_boxes, grids[anc_idx], strides[anc_idx])
        fg_reg = reg[img_idx, anc_idx]
        loss_l1 = l1_loss(fg_reg, t_star).sum() / norm
        grad_reg[img_idx, anc_idx] += l1_loss_backward(fg_reg, t_star) / norm
    grad[..., :4] = grad_reg

    loss_iou, loss_obj, loss_cls, loss_l1 = float(loss_iou), float(loss_obj), float(loss_cls), float(loss_l1)
    return {
        "total": loss_iou + loss_obj + loss_cls + loss_l1,
        "iou": loss_iou,
        "obj": loss_obj,
        "cls": loss_cls,
        "l1": loss_l1,
        "num_fg": num_fg,
        "grad": grad,
        "assignments": assignments,
    }
