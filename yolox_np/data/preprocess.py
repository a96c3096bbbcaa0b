"""Inference pre-processing as the official code does it: read BGR, letterbox with OpenCV's bilinear resize.

Official ``preproc`` (``ValTransform(legacy=False)``): r = min(H_in / h, W_in / w); resize to
(int(w * r), int(h * r)) with ``cv2.INTER_LINEAR``; paste at the top-left of an H_in x W_in canvas of 114;
HWC -> CHW float32, BGR, values 0..255, no mean/std. ``resize_bilinear`` reproduces OpenCV's 8-bit
fixed-point bilinear arithmetic so the network sees exactly the pixels the official pipeline feeds it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ImageReadError",
    "load_image",
    "resize_bilinear",
    "letterbox",
    "scale_boxes_back",
    "INTER_RESIZE_COEF_BITS",
]

# OpenCV's fixed-point precision for 8-bit bilinear weights: multiples of 1/2048.
INTER_RESIZE_COEF_BITS = 11
INTER_RESIZE_COEF_SCALE = 1 << INTER_RESIZE_COEF_BITS


class ImageReadError(ValueError):
    """A file exists but cannot be decoded as an image."""


# ---------------------------------------------------------------------------------------------------
# reading


def _pil_to_bgr(im):
    """PIL image of any mode -> (H, W, 3) uint8 BGR (grey replicated, alpha dropped)."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit data: keep the high byte, as cv2.imread does for 16-bit images read as 8-bit colour
        grey = (np.clip(np.asarray(im, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if im.mode == "F":
        grey = np.clip(np.rint(np.asarray(im, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _array_to_bgr(arr):
    """uint8 array (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA -> (H, W, 3) uint8 BGR."""
    if arr.dtype != np.uint8:
        raise ValueError(
            f"an image array must be uint8 (H, W, 3) BGR, got dtype {arr.dtype}; "
            "convert it first, e.g. np.clip(a, 0, 255).astype(np.uint8)"
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"an image array must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"the image is empty (shape {arr.shape})")
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def load_image(source):
    """Read an image as (H, W, 3) uint8 **BGR** (the channel order ``cv2.imread`` gives the official code).

    ``source`` is a file path, a PIL image (taken as RGB) or a uint8 array (taken as already BGR; (H, W)
    greyscale and (H, W, 4) BGRA are accepted). Greyscale is replicated to three channels, alpha is
    dropped, 16-bit images keep their high byte, and a file's EXIF orientation is applied (as cv2.imread
    does). Raises ``FileNotFoundError`` for a missing file and ``ImageReadError`` (a ``ValueError``) naming
    the file when it cannot be decoded.
    """
    if isinstance(source, np.ndarray):
        return _array_to_bgr(source)
    if isinstance(source, Image.Image):
        return _pil_to_bgr(source)
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"load_image takes a path, a PIL image or a uint8 array, got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.is_dir():
        raise ImageReadError(f"cannot read image {path}: it is a directory")
    try:
        with Image.open(path) as im:
            im.load()
            img = _pil_to_bgr(ImageOps.exif_transpose(im))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from err
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageReadError(f"cannot read image {path}: it has no pixels ({img.shape[1]}x{img.shape[0]})")
    return img


# ---------------------------------------------------------------------------------------------------
# OpenCV-exact bilinear resize


def _bilinear_taps(n_in, n_out):
    """Source indices and 11-bit weights along one axis, as OpenCV's INTER_LINEAR computes them.

    Returns ``left``, ``right`` (n_out,) int64 and ``w_left``, ``w_right`` (n_out,) int32 with
    w_left + w_right = 2048.
    """
    scale = 1.0 / (n_out / n_in)  # OpenCV stores dst/src and inverts it, in double
    pos = ((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)  # half-pixel centres
    left = np.floor(pos).astype(np.int64)
    frac = pos - left.astype(np.float32)  # float32, as OpenCV keeps it
    before = left < 0
    frac[before], left[before] = 0, 0
    after = left >= n_in - 1
    frac[after], left[after] = 0, n_in - 1
    one, coef_scale = np.float32(1), np.float32(INTER_RESIZE_COEF_SCALE)
    w_left = np.rint((one - frac) * coef_scale).astype(np.int32)  # round half to even, like cvRound
    w_right = np.rint(frac * coef_scale).astype(np.int32)
    right = np.minimum(left + 1, n_in - 1)
    return left, right, w_left, w_right


def resize_bilinear(img_uint8, out_w, out_h):
    """(H, W, C) or (H, W) uint8 -> (out_h, out_w[, C]) uint8, bit-exact with OpenCV's 8-bit INTER_LINEAR.

    Pass 1 (rows): integer sums ``src[x0] * a0 + src[x1] * a1`` with weights in 1/2048 units (values up to
    255 * 2048). Pass 2 (columns), as OpenCV's vectorised 8-bit path: ``(((b0 * (top >> 4)) >> 16) +
    ((b1 * (bottom >> 4)) >> 16) + 2) >> 2``, i.e. 22 bits of scale removed in two roundings.
    (OpenCV switches an exact 2x downscale to INTER_AREA; this formula gives the same 2x2 means then.)
    """
    img = np.asarray(img_uint8)
    if img.dtype != np.uint8:
        raise ValueError(f"resize_bilinear needs a uint8 image, got dtype {img.dtype}")
    if img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"resize_bilinear needs an (H, W) or (H, W, C) image with H, W > 0, got shape {img.shape}")
    for value, name in ((out_w, "out_w"), (out_h, "out_h")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    grey = img.ndim == 2
    src = (img[:, :, None] if grey else img).astype(np.int32)
    h, w = src.shape[:2]
    x0, x1, a0, a1 = _bilinear_taps(w, int(out_w))
    y0, y1, b0, b1 = _bilinear_taps(h, int(out_h))
    rows = src[:, x0] * a0[None, :, None] + src[:, x1] * a1[None, :, None]  # (h, out_w, C)
    top = (rows[y0] >> 4).astype(np.int64)
    bottom = (rows[y1] >> 4).astype(np.int64)
    out = (((b0[:, None, None] * top) >> 16) + ((b1[:, None, None] * bottom) >> 16) + 2) >> 2
    out = np.clip(out, 0, 255).astype(np.uint8)
    return out[:, :, 0] if grey else out


# ---------------------------------------------------------------------------------------------------
# letterbox


def letterbox(img_bgr, size=(416, 416), pad_value=114):
    """Official ``preproc``: (H, W, 3) uint8 BGR -> ((3, size_h, size_w) float32, ratio r).

    ``size`` is (height, width). r = min(size_h / H, size_w / W); the image is resized to
    (int(W * r), int(H * r)) (truncated) with ``resize_bilinear`` and pasted at the top-left corner of a
    canvas filled with ``pad_value`` (padding right and bottom only). Boxes found on the result map back
    to the original image by dividing by r (``scale_boxes_back``).
    """
    img = np.asarray(img_bgr)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"letterbox needs an (H, W, 3) uint8 BGR image, got shape {img.shape}, dtype {img.dtype}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"letterbox got an empty image (shape {img.shape})")
    size = tuple(size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0 for s in size):
        raise ValueError(f"size must be (height, width) positive integers, got {size!r}")
    if isinstance(pad_value, bool) or not isinstance(pad_value, (int, np.integer)) or not 0 <= pad_value <= 255:
        raise ValueError(f"pad_value must be an integer in [0, 255], got {pad_value!r}")
    h, w = img.shape[:2]
    ratio = min(size[0] / h, size[1] / w)
    new_w, new_h = int(w * ratio), int(h * ratio)
    if new_w == 0 or new_h == 0:
        raise ValueError(
            f"image of {w}x{h} pixels shrinks to {new_w}x{new_h} at size {size}; its aspect ratio is too extreme"
        )
    canvas = np.full((size[0], size[1], 3), pad_value, dtype=np.uint8)
    canvas[:new_h, :new_w] = resize_bilinear(img, new_w, new_h)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32), ratio


def scale_boxes_back(boxes_xyxy, ratio):
    """Map (..., 4) xyxy boxes from the letterboxed input to the original image: divide by ``ratio``.

    No offset (the padding is right/bottom only) and no clipping, as the official evaluator. Keeps a
    float32 input float32.
    """
    boxes = np.asarray(boxes_xyxy)
    if boxes.dtype == object or not np.issubdtype(boxes.dtype, np.number):
        raise ValueError(f"boxes_xyxy must be numeric, got dtype {boxes.dtype}")
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes_xyxy must have shape (..., 4), got {boxes.shape}")
    if not np.issubdtype(boxes.dtype, np.floating):
        boxes = boxes.astype(np.float64)
    if not np.isfinite(boxes).all():
        i = np.argwhere(~np.isfinite(boxes))[0]
        raise ValueError(f"boxes_xyxy: non-finite value at index {tuple(int(v) for v in i)}")
    try:
        ratio = float(ratio)
    except (TypeError, ValueError):
        raise ValueError(f"ratio must be a positive number, got {ratio!r}") from None
    if not (np.isfinite(ratio) and ratio > 0):
        raise ValueError(f"ratio must be a positive finite number, got {ratio}")
    return boxes / ratio
