"""Numba per-pixel kernels for the augmentations; the NumPy formulations in ``augment.py``
(``bgr_to_hsv_numpy``, ``hsv_to_bgr_numpy``, ``warp_affine_numpy``) are the references they must equal."""

from __future__ import annotations

import math

import numba
import numpy as np

# float32 constants, so that the HSV -> BGR arithmetic stays in float32 exactly as OpenCV's does
_HUE_TO_SECTOR = np.float32(6.0 / 180.0)
_INV_255 = np.float32(1.0 / 255.0)
_F255 = np.float32(255.0)
_F1 = np.float32(1.0)
_F6 = np.float32(6.0)


@numba.njit(cache=True)
def bgr_to_hsv_kernel(img, s_div, h_div):
    """(H, W, 3) uint8 BGR -> uint8 HSV with OpenCV's 12-bit fixed-point tables ``s_div``, ``h_div``."""
    height, width = img.shape[0], img.shape[1]
    out = np.empty((height, width, 3), np.uint8)
    half = 1 << 11
    for y in range(height):
        for x in range(width):
            b, g, r = np.int64(img[y, x, 0]), np.int64(img[y, x, 1]), np.int64(img[y, x, 2])
            v = max(b, g, r)
            diff = v - min(b, g, r)
            s = (diff * s_div[v] + half) >> 12
            if v == r:
                num = g - b
            elif v == g:
                num = b - r + 2 * diff
            else:
                num = r - g + 4 * diff
            hue = (num * h_div[diff] + half) >> 12
            out[y, x, 0] = hue + 180 if hue < 0 else hue
            out[y, x, 1] = s
            out[y, x, 2] = v
    return out


@numba.njit(cache=True)
def hsv_to_bgr_kernel(hsv, sources):
    """(H, W, 3) uint8 HSV (H in 0..179) -> uint8 BGR; ``sources[sector]`` picks (v, p, q, t) for b, g, r."""
    height, width = hsv.shape[0], hsv.shape[1]
    out = np.empty((height, width, 3), np.uint8)
    table = np.empty(4, np.float32)
    for y in range(height):
        for x in range(width):
            h = np.float32(hsv[y, x, 0]) * _HUE_TO_SECTOR
            s = np.float32(hsv[y, x, 1]) * _INV_255
            v = np.float32(hsv[y, x, 2]) * _INV_255
            while h >= _F6:  # fmod(h, 6) for the non-negative h here
                h = h - _F6
            sector = int(math.floor(h))
            h = h - np.float32(sector)
            table[0] = v
            table[1] = v * (_F1 - s)
            table[2] = v * (_F1 - s * h)
            table[3] = v * (_F1 - s * (_F1 - h))
            for c in range(3):
                value = np.rint(table[sources[sector, c]] * _F255)
                out[y, x, c] = min(max(int(value), 0), 255)
    return out


@numba.njit(cache=True)
def warp_affine_kernel(img, x_row, y_row, x_step, y_step, border):
    """Bilinear inverse-mapping warp with OpenCV's fixed point.

    Source position of output pixel (x, y), in 1/1024 px: (x_row[y] + x_step[x], y_row[y] + y_step[x]),
    rounding offset included; it is cut to 1/32 px, weights are products of 1/32 fractions scaled to
    2^15 in total, the sum is rounded half up. Neighbours outside ``img`` read ``border``.
    """
    out_h, out_w = x_row.shape[0], x_step.shape[0]
    src_h, src_w = img.shape[0], img.shape[1]
    out = np.empty((out_h, out_w, 3), np.uint8)
    for y in range(out_h):
        for x in range(out_w):
            fx = (x_row[y] + x_step[x]) >> 5
            fy = (y_row[y] + y_step[x]) >> 5
            x0, y0 = fx >> 5, fy >> 5
            ax, ay = fx & 31, fy & 31
            w00 = (32 - ay) * (32 - ax) * 32
            w01 = (32 - ay) * ax * 32
            w10 = ay * (32 - ax) * 32
            w11 = ay * ax * 32
            x_in0, x_in1 = 0 <= x0 < src_w, 0 <= x0 + 1 < src_w
            y_in0, y_in1 = 0 <= y0 < src_h, 0 <= y0 + 1 < src_h
            for c in range(3):
                p00 = np.int64(img[y0, x0, c]) if (y_in0 and x_in0) else border
                p01 = np.int64(img[y0, x0 + 1, c]) if (y_in0 and x_in1) else border
                p10 = np.int64(img[y0 + 1, x0, c]) if (y_in1 and x_in0) else border
                p11 = np.int64(img[y0 + 1, x0 + 1, c]) if (y_in1 and x_in1) else border
                out[y, x, c] = (w00 * p00 + w01 * p01 + w10 * p10 + w11 * p11 + 16384) >> 15
    return out
