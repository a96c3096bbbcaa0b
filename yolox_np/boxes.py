"""Box maths on plain arrays: format conversions, IoU and GIoU, grids and decoding.

Formats: ``xyxy`` = (x1, y1, x2, y2), ``cxcywh`` = (centre x, centre y, width, height), ``xywh`` =
(top-left x, top-left y, width, height), all in pixels with continuous areas (no "+1").
A box with zero width or height is legal (area 0). A box with x2 < x1 or y2 < y1 (negative width or
height in the other formats), or any non-finite coordinate, raises ``ValueError`` naming the index.
IoU and GIoU are exact (no epsilon); where a union is 0 the IoU is 0.

Nothing here knows about models or losses.
"""

import numpy as np

__all__ = [
    "cxcywh_to_xyxy",
    "xyxy_to_cxcywh",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
    "box_area",
    "intersection",
    "intersection_pairs",
    "union",
    "union_pairs",
    "enclosing_box",
    "enclosing_box_pairs",
    "box_iou",
    "box_iou_pairs",
    "box_giou",
    "box_giou_pairs",
    "make_grid",
    "make_grids",
    "anchor_points",
    "cell_centers",
    "decode",
    "decode_backward",
]

CONVENTIONS = ("official", "article")


# ---------------------------------------------------------------------------------------------------
# validation helpers


def _float_array(x, name):
    """``x`` as a floating array (float32 stays float32, integers become float64)."""
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _index_str(flat_index, shape):
    idx = np.unravel_index(int(flat_index), shape)
    return str(int(idx[0])) if len(idx) == 1 else str(tuple(int(i) for i in idx))


def _check_last_dim(arr, name, size=4):
    if arr.ndim < 1 or arr.shape[-1] != size:
        raise ValueError(f"{name} must have shape (..., {size}), got shape {arr.shape}")


def _check_finite(arr, name):
    bad = ~np.isfinite(arr)
    if bad.any():
        flat = np.flatnonzero(bad.reshape(-1))[0]
        if arr.ndim >= 1 and arr.shape[-1] == 4:
            box = _index_str(flat // 4, arr.shape[:-1]) if arr.ndim > 1 else "0"
            raise ValueError(f"{name}: box {box} has a non-finite coordinate ({arr.reshape(-1)[flat]})")
        raise ValueError(f"{name}: non-finite value at index {_index_str(flat, arr.shape)}")


def _check_xyxy(boxes, name):
    """Validate (..., 4) xyxy boxes: finite, x2 >= x1, y2 >= y1."""
    boxes = _float_array(boxes, name)
    _check_last_dim(boxes, name)
    _check_finite(boxes, name)
    for lo, hi, axis in ((0, 2, "x"), (1, 3, "y")):
        bad = boxes[..., hi] < boxes[..., lo]
        if bad.any():
            flat = np.flatnonzero(bad.reshape(-1))[0]
            where = _index_str(flat, bad.shape) if bad.ndim else "0"
            b = boxes.reshape(-1, 4)[flat]
            raise ValueError(
                f"{name}: box {where} has {axis}2 < {axis}1 ({axis}1={b[lo]}, {axis}2={b[hi]}); "
                "boxes must be (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1"
            )
    return boxes


def _check_sized(boxes, name, fmt):
    """Validate (..., 4) boxes whose last two columns are (w, h): finite, w >= 0, h >= 0."""
    boxes = _float_array(boxes, name)
    _check_last_dim(boxes, name)
    _check_finite(boxes, name)
    for col, what in ((2, "width"), (3, "height")):
        bad = boxes[..., col] < 0
        if bad.any():
            flat = np.flatnonzero(bad.reshape(-1))[0]
            where = _index_str(flat, bad.shape) if bad.ndim else "0"
            raise ValueError(
                f"{name}: box {where} has negative {what} ({boxes.reshape(-1, 4)[flat, col]}) in {fmt} format"
            )
    return boxes


def _check_list_of_boxes(boxes, name):
    boxes = _check_xyxy(boxes, name)
    if boxes.ndim != 2:
        raise ValueError(f"{name} must have shape (N, 4), got shape {boxes.shape}")
    return boxes


def _check_pairs(a, b):
    a = _check_list_of_boxes(a, "a")
    b = _check_list_of_boxes(b, "b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"matched pairs need the same number of boxes, got a {a.shape} and b {b.shape}")
    return a, b


def _common_float(a, b):
    dtype = np.result_type(a.dtype, b.dtype)
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


# ---------------------------------------------------------------------------------------------------
# format conversions


def cxcywh_to_xyxy(boxes):
    """(..., 4) (cx, cy, w, h) -> (..., 4) (x1, y1, x2, y2)."""
    b = _check_sized(boxes, "boxes", "cxcywh")
    half = b[..., 2:] / 2
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def xyxy_to_cxcywh(boxes):
    """(..., 4) (x1, y1, x2, y2) -> (..., 4) (cx, cy, w, h)."""
    b = _check_xyxy(boxes, "boxes")
    return np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_xyxy(boxes):
    """(..., 4) (x, y, w, h) with (x, y) the top-left corner -> (..., 4) (x1, y1, x2, y2)."""
    b = _check_sized(boxes, "boxes", "xywh")
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_xywh(boxes):
    """(..., 4) (x1, y1, x2, y2) -> (..., 4) (x, y, w, h) with (x, y) the top-left corner."""
    b = _check_xyxy(boxes, "boxes")
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


# ---------------------------------------------------------------------------------------------------
# areas, intersections, unions, enclosing boxes (xyxy)


def box_area(boxes):
    """(..., 4) xyxy -> (...) area ``(x2 - x1) * (y2 - y1)``."""
    b = _check_xyxy(boxes, "boxes")
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def _overlap_area(a, b):
    """Intersection area of broadcastable xyxy arrays (no validation)."""
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    return w * h


def intersection(a, b):
    """Pairwise intersection areas: (N, 4), (M, 4) xyxy -> (N, M); 0 where boxes do not overlap."""
    a, b = _common_float(_check_list_of_boxes(a, "a"), _check_list_of_boxes(b, "b"))
    return _overlap_area(a[:, None, :], b[None, :, :])


def intersection_pairs(a, b):
    """Elementwise intersection areas of matched pairs: (N, 4), (N, 4) xyxy -> (N,)."""
    a, b = _common_float(*_check_pairs(a, b))
    return _overlap_area(a, b)


def union(a, b):
    """Pairwise union areas ``area(a) + area(b) - intersection``: (N, 4), (M, 4) xyxy -> (N, M)."""
    a, b = _common_float(_check_list_of_boxes(a, "a"), _check_list_of_boxes(b, "b"))
    return box_area(a)[:, None] + box_area(b)[None, :] - _overlap_area(a[:, None, :], b[None, :, :])


def union_pairs(a, b):
    """Elementwise union areas of matched pairs: (N, 4), (N, 4) xyxy -> (N,)."""
    a, b = _common_float(*_check_pairs(a, b))
    return box_area(a) + box_area(b) - _overlap_area(a, b)


def _enclose(a, b):
    return np.concatenate([np.minimum(a[..., :2], b[..., :2]), np.maximum(a[..., 2:], b[..., 2:])], axis=-1)


def enclosing_box(a, b):
    """Pairwise smallest enclosing boxes: (N, 4), (M, 4) xyxy -> (N, M, 4) xyxy."""
    a, b = _common_float(_check_list_of_boxes(a, "a"), _check_list_of_boxes(b, "b"))
    return _enclose(a[:, None, :], b[None, :, :])


def enclosing_box_pairs(a, b):
    """Elementwise smallest enclosing boxes of matched pairs: (N, 4), (N, 4) xyxy -> (N, 4)."""
    a, b = _common_float(*_check_pairs(a, b))
    return _enclose(a, b)


# ---------------------------------------------------------------------------------------------------
# IoU and GIoU (exercises)


def box_iou(a, b):
    """Pairwise IoU: (N, 4), (M, 4) xyxy -> (N, M) in [0, 1].

    IoU = intersection / union, exact (no epsilon); 0 where the union is 0 (two zero-area boxes).
    """
    a, b = _common_float(_check_list_of_boxes(a, "a"), _check_list_of_boxes(b, "b"))
    ### BEGIN SOLUTION
    # HINT: broadcast a[:, None, :] against b[None, :, :]; overlap width = min(x2) - max(x1) clipped at 0;
    # union = area_a + area_b - intersection; return 0 where the union is 0.
    a = a[:, None, :]
    b = b[None, :, :]
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    uni = area_a + area_b - inter
    positive = uni > 0
    return np.where(positive, inter / np.where(positive, uni, 1), 0).astype(inter.dtype, copy=False)
    ### END SOLUTION


def _iou_and_union(a, b):
    inter = _overlap_area(a, b)
    uni = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    uni = uni - inter
    positive = uni > 0
    return np.where(positive, inter / np.where(positive, uni, 1), 0).astype(inter.dtype, copy=False), uni


def box_iou_pairs(a, b):
    """Elementwise IoU of matched pairs: (N, 4), (N, 4) xyxy -> (N,); 0 where the union is 0."""
    a, b = _common_float(*_check_pairs(a, b))
    return _iou_and_union(a, b)[0]


def box_giou(a, b):
    """Pairwise generalised IoU: (N, 4), (M, 4) xyxy -> (N, M) in [-1, 1].

    GIoU = IoU - (C - U) / C with C the area of the smallest enclosing box and U the union; exact, no
    epsilon. GIoU <= IoU, GIoU > -1 whenever U > 0, and GIoU = 1 only for identical boxes of positive area.
    Where C is 0 (both boxes the same point or collinear segments) the penalty is taken as 0, so GIoU = IoU = 0.
    """
    a, b = _common_float(_check_list_of_boxes(a, "a"), _check_list_of_boxes(b, "b"))
    ### BEGIN SOLUTION
    # HINT: compute IoU and union as in box_iou, then the enclosing box (min of x1/y1, max of x2/y2),
    # its area C, and subtract (C - union) / C where C > 0.
    a = a[:, None, :]
    b = b[None, :, :]
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    uni = area_a + area_b - inter
    iou = np.where(uni > 0, inter / np.where(uni > 0, uni, 1), 0)
    encl_w = np.maximum(a[..., 2], b[..., 2]) - np.minimum(a[..., 0], b[..., 0])
    encl_h = np.maximum(a[..., 3], b[..., 3]) - np.minimum(a[..., 1], b[..., 1])
    encl = encl_w * encl_h
    penalty = np.where(encl > 0, (encl - uni) / np.where(encl > 0, encl, 1), 0)
    return (iou - penalty).astype(inter.dtype, copy=False)
    ### END SOLUTION


def box_giou_pairs(a, b):
    """Elementwise generalised IoU of matched pairs: (N, 4), (N, 4) xyxy -> (N,) (conventions of box_giou)."""
    a, b = _common_float(*_check_pairs(a, b))
    iou, uni = _iou_and_union(a, b)
    c = _enclose(a, b)
    encl = (c[..., 2] - c[..., 0]) * (c[..., 3] - c[..., 1])
    penalty = np.where(encl > 0, (encl - uni) / np.where(encl > 0, encl, 1), 0)
    return (iou - penalty).astype(iou.dtype, copy=False)


# ---------------------------------------------------------------------------------------------------
# grids and decoding


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def make_grid(height, width, stride):
    """Grid cells of one level for an image of ``height`` x ``width`` pixels.

    Returns (H/stride * W/stride, 2) int64 cells (x, y) in row-major order (x fastest), so row j * W + i
    holds (i, j). The image size must be a multiple of the stride.
    """
    height = _check_positive_int(height, "height")
    width = _check_positive_int(width, "width")
    stride = _check_positive_int(stride, "stride")
    for size, name in ((height, "height"), (width, "width")):
        if size % stride:
            raise ValueError(f"image {name} {size} is not a multiple of stride {stride}")
    ys, xs = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
    return np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1).astype(np.int64)


def make_grids(height, width, strides=(8, 16, 32)):
    """Cells of every level, concatenated in the order of ``strides``.

    Returns ``grids`` (A, 2) int64 cells (x, y) and ``strides`` (A,) int64 (the stride of each cell).
    """
    strides = tuple(strides)
    if not strides:
        raise ValueError("strides must name at least one level")
    grids = [make_grid(height, width, s) for s in strides]
    per_cell = [np.full(len(g), s, dtype=np.int64) for g, s in zip(grids, strides)]
    return np.concatenate(grids, axis=0), np.concatenate(per_cell)


def _check_grids_strides(grids, strides, num_anchors=None):
    grids = np.asarray(grids)
    strides = np.asarray(strides)
    if grids.ndim != 2 or grids.shape[1] != 2:
        raise ValueError(f"grids must have shape (A, 2), got shape {grids.shape}")
    if strides.ndim != 1 or strides.shape[0] != grids.shape[0]:
        raise ValueError(f"strides must have shape (A,) = ({grids.shape[0]},), got shape {strides.shape}")
    if num_anchors is not None and grids.shape[0] != num_anchors:
        raise ValueError(f"grids has {grids.shape[0]} cells but the predictions have A = {num_anchors} anchors")
    for arr, name in ((grids, "grids"), (strides, "strides")):
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
        _check_finite(arr.astype(np.float64), name)
    if np.issubdtype(grids.dtype, np.floating) and (grids != np.round(grids)).any():
        bad = np.flatnonzero((grids != np.round(grids)).any(axis=1))[0]
        raise ValueError(f"grids must hold integer cells, row {bad} is {grids[bad].tolist()}")
    if (grids < 0).any():
        bad = np.flatnonzero((grids < 0).any(axis=1))[0]
        raise ValueError(f"grids must hold non-negative cells, row {bad} is {grids[bad].tolist()}")
    if (strides <= 0).any():
        bad = np.flatnonzero(strides <= 0)[0]
        raise ValueError(f"strides must be positive, strides[{bad}] = {strides[bad]}")
    return grids, strides


def _check_convention(convention):
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


def anchor_points(grids, strides, convention="official"):
    """(A, 2) reference point (x, y) in pixels that each cell's offsets are added to.

    official: the cell's top-left corner ``(i * s, j * s)``; article: the cell centre ``(s/2 + s*i, s/2 + s*j)``.
    """
    _check_convention(convention)
    grids, strides = _check_grids_strides(grids, strides)
    shift = 0.5 if convention == "article" else 0.0
    return (grids.astype(np.float64) + shift) * strides.astype(np.float64)[:, None]


def cell_centers(grids, strides):
    """(A, 2) cell centres ``((i + 0.5) * s, (j + 0.5) * s)`` in pixels (used by SimOTA's geometry test)."""
    return anchor_points(grids, strides, convention="article")


def _check_decode_inputs(raw, grids, strides, convention):
    _check_convention(convention)
    raw = _float_array(raw, "raw")
    if raw.ndim < 2 or raw.shape[-1] < 4:
        raise ValueError(f"raw must have shape (..., A, 4 + k), got shape {raw.shape}")
    _check_finite(raw, "raw")
    grids, strides = _check_grids_strides(grids, strides, num_anchors=raw.shape[-2])
    return raw, grids.astype(raw.dtype), strides.astype(raw.dtype)


def decode(raw, grids, strides, convention="official"):
    """Decode the first four columns of ``raw`` (..., A, 4 + k) into (cx, cy, w, h) pixels.

    official: ``cx = (t_x + i) * s``, ``cy = (t_y + j) * s``, ``w = exp(t_w) * s``, ``h = exp(t_h) * s``
    (the reference point is the cell's top-left corner and offsets are in stride units).
    article: ``cx = p_x + s/2 + s*i``, ``cy = p_y + s/2 + s*j`` (cell centre, offsets in pixels), and the
    same size rule ``w = s * exp(p_w)``. Columns after the fourth are copied unchanged.
    Returns a new array with the same shape and float dtype as ``raw``.
    """
    raw, grids, strides = _check_decode_inputs(raw, grids, strides, convention)
    ### BEGIN SOLUTION
    # HINT: s = strides[:, None]; official: xy = (t_xy + grids) * s; article: xy = p_xy + (grids + 0.5) * s;
    # both: wh = exp(t_wh) * s; copy the remaining columns.
    out = raw.copy()
    s = strides[:, None]
    if convention == "official":
        out[..., :2] = (raw[..., :2] + grids) * s
    else:
        out[..., :2] = raw[..., :2] + (grids + 0.5) * s
    out[..., 2:4] = np.exp(raw[..., 2:4]) * s
    return out
    ### END SOLUTION


def decode_backward(raw, grids, strides, grad_decoded, convention="official"):
    """Gradient of a scalar with respect to ``raw`` given its gradient with respect to ``decode(raw)``.

    ``grad_decoded`` has the shape of ``raw`` (..., A, 4 + k); the result has the same shape and dtype.
    d cx / d t_x = s (official) or 1 (article); d w / d t_w = exp(t_w) * s = w; other columns pass through.
    """
    raw, grids, strides = _check_decode_inputs(raw, grids, strides, convention)
    grad = _float_array(grad_decoded, "grad_decoded")
    if grad.shape != raw.shape:
        raise ValueError(f"grad_decoded must have the shape of raw {raw.shape}, got {grad.shape}")
    _check_finite(grad, "grad_decoded")
    s = strides[:, None]
    out = grad.astype(raw.dtype, copy=True)
    if convention == "official":
        out[..., :2] = grad[..., :2] * s
    out[..., 2:4] = grad[..., 2:4] * np.exp(raw[..., 2:4]) * s
    return out
