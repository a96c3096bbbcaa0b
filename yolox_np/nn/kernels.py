"""Numba kernels for the hot loops around the GEMMs: im2col/col2im, depthwise conv, max-pooling.

All kernels work on one NCHW image (C, H, W) or on a whole batch, write into preallocated outputs and are
compiled with `cache=True`. With `NUMBA_DISABLE_JIT=1` they run as plain (slow) Python, which is how a
student can step through them in a debugger.
"""

from __future__ import annotations

import numba
import numpy as np

njit = numba.njit(cache=True, nogil=True)


@njit
def im2col_image(x, k, stride, pad, ho, wo, col):
    """x (C, H, W) -> col (C*k*k, ho*wo); padded cells are 0.

    Row (c*k + ki)*k + kj holds x[c, oy*stride + ki - pad, ox*stride + kj - pad] for every output (oy, ox).
    """
    c_in, h, w = x.shape
    for c in range(c_in):
        for ki in range(k):
            for kj in range(k):
                row = (c * k + ki) * k + kj
                for oy in range(ho):
                    iy = oy * stride + ki - pad
                    base = oy * wo
                    if iy < 0 or iy >= h:
                        for ox in range(wo):
                            col[row, base + ox] = 0.0
                        continue
                    for ox in range(wo):
                        ix = ox * stride + kj - pad
                        if 0 <= ix < w:
                            col[row, base + ox] = x[c, iy, ix]
                        else:
                            col[row, base + ox] = 0.0


@njit
def col2im_image(col, k, stride, pad, ho, wo, dx):
    """Adjoint of `im2col_image`: dx (C, H, W) += scatter-add of col (C*k*k, ho*wo)."""
    c_in, h, w = dx.shape
    for c in range(c_in):
        for ki in range(k):
            for kj in range(k):
                row = (c * k + ki) * k + kj
                for oy in range(ho):
                    iy = oy * stride + ki - pad
                    if iy < 0 or iy >= h:
                        continue
                    base = oy * wo
                    for ox in range(wo):
                        ix = ox * stride + kj - pad
                        if 0 <= ix < w:
                            dx[c, iy, ix] += col[row, base + ox]


@njit
def depthwise_forward(x, w, stride, pad, out):
    """Depthwise conv (groups = channels, one filter per channel): x (N, C, H, W), w (C, 1, k, k)."""
    n_img, c_in, h, wd = x.shape
    k = w.shape[2]
    ho, wo = out.shape[2], out.shape[3]
    for n in range(n_img):
        for c in range(c_in):
            for oy in range(ho):
                for ox in range(wo):
                    acc = 0.0
                    for ki in range(k):
                        iy = oy * stride + ki - pad
                        if iy < 0 or iy >= h:
                            continue
                        for kj in range(k):
                            ix = ox * stride + kj - pad
                            if 0 <= ix < wd:
                                acc += x[n, c, iy, ix] * w[c, 0, ki, kj]
                    out[n, c, oy, ox] = acc


@njit
def depthwise_backward(x, w, dout, stride, pad, dx, dw):
    """Gradients of `depthwise_forward`: dx (N, C, H, W) and dw (C, 1, k, k) are accumulated (+=)."""
    n_img, c_in, h, wd = x.shape
    k = w.shape[2]
    ho, wo = dout.shape[2], dout.shape[3]
    for n in range(n_img):
        for c in range(c_in):
            for oy in range(ho):
                for ox in range(wo):
                    g = dout[n, c, oy, ox]
                    for ki in range(k):
                        iy = oy * stride + ki - pad
                        if iy < 0 or iy >= h:
                            continue
                        for kj in range(k):
                            ix = ox * stride + kj - pad
                            if 0 <= ix < wd:
                                dx[n, c, iy, ix] += g * w[c, 0, ki, kj]
                                dw[c, 0, ki, kj] += g * x[n, c, iy, ix]


@njit
def maxpool_forward(x, k, stride, pad, out, argmax):
    """Max-pool with -inf padding: out (N, C, ho, wo) and the flat input index of each maximum."""
    n_img, c_in, h, w = x.shape
    ho, wo = out.shape[2], out.shape[3]
    for n in range(n_img):
        for c in range(c_in):
            for oy in range(ho):
                for ox in range(wo):
                    best = -np.inf
                    best_i = -1
                    for ki in range(k):
                        iy = oy * stride + ki - pad
                        if iy < 0 or iy >= h:
                            continue
                        for kj in range(k):
                            ix = ox * stride + kj - pad
                            if 0 <= ix < w:
                                v = x[n, c, iy, ix]
                                if v > best or best_i < 0:
                                    best = v
                                    best_i = iy * w + ix
                    out[n, c, oy, ox] = best
                    argmax[n, c, oy, ox] = best_i


@njit
def maxpool_backward(dout, argmax, dx):
    """Route each output gradient to the input cell that won the max (accumulating ties of windows)."""
    n_img, c_in, ho, wo = dout.shape
    w = dx.shape[3]
    for n in range(n_img):
        for c in range(c_in):
            for oy in range(ho):
                for ox in range(wo):
                    i = argmax[n, c, oy, ox]
                    dx[n, c, i // w, i % w] += dout[n, c, oy, ox]
