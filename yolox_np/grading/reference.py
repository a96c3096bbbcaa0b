"""Reference solutions used by the graders: plain loops, written independently of the package code.

They are deliberately simple (and slow) so that a reader can check each against its definition; the
test-suite holds the package's fast functions equal to them.
"""

from __future__ import annotations

import math

import numpy as np


# ----------------------------------------------------------------------------- engine
def conv_forward(x, w, b=None, stride=1, padding=0, groups=1):
    n_img, c_in, h, wd = x.shape
    f_out, cg, k, _ = w.shape
    fg = f_out // groups
    ho, wo = (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1
    xp = np.zeros((n_img, c_in, h + 2 * padding, wd + 2 * padding), dtype=np.float64)
    xp[:, :, padding:padding + h, padding:padding + wd] = x
    out = np.zeros((n_img, f_out, ho, wo))
    for f in range(f_out):
        g = f // fg
        for ki in range(k):
            for kj in range(k):
                patch = xp[:, g * cg:(g + 1) * cg, ki:ki + stride * ho:stride, kj:kj + stride * wo:stride]
                out[:, f] += np.einsum("nchw,c->nhw", patch, w[f, :, ki, kj])
        if b is not None:
            out[:, f] += b[f]
    return out


def conv_backward(dout, x, w, b=None, stride=1, padding=0, groups=1):
    n_img, c_in, h, wd = x.shape
    f_out, cg, k, _ = w.shape
    fg = f_out // groups
    ho, wo = dout.shape[2:]
    xp = np.zeros((n_img, c_in, h + 2 * padding, wd + 2 * padding))
    xp[:, :, padding:padding + h, padding:padding + wd] = x
    dxp = np.zeros_like(xp)
    dw = np.zeros(w.shape)
    for f in range(f_out):
        g = f // fg
        for ki in range(k):
            for kj in range(k):
                sl = (slice(None), slice(g * cg, (g + 1) * cg), slice(ki, ki + stride * ho, stride),
                      slice(kj, kj + stride * wo, stride))
                dw[f, :, ki, kj] = np.einsum("nchw,nhw->c", xp[sl], dout[:, f])
                dxp[sl] += np.einsum("c,nhw->nchw", w[f, :, ki, kj], dout[:, f])
    db = dout.sum(axis=(0, 2, 3)) if b is not None else None
    return dxp[:, :, padding:padding + h, padding:padding + wd], dw, db


def batchnorm_backward(dout, cache):
    """cache = (xhat, inv_std, gamma) of a train-mode forward; the step-by-step chain rule."""
    xhat, inv_std, gamma = cache
    n = dout.shape[0] * dout.shape[2] * dout.shape[3]
    c = (1, -1, 1, 1)
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * xhat).sum(axis=(0, 2, 3))
    dxhat = dout * gamma.reshape(c)
    dx = (dxhat - dxhat.sum(axis=(0, 2, 3)).reshape(c) / n
          - xhat * (dxhat * xhat).sum(axis=(0, 2, 3)).reshape(c) / n) * inv_std.reshape(c)
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------- boxes
def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _giou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    iou = inter / union if union > 0 else 0.0
    c = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return iou - (c - union) / c if c > 0 else iou


def box_iou(a, b):
    return np.array([[_iou(p, q) for q in b] for p in a]).reshape(len(a), len(b))


def box_giou(a, b):
    return np.array([[_giou(p, q) for q in b] for p in a]).reshape(len(a), len(b))


def decode(raw, grids, strides, convention="official"):
    out = np.array(raw, dtype=np.float64, copy=True)
    flat = out.reshape(-1, out.shape[-2], out.shape[-1])
    for blk in flat:
        for a in range(blk.shape[0]):
            i, j = grids[a]
            s = float(strides[a])
            if convention == "official":
                blk[a, 0] = (blk[a, 0] + i) * s
                blk[a, 1] = (blk[a, 1] + j) * s
            else:
                blk[a, 0] = blk[a, 0] + s / 2 + s * i
                blk[a, 1] = blk[a, 1] + s / 2 + s * j
            blk[a, 2] = s * math.exp(blk[a, 2])
            blk[a, 3] = s * math.exp(blk[a, 3])
    return out


def hflip(img, boxes):
    w = img.shape[1]
    out = np.array(boxes, dtype=np.float64, copy=True)
    if len(out):
        out[:, 0] = w - boxes[:, 2]
        out[:, 2] = w - boxes[:, 0]
    return img[:, ::-1].copy(), out


# ----------------------------------------------------------------------------- loss and assignment
def bce_with_logits(logits, targets):
    z = np.asarray(logits, dtype=np.float64)
    return np.logaddexp(0.0, z) - z * targets


def dynamic_k(iou_matrix, n_candidate_k=10):
    iou = np.asarray(iou_matrix, dtype=np.float64)
    q = min(n_candidate_k, iou.shape[1])
    out = []
    for row in iou:
        top = sorted(row, reverse=True)[:q]
        out.append(max(1, int(sum(top))))
    return np.array(out, dtype=np.int64)


def _bce_prob(p, t):
    lp = max(math.log(p), -100.0) if p > 0 else -100.0
    l1p = max(math.log(1 - p), -100.0) if p < 1 else -100.0
    return -(t * lp + (1 - t) * l1p)


def simota_assign(pred_boxes, cls_logits, obj_logits, grids, strides, gt_boxes, gt_classes, variant="main"):
    """Returns (fg_mask (A,), gt_index (A,)) by per-GT loops (spec of the current official code)."""
    n_anchor = len(pred_boxes)
    fg = np.zeros(n_anchor, bool)
    gt_index = np.full(n_anchor, -1, np.int64)
    n_gt = len(gt_boxes)
    if n_gt == 0:
        return fg, gt_index
    centres = (np.asarray(grids, np.float64) + 0.5) * np.asarray(strides, np.float64)[:, None]
    s = np.asarray(strides, np.float64)
    geom = np.zeros((n_gt, n_anchor), bool)
    for g, (cx, cy, w, h) in enumerate(gt_boxes):
        for a in range(n_anchor):
            dx, dy = abs(centres[a, 0] - cx), abs(centres[a, 1] - cy)
            if variant == "main":
                geom[g, a] = dx < 1.5 * s[a] and dy < 1.5 * s[a]
            else:
                in_box = (cx - w / 2 < centres[a, 0] < cx + w / 2) and (cy - h / 2 < centres[a, 1] < cy + h / 2)
                in_ctr = dx < 2.5 * s[a] and dy < 2.5 * s[a]
                geom[g, a] = in_box and in_ctr
    if variant == "main":
        cand = geom.any(axis=0)
        penalty = 1e6
    else:
        cand = np.zeros(n_anchor, bool)
        for a in range(n_anchor):
            for cx, cy, w, h in gt_boxes:
                dx, dy = abs(centres[a, 0] - cx), abs(centres[a, 1] - cy)
                in_box = (cx - w / 2 < centres[a, 0] < cx + w / 2) and (cy - h / 2 < centres[a, 1] < cy + h / 2)
                if in_box or (dx < 2.5 * s[a] and dy < 2.5 * s[a]):
                    cand[a] = True
        penalty = 100000.0
    idx = np.flatnonzero(cand)
    if idx.size == 0:
        return fg, gt_index

    def xyxy(b):
        return (b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2)

    n_cls = np.asarray(cls_logits).shape[1]
    ious = np.zeros((n_gt, idx.size))
    cost = np.zeros((n_gt, idx.size))
    for g in range(n_gt):
        for col, a in enumerate(idx):
            ious[g, col] = _iou(xyxy(gt_boxes[g]), xyxy(pred_boxes[a]))
            so = 1 / (1 + math.exp(-float(obj_logits[a])))
            c = 0.0
            for k in range(n_cls):
                p = math.sqrt(so / (1 + math.exp(-float(cls_logits[a][k]))))
                c += _bce_prob(p, 1.0 if k == int(gt_classes[g]) else 0.0)
            cost[g, col] = c + 3.0 * -math.log(ious[g, col] + 1e-8) + (0.0 if geom[g, a] else penalty)
    ks = dynamic_k(ious)
    claims = {}
    for g in range(n_gt):
        order = sorted(range(idx.size), key=lambda col: cost[g, col])[: ks[g]]
        for col in order:
            claims.setdefault(col, []).append(g)
    for col, gs in claims.items():
        best = gs[0] if len(gs) == 1 else min(range(n_gt), key=lambda g: cost[g, col])
        fg[idx[col]] = True
        gt_index[idx[col]] = best
    return fg, gt_index


# ----------------------------------------------------------------------------- post-processing
def nms(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        if all(_iou(boxes[i], boxes[j]) <= iou_threshold for j in keep):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def batched_nms(boxes, scores, classes, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        if all(classes[i] != classes[j] or _iou(boxes[i], boxes[j]) <= iou_threshold for j in keep):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def soft_nms(boxes, scores, method="gaussian", sigma=0.5, iou_threshold=0.3, score_threshold=0.001):
    s = {i: float(v) for i, v in enumerate(scores) if v >= score_threshold}
    kept, kept_scores = [], []
    while s:
        m = max(s, key=lambda i: (s[i], -i))
        kept.append(m)
        kept_scores.append(s.pop(m))
        for i in list(s):
            iou = _iou(boxes[m], boxes[i])
            if method == "gaussian":
                s[i] *= math.exp(-(iou * iou) / sigma)
            elif method == "linear":
                s[i] *= (1 - iou) if iou > iou_threshold else 1.0
            else:
                s[i] *= 0.0 if iou > iou_threshold else 1.0
            if s[i] < score_threshold:
                del s[i]
    return np.array(kept, dtype=np.int64), np.array(kept_scores)


def average_precision(recall, precision):
    """COCO's 101-point interpolated AP of one precision-recall curve (recall ascending)."""
    r = list(recall)
    p = list(precision)
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    total = 0.0
    for t in np.linspace(0, 1, 101):
        j = next((i for i, v in enumerate(r) if v >= t), None)
        total += p[j] if j is not None else 0.0
    return total / 101
