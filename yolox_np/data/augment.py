"""The official YOLOX training augmentations as small pure functions with an explicit ``rng``.

Images are BGR uint8 (H, W, 3); boxes are (G, 4) xyxy float32 in pixels; classes (G,) int64. Every
random draw comes from the ``np.random.Generator`` passed in, so a seed reproduces a result exactly.
Pipeline (official ``MosaicDetection`` + ``TrainTransform``): mosaic -> random affine -> mixup ->
HSV -> horizontal flip -> letterbox; :class:`YoloxAugment` composes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from yolox_np.data.kernels import bgr_to_hsv_kernel, hsv_to_bgr_kernel, warp_affine_kernel
from yolox_np.data.preprocess import letterbox, resize_bilinear

# -- input checks -----------------------------------------------------------------------------------------


def _check_image(img, name: str = "img") -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array, got {type(img).__name__}")
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{name} must be a uint8 (H, W, 3) BGR image, got {img.dtype} {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {img.shape}")
    return img


def _check_boxes(boxes, name: str = "boxes") -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (G, 4) xyxy, got {boxes.shape}")
    bad = ~np.isfinite(boxes).all(axis=1)
    if bad.any():
        raise ValueError(f"{name}[{int(np.argmax(bad))}] has a non-finite coordinate: {boxes[np.argmax(bad)]}")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"{name}[{k}] has x2 < x1 or y2 < y1: {boxes[k]}")
    return boxes


def _check_classes(classes, num_boxes: int, name: str = "classes") -> np.ndarray:
    classes = np.asarray(classes)
    if classes.size == 0 and num_boxes == 0:
        return classes.astype(np.int64).reshape(0)
    if classes.shape != (num_boxes,):
        raise ValueError(f"{name} must have shape ({num_boxes},) to match the boxes, got {classes.shape}")
    if not np.issubdtype(classes.dtype, np.integer):
        if not np.all(np.isfinite(classes)) or np.any(classes != np.round(classes)):
            raise ValueError(f"{name} must hold integer class ids, got {classes}")
    classes = classes.astype(np.int64)
    if np.any(classes < 0):
        raise ValueError(f"{name}[{int(np.argmax(classes < 0))}] is negative")
    return classes


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    return rng


def _check_size(size, name: str = "out_size") -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be (H, W), got {size!r}") from err
    if height <= 0 or width <= 0 or tuple(size) != (height, width):
        raise ValueError(f"{name} must be two positive integers (H, W), got {size!r}")
    return height, width


def _check_prob(value, name: str) -> float:
    if not (isinstance(value, (int, float, np.floating)) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_range(value, name: str, centre: float = 0.0, positive: bool = False) -> tuple[float, float]:
    """A number v means U(centre - v, centre + v); a pair (lo, hi) means U(lo, hi)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        lo, hi = centre - float(value), centre + float(value)
    else:
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}") from err
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"{name} must be a finite (low, high) pair with low <= high, got {value!r}")
    if positive and lo <= 0:
        raise ValueError(f"{name} must stay positive, got the range ({lo}, {hi})")
    return lo, hi


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(G, 4) x1, y1, x2, y2 -> (G, 4) cx, cy, w, h."""
    out = np.empty_like(boxes)
    out[:, 0] = (boxes[:, 0] + boxes[:, 2]) / 2
    out[:, 1] = (boxes[:, 1] + boxes[:, 3]) / 2
    out[:, 2] = boxes[:, 2] - boxes[:, 0]
    out[:, 3] = boxes[:, 3] - boxes[:, 1]
    return out


# -- horizontal flip ------------------------------------------------------------------------------------------


def hflip(img, boxes_xyxy):
    """Mirror the image left-right and its boxes with it: x1' = W - x2, x2' = W - x1.

    img (H, W, 3) uint8, boxes_xyxy (G, 4) -> (flipped image, flipped boxes (G, 4) float32).
    """
    img = _check_image(img)
    boxes = _check_boxes(boxes_xyxy, "boxes_xyxy")
    ### BEGIN SOLUTION
    # HINT: reverse the image's columns; new x1 = W - old x2, new x2 = W - old x1; y is unchanged.
    width = img.shape[1]
    flipped = np.ascontiguousarray(img[:, ::-1])
    new_boxes = boxes.copy()
    new_boxes[:, 0] = width - boxes[:, 2]
    new_boxes[:, 2] = width - boxes[:, 0]
    return flipped, new_boxes
    ### END SOLUTION


# -- HSV in OpenCV's 8-bit convention (H in 0..179, S and V in 0..255) --------------------------------

_HSV_SHIFT = 12  # OpenCV's fixed-point precision for BGR -> HSV
_S_DIV = np.zeros(256, dtype=np.int64)
_S_DIV[1:] = np.rint((255 << _HSV_SHIFT) / np.arange(1, 256, dtype=np.float64))
_H_DIV = np.zeros(256, dtype=np.int64)
_H_DIV[1:] = np.rint((180 << _HSV_SHIFT) / (6.0 * np.arange(1, 256, dtype=np.float64)))

# For each hue sector, which of (v, p, q, t) goes to (b, g, r).
_SECTOR_SOURCES = np.array([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]])


def bgr_to_hsv(img) -> np.ndarray:
    """BGR uint8 (H, W, 3) -> HSV uint8 (H, W, 3), H in 0..179, as OpenCV's ``COLOR_BGR2HSV`` computes it:
    V = max, S = 255 (V - min) / V, H = 30 (g - b) / (V - min) (+60, +120 for a green / blue maximum),
    each through OpenCV's 12-bit fixed-point tables. Fast kernel; :func:`bgr_to_hsv_numpy` is the
    readable reference."""
    img = _check_image(img)
    return bgr_to_hsv_kernel(np.ascontiguousarray(img), _S_DIV, _H_DIV)


def bgr_to_hsv_numpy(img) -> np.ndarray:
    """Reference NumPy formulation of :func:`bgr_to_hsv` (same results, slower)."""
    img = _check_image(img)
    b, g, r = (img[..., k].astype(np.int64) for k in range(3))
    v = np.maximum(np.maximum(b, g), r)
    diff = v - np.minimum(np.minimum(b, g), r)
    half = 1 << (_HSV_SHIFT - 1)
    s = (diff * _S_DIV[v] + half) >> _HSV_SHIFT
    # r is the maximum first, then g, then b (OpenCV's priority when channels tie)
    h = np.where(v == r, g - b, np.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * _H_DIV[diff] + half) >> _HSV_SHIFT
    h = np.where(h < 0, h + 180, h)
    return np.stack([h, s, v], axis=-1).astype(np.uint8)


def hsv_to_bgr(hsv) -> np.ndarray:
    """HSV uint8 (H, W, 3), H in 0..179 -> BGR uint8 with OpenCV's float32 formulas (``COLOR_HSV2BGR``):
    sector = floor(H / 30), f = H / 30 - sector, (p, q, t) = V (1 - S), V (1 - S f), V (1 - S (1 - f)).
    Fast kernel; :func:`hsv_to_bgr_numpy` is the readable reference."""
    hsv = _check_image(hsv, "hsv")
    return hsv_to_bgr_kernel(np.ascontiguousarray(hsv), _SECTOR_SOURCES)


def hsv_to_bgr_numpy(hsv) -> np.ndarray:
    """Reference NumPy formulation of :func:`hsv_to_bgr` (same results, slower)."""
    hsv = _check_image(hsv, "hsv")
    h = hsv[..., 0].astype(np.float32) * np.float32(6.0 / 180.0)
    s = hsv[..., 1].astype(np.float32) * np.float32(1.0 / 255.0)
    v = hsv[..., 2].astype(np.float32) * np.float32(1.0 / 255.0)
    h = np.fmod(h, np.float32(6.0))
    sector = np.floor(h).astype(np.int64)
    h = h - sector.astype(np.float32)
    outside = (sector < 0) | (sector >= 6)
    sector[outside] = 0
    h[outside] = 0.0
    one = np.float32(1.0)
    table = np.stack([v, v * (one - s), v * (one - s * h), v * (one - s * (one - h))], axis=-1)
    bgr = np.take_along_axis(table, _SECTOR_SOURCES[sector], axis=-1)
    return np.clip(np.rint(bgr * np.float32(255.0)), 0, 255).astype(np.uint8)


def augment_hsv(img, rng, hgain: float = 5, sgain: float = 30, vgain: float = 30) -> np.ndarray:
    """Random hue/saturation/value shift (official ``augment_hsv``); returns a new BGR uint8 image.

    Gains U(-1, 1) * (hgain, sgain, vgain), each zeroed with probability 1/2, truncated to integers;
    H <- (H + dH) mod 180, S and V <- clip(. + d, 0, 255).
    """
    img = _check_image(img)
    rng = _check_rng(rng)
    gains = np.array([hgain, sgain, vgain], dtype=np.float64)
    if not np.all(np.isfinite(gains)) or np.any(gains < 0):
        raise ValueError(f"hgain, sgain, vgain must be finite and >= 0, got {tuple(gains)}")
    shifts = rng.uniform(-1.0, 1.0, 3) * gains
    shifts *= rng.integers(0, 2, 3)
    shifts = shifts.astype(np.int16)
    hsv = bgr_to_hsv(img).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + shifts[0]) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] + shifts[1], 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] + shifts[2], 0, 255)
    return hsv_to_bgr(hsv.astype(np.uint8))


# -- random affine -----------------------------------------------------------------------------------------


def _check_matrix(matrix) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 3) or not np.all(np.isfinite(matrix)):
        raise ValueError(f"affine matrix must be a finite (2, 3) array, got shape {matrix.shape}")
    return matrix


def invert_affine(matrix) -> np.ndarray:
    """Inverse of a (2, 3) affine map (as ``cv2.invertAffineTransform``); ValueError if singular."""
    m = _check_matrix(matrix)
    det = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    if det == 0.0:
        raise ValueError(f"affine matrix is singular (determinant 0): {m.tolist()}")
    d = 1.0 / det
    a11, a22, a12, a21 = m[1, 1] * d, m[0, 0] * d, -m[0, 1] * d, -m[1, 0] * d
    b1 = -a11 * m[0, 2] - a12 * m[1, 2]
    b2 = -a21 * m[0, 2] - a22 * m[1, 2]
    return np.array([[a11, a12, b1], [a21, a22, b2]])


_AB_BITS = 10  # OpenCV warpAffine: source coordinates in 1/1024 px, then rounded to 1/32 px
_INTER_BITS = 5
_COEF_BITS = 15  # bilinear weights in 1/32768


def _warp_rows_and_steps(matrix, out_size):
    """OpenCV's warpAffine source coordinates in 1/1024 px, split into a per-row and a per-column term:
    x_src(x, y) = x_row[y] + x_step[x] (and likewise y), rounding offset to 1/32 px included."""
    inv = invert_affine(matrix)
    out_h, out_w = out_size
    scale = 1 << _AB_BITS
    round_delta = scale >> (_INTER_BITS + 1)
    xs = np.arange(out_w, dtype=np.float64)
    ys = np.arange(out_h, dtype=np.float64)
    x_step = np.rint(inv[0, 0] * xs * scale).astype(np.int64)
    y_step = np.rint(inv[1, 0] * xs * scale).astype(np.int64)
    x_row = np.rint((inv[0, 1] * ys + inv[0, 2]) * scale).astype(np.int64) + round_delta
    y_row = np.rint((inv[1, 1] * ys + inv[1, 2]) * scale).astype(np.int64) + round_delta
    return x_row, y_row, x_step, y_step


def _check_warp_args(img, matrix, out_size, border):
    img = _check_image(img)
    out_size = _check_size(out_size)
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)) or not 0 <= border <= 255:
        raise ValueError(f"border must be an integer grey level in 0..255, got {border!r}")
    return img, _check_matrix(matrix), out_size, int(border)


def warp_affine(img, matrix, out_size, border: int = 114) -> np.ndarray:
    """Warp ``img`` by the (2, 3) map ``matrix`` (source -> output pixel coordinates) to ``out_size`` (H, W).

    Inverse mapping: output pixel (x, y) samples the source at ``invert_affine(matrix) @ (x, y, 1)``,
    bilinearly, with a constant ``border`` outside the source. The arithmetic follows OpenCV's 8-bit
    ``warpAffine`` (coordinates rounded to 1/32 px, integer weights summing to 2^15, round half up).
    Fast kernel; :func:`warp_affine_numpy` is the readable reference.
    """
    img, matrix, out_size, border = _check_warp_args(img, matrix, out_size, border)
    x_row, y_row, x_step, y_step = _warp_rows_and_steps(matrix, out_size)
    return warp_affine_kernel(np.ascontiguousarray(img), x_row, y_row, x_step, y_step, border)


def warp_affine_numpy(img, matrix, out_size, border: int = 114) -> np.ndarray:
    """Reference NumPy formulation of :func:`warp_affine` (same results, slower)."""
    img, matrix, out_size, border = _check_warp_args(img, matrix, out_size, border)
    out_h, out_w = out_size
    src_h, src_w = img.shape[:2]
    x_row, y_row, x_step, y_step = _warp_rows_and_steps(matrix, out_size)
    fx = (x_row[:, None] + x_step[None, :]) >> (_AB_BITS - _INTER_BITS)  # source x in 1/32 px
    fy = (y_row[:, None] + y_step[None, :]) >> (_AB_BITS - _INTER_BITS)
    tab = 1 << _INTER_BITS
    ax = (fx & (tab - 1)).astype(np.int32)
    ay = (fy & (tab - 1)).astype(np.int32)
    x0 = fx >> _INTER_BITS
    y0 = fy >> _INTER_BITS

    # A one-pixel frame of border value lets every out-of-range neighbour read the border. Channels go
    # first so that each gather and weighted sum runs over long contiguous rows.
    padded = np.full((3, src_h + 2, src_w + 2), border, dtype=np.int32)
    padded[:, 1:-1, 1:-1] = img.transpose(2, 0, 1)
    planes = padded.reshape(3, -1)
    stride = src_w + 2
    xa = np.clip(x0, -1, src_w) + 1
    xb = np.clip(x0 + 1, -1, src_w) + 1
    ya = (np.clip(y0, -1, src_h) + 1) * stride
    yb = (np.clip(y0 + 1, -1, src_h) + 1) * stride
    unit = 1 << (_COEF_BITS - 2 * _INTER_BITS)
    wx0, wy0 = tab - ax, tab - ay
    acc = np.full((3, out_h * out_w), 1 << (_COEF_BITS - 1), dtype=np.int32)
    for rows, wy in ((ya, wy0), (yb, ay)):
        for cols, wx in ((xa, wx0), (xb, ax)):
            acc += np.take(planes, (rows + cols).ravel(), axis=1) * (wy * wx * unit).ravel()
    acc >>= _COEF_BITS
    return np.ascontiguousarray(acc.astype(np.uint8).reshape(3, out_h, out_w).transpose(1, 2, 0))


def affine_boxes(boxes, matrix, out_size) -> np.ndarray:
    """Map boxes through ``matrix``: the 4 corners are transformed, the axis-aligned min/max taken, then
    clipped to [0, W] x [0, H] of ``out_size`` (H, W). (G, 4) -> (G, 4) float32."""
    boxes = _check_boxes(boxes)
    m = _check_matrix(matrix)
    out_h, out_w = _check_size(out_size)
    if len(boxes) == 0:
        return boxes.reshape(0, 4)
    b = boxes.astype(np.float64)
    xs = b[:, [0, 2, 0, 2]]
    ys = b[:, [1, 3, 3, 1]]
    tx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    ty = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    out = np.stack([tx.min(1), ty.min(1), tx.max(1), ty.max(1)], axis=1)
    out[:, 0::2] = out[:, 0::2].clip(0, out_w)
    out[:, 1::2] = out[:, 1::2].clip(0, out_h)
    return out.astype(np.float32)


def affine_matrix(rng, out_size, degrees=10.0, translate=0.1, scales=(0.1, 2.0), shear=2.0):
    """Draw the official random affine map; returns (M (2, 3) float64, scale).

    Draw order: angle ~ U(+-degrees), scale ~ U(scales), shear_x, shear_y ~ U(+-shear) degrees,
    tx ~ U(+-translate) * W, ty ~ U(+-translate) * H. A number v means U(-v, v) (for ``scales``,
    U(1 - v, 1 + v)); a pair means U(low, high). M = rotation-scale about the origin
    [[a, b, 0], [-b, a, 0]] (a = scale cos, b = scale sin), sheared row0 += sy * row1, row1 += sx * row0,
    translation in the last column.
    """
    rng = _check_rng(rng)
    out_h, out_w = _check_size(out_size)
    angle = rng.uniform(*_check_range(degrees, "degrees"))
    scale = rng.uniform(*_check_range(scales, "scales", centre=1.0, positive=True))
    shear_lo, shear_hi = _check_range(shear, "shear")
    shear_x = math.tan(math.radians(rng.uniform(shear_lo, shear_hi)))
    shear_y = math.tan(math.radians(rng.uniform(shear_lo, shear_hi)))
    trans_lo, trans_hi = _check_range(translate, "translate")
    a = scale * math.cos(math.radians(angle))
    b = scale * math.sin(math.radians(angle))
    rot = np.array([[a, b, 0.0], [-b, a, 0.0]])
    m = np.empty((2, 3))
    m[0] = rot[0] + shear_y * rot[1]
    m[1] = rot[1] + shear_x * rot[0]
    m[0, 2] = rng.uniform(trans_lo, trans_hi) * out_w
    m[1, 2] = rng.uniform(trans_lo, trans_hi) * out_h
    return m, scale


def random_affine(img, boxes, rng, degrees=10.0, translate=0.1, scales=(0.1, 2.0), shear=2.0,
                  out_size=None, border: int = 114):
    """Official random affine: draw M (:func:`affine_matrix`), warp to ``out_size`` (H, W; default the
    input size; the output is the top-left window of the transformed image), map the boxes.

    Returns (image (H, W, 3) uint8, boxes (G, 4) float32); boxes are not filtered.
    """
    img = _check_image(img)
    boxes = _check_boxes(boxes)
    out_size = img.shape[:2] if out_size is None else _check_size(out_size)
    m, _ = affine_matrix(rng, out_size, degrees, translate, scales, shear)
    return warp_affine(img, m, out_size, border), affine_boxes(boxes, m, out_size)


# -- mosaic and mixup -----------------------------------------------------------------------------------------


def _resize_by(img: np.ndarray, ratio: float) -> np.ndarray:
    """Resize to (int(w * ratio), int(h * ratio)) (at least 1 px), OpenCV INTER_LINEAR."""
    h0, w0 = img.shape[:2]
    out_w, out_h = max(1, int(w0 * ratio)), max(1, int(h0 * ratio))
    if (out_w, out_h) == (w0, h0):
        return img
    return resize_bilinear(img, out_w, out_h)


def mosaic(samples, rng, out_size):
    """Official 4-image mosaic on a (2H, 2W) canvas filled with 114.

    ``samples``: four (img, boxes_xyxy, classes). Centre xc ~ int U(0.5W, 1.5W), yc ~ int U(0.5H, 1.5H)
    (yc drawn first); each image is resized by min(H/h0, W/w0) and placed with its bottom-right /
    bottom-left / top-right / top-left corner on the centre (samples 0..3: top-left, top-right,
    bottom-left, bottom-right quadrant), cropped at the canvas edge. Boxes are scaled, shifted and
    clipped to [0, 2W] x [0, 2H]. Returns (canvas (2H, 2W, 3) uint8, boxes (N, 4) float32, classes (N,)).
    """
    rng = _check_rng(rng)
    height, width = _check_size(out_size)
    samples = list(samples)
    if len(samples) != 4:
        raise ValueError(f"mosaic needs exactly 4 samples (img, boxes, classes), got {len(samples)}")
    yc = int(rng.uniform(0.5 * height, 1.5 * height))
    xc = int(rng.uniform(0.5 * width, 1.5 * width))
    canvas = np.full((2 * height, 2 * width, 3), 114, dtype=np.uint8)
    all_boxes, all_classes = [], []
    for k, sample in enumerate(samples):
        if len(sample) != 3:
            raise ValueError(f"mosaic sample {k} must be (img, boxes, classes), got {len(sample)} items")
        img = _check_image(sample[0], f"samples[{k}] image")
        boxes = _check_boxes(sample[1], f"samples[{k}] boxes")
        classes = _check_classes(sample[2], len(boxes), f"samples[{k}] classes")
        h0, w0 = img.shape[:2]
        ratio = min(height / h0, width / w0)
        img = _resize_by(img, ratio)
        h, w = img.shape[:2]
        # top-left corner of the whole resized image on the canvas
        left = xc - w if k in (0, 2) else xc
        top = yc - h if k in (0, 1) else yc
        x1, y1 = max(left, 0), max(top, 0)
        x2, y2 = min(left + w, 2 * width), min(top + h, 2 * height)
        canvas[y1:y2, x1:x2] = img[y1 - top : y2 - top, x1 - left : x2 - left]
        shifted = boxes * np.float32(ratio)
        shifted[:, 0::2] += left
        shifted[:, 1::2] += top
        all_boxes.append(shifted)
        all_classes.append(classes)
    boxes = np.concatenate(all_boxes).astype(np.float32)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, 2 * width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, 2 * height)
    return canvas, boxes, np.concatenate(all_classes)


def mixup(img, boxes, classes, cp_img, cp_boxes, cp_classes, rng, mixup_scale=(0.5, 1.5)):
    """Official YOLOX MixUp of ``img`` (H, W) with a second image ``cp_img``.

    Jitter f ~ U(mixup_scale), flip = U(0, 1) > 0.5; cp_img is letterboxed (114, top-left) into H x W,
    resized by f, optionally mirrored, put on a black canvas of max sizes and cropped at a random offset
    (y offset drawn first); the result is trunc(0.5 img + 0.5 crop). Its boxes (scaled by r f, clipped
    to the jittered size, mirrored, shifted, clipped to the image) are appended without filtering.
    Returns (image uint8 (H, W, 3), boxes (N + M, 4) float32, classes (N + M,) int64).
    """
    img = _check_image(img)
    boxes = _check_boxes(boxes)
    classes = _check_classes(classes, len(boxes))
    cp_img = _check_image(cp_img, "cp_img")
    cp_boxes = _check_boxes(cp_boxes, "cp_boxes")
    cp_classes = _check_classes(cp_classes, len(cp_boxes), "cp_classes")
    rng = _check_rng(rng)
    lo, hi = _check_range(mixup_scale, "mixup_scale", centre=1.0, positive=True)
    height, width = img.shape[:2]

    jitter = rng.uniform(lo, hi)
    flip = rng.uniform(0.0, 1.0) > 0.5
    ratio = min(height / cp_img.shape[0], width / cp_img.shape[1])
    boxed = np.full((height, width, 3), 114, dtype=np.uint8)
    resized = _resize_by(cp_img, ratio)
    boxed[: resized.shape[0], : resized.shape[1]] = resized
    jittered = _resize_by(boxed, jitter)
    jh, jw = jittered.shape[:2]
    moved = cp_boxes * np.float32(ratio * jitter)
    moved[:, 0::2] = moved[:, 0::2].clip(0, jw)
    moved[:, 1::2] = moved[:, 1::2].clip(0, jh)
    if flip:
        jittered, moved = hflip(jittered, moved)

    canvas = np.zeros((max(jh, height), max(jw, width), 3), dtype=np.uint8)
    canvas[:jh, :jw] = jittered
    y_off = int(rng.integers(0, canvas.shape[0] - height)) if canvas.shape[0] > height else 0
    x_off = int(rng.integers(0, canvas.shape[1] - width)) if canvas.shape[1] > width else 0
    crop = canvas[y_off : y_off + height, x_off : x_off + width]
    moved[:, 0::2] = (moved[:, 0::2] - x_off).clip(0, width)
    moved[:, 1::2] = (moved[:, 1::2] - y_off).clip(0, height)

    half = np.float32(0.5)
    blended = (half * img.astype(np.float32) + half * crop.astype(np.float32)).astype(np.uint8)
    return blended, np.concatenate([boxes, moved]).astype(np.float32), np.concatenate([classes, cp_classes])


# -- final step: letterbox and targets -------------------------------------------------------------------


def _targets(classes: np.ndarray, boxes_cxcywh: np.ndarray) -> np.ndarray:
    return np.concatenate([classes[:, None].astype(np.float32), boxes_cxcywh.astype(np.float32)], axis=1)


def val_transform(img, boxes, classes, out_size):
    """Letterbox only: (chw float32 (3, H, W), targets (G, 5) [class, cx, cy, w, h] * r), every box kept."""
    img = _check_image(img)
    boxes = _check_boxes(boxes)
    classes = _check_classes(classes, len(boxes))
    chw, ratio = letterbox(img, _check_size(out_size))
    return chw, _targets(classes, xyxy_to_cxcywh(boxes) * np.float32(ratio))


def train_transform(img, boxes, classes, rng, out_size, hsv_prob: float = 1.0, flip_prob: float = 0.5,
                    max_labels: int = 120):
    """Official ``TrainTransform``: HSV (prob ``hsv_prob``), flip (prob ``flip_prob``), letterbox,
    boxes -> (cx, cy, w, h) * r, keep boxes with min(w, h) > 1 px; if none survive, the image and boxes
    before HSV/flip are letterboxed instead (all boxes kept). An image without boxes skips HSV and flip.

    Returns (chw float32 (3, H, W) BGR 0..255, targets (G', 5) float32 [class, cx, cy, w, h]) with
    G' <= max_labels (extra rows cut in input order).
    """
    img = _check_image(img)
    boxes = _check_boxes(boxes)
    classes = _check_classes(classes, len(boxes))
    rng = _check_rng(rng)
    out_size = _check_size(out_size)
    hsv_prob = _check_prob(hsv_prob, "hsv_prob")
    flip_prob = _check_prob(flip_prob, "flip_prob")
    max_labels = _check_positive_int(max_labels, "max_labels")
    if len(boxes) == 0:
        chw, _ = letterbox(img, out_size)
        return chw, np.zeros((0, 5), dtype=np.float32)

    augmented, moved = img, boxes
    if rng.random() < hsv_prob:
        augmented = augment_hsv(augmented, rng)
    if rng.random() < flip_prob:
        augmented, moved = hflip(augmented, moved)
    chw, ratio = letterbox(augmented, out_size)
    cxcywh = xyxy_to_cxcywh(moved) * np.float32(ratio)
    keep = np.minimum(cxcywh[:, 2], cxcywh[:, 3]) > 1
    if keep.any():
        targets = _targets(classes[keep], cxcywh[keep])
    else:
        chw, ratio = letterbox(img, out_size)
        targets = _targets(classes, xyxy_to_cxcywh(boxes) * np.float32(ratio))
    return chw, targets[:max_labels]


# -- composition ------------------------------------------------------------------------------------------------


def _pick_mixup_partner(dataset, rng: np.random.Generator, attempts: int = 64):
    """A random dataset item with at least one box (the official loop, bounded); None if none found."""
    for _ in range(attempts):
        j = int(rng.integers(0, len(dataset)))
        if hasattr(dataset, "annotation"):
            if len(dataset.annotation(j)[0]) == 0:
                continue
            return dataset[j]
        item = dataset[j]
        if len(item[1]):
            return item
    return None


@dataclass
class YoloxAugment:
    """The official training augmentation (``MosaicDetection`` + ``TrainTransform``) as one object.

    ``augment(dataset, index, img_size, rng) -> (chw float32 (3, H, W), targets (G, 5), image_id)``.
    With probability ``mosaic_prob`` (and ``enable_mosaic``): mosaic of ``index`` + 3 random images,
    random affine (``degrees``, ``translate``, ``mosaic_scale``, ``shear``), MixUp (``enable_mixup``,
    ``mixup_prob``, ``mixup_scale``); then always :func:`train_transform` (``hsv_prob``, ``flip_prob``).
    Call :meth:`close_mosaic` for the final no-augmentation epochs (HSV and flip stay on, as official).
    """

    mosaic_prob: float = 1.0
    mixup_prob: float = 1.0
    enable_mixup: bool = True
    hsv_prob: float = 1.0
    flip_prob: float = 0.5
    degrees: float = 10.0
    translate: float = 0.1
    mosaic_scale: tuple = (0.1, 2.0)
    mixup_scale: tuple = (0.5, 1.5)
    shear: float = 2.0
    max_labels: int = 120
    enable_mosaic: bool = True

    def __post_init__(self):
        for name in ("mosaic_prob", "mixup_prob", "hsv_prob", "flip_prob"):
            setattr(self, name, _check_prob(getattr(self, name), name))
        _check_range(self.degrees, "degrees")
        _check_range(self.translate, "translate")
        _check_range(self.shear, "shear")
        self.mosaic_scale = _check_range(self.mosaic_scale, "mosaic_scale", centre=1.0, positive=True)
        self.mixup_scale = _check_range(self.mixup_scale, "mixup_scale", centre=1.0, positive=True)
        self.max_labels = _check_positive_int(self.max_labels, "max_labels")
        self.enable_mixup = bool(self.enable_mixup)
        self.enable_mosaic = bool(self.enable_mosaic)

    @classmethod
    def preset(cls, model: str = "default", **overrides) -> YoloxAugment:
        """Official settings per model: ``default`` (S/M/L/X/Darknet53), ``tiny``, ``nano``."""
        presets = {
            "default": {},
            "tiny": {"mosaic_scale": (0.5, 1.5), "enable_mixup": False},
            "nano": {"mosaic_scale": (0.5, 1.5), "enable_mixup": False, "mosaic_prob": 0.5},
        }
        if model not in presets:
            raise ValueError(f"unknown augmentation preset {model!r}; choose one of {sorted(presets)}")
        return cls(**{**presets[model], **overrides})

    def close_mosaic(self) -> None:
        """Switch mosaic, random affine and MixUp off (the official last-epochs "no aug" phase)."""
        self.enable_mosaic = False

    def __call__(self, dataset, index: int, img_size, rng):
        rng = _check_rng(rng)
        img_size = _check_size(img_size, "img_size")
        if len(dataset) == 0:
            raise ValueError("cannot augment from an empty dataset")
        if self.enable_mosaic and rng.random() < self.mosaic_prob:
            others = rng.integers(0, len(dataset), size=3)
            items = [dataset[int(j)] for j in (index, *others)]
            image_id = items[0][3]
            canvas, boxes, classes = mosaic([item[:3] for item in items], rng, img_size)
            img, boxes = random_affine(canvas, boxes, rng, self.degrees, self.translate, self.mosaic_scale,
                                       self.shear, out_size=img_size)
            if self.enable_mixup and len(boxes) > 0 and rng.random() < self.mixup_prob:
                partner = _pick_mixup_partner(dataset, rng)
                if partner is not None:
                    img, boxes, classes = mixup(img, boxes, classes, *partner[:3], rng, self.mixup_scale)
        else:
            img, boxes, classes, image_id = dataset[index]
        chw, targets = train_transform(img, boxes, classes, rng, img_size, self.hsv_prob, self.flip_prob,
                                       self.max_labels)
        return chw, targets, image_id
