"""Stateless forward/backward functions of the layers, with naive reference loops beside the fast paths.

Convolution is lowered to GEMM per image in NCHW: `col = im2col(x[n])` has shape (C*k*k, Ho*Wo), so
`W.reshape(F, C*k*k) @ col` is already the (F, Ho*Wo) NCHW output and no layout change is needed. A 1x1
stride-1 convolution needs no im2col at all. The backward recomputes `col` one image at a time instead of
keeping a whole-batch buffer, which keeps the working set in cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels


def conv_output_size(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


# ----------------------------------------------------------------------------- naive reference
def conv2d_naive(x, w, b=None, stride=1, padding=0, groups=1):
    """Direct convolution with explicit loops, written to be read: x (N, C, H, W), w (F, C/groups, k, k)."""
    n_img, c_in, h, wd = x.shape
    f_out, cg, k, _ = w.shape
    fg = f_out // groups
    ho, wo = conv_output_size(h, k, stride, padding), conv_output_size(wd, k, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((n_img, f_out, ho, wo), dtype=np.result_type(x, w))
    for n in range(n_img):
        for f in range(f_out):
            g = f // fg
            for oy in range(ho):
                for ox in range(wo):
                    patch = xp[n, g * cg:(g + 1) * cg, oy * stride:oy * stride + k, ox * stride:ox * stride + k]
                    out[n, f, oy, ox] = np.sum(patch * w[f])
            if b is not None:
                out[n, f] += b[f]
    return out


def im2col_naive(x, k, stride, pad):
    """NumPy im2col of one image x (C, H, W) -> (C*k*k, Ho*Wo), the reference for the Numba kernel."""
    c, h, w = x.shape
    ho, wo = conv_output_size(h, k, stride, pad), conv_output_size(w, k, stride, pad)
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    col = np.empty((c, k, k, ho, wo), dtype=x.dtype)
    for ki in range(k):
        for kj in range(k):
            col[:, ki, kj] = xp[:, ki:ki + stride * ho:stride, kj:kj + stride * wo:stride]
    return col.reshape(c * k * k, ho * wo)


# ----------------------------------------------------------------------------- fast convolution
@dataclass
class ConvCache:
    x: np.ndarray
    w: np.ndarray
    stride: int
    padding: int
    groups: int
    out_hw: tuple[int, int]


def _is_pointwise(k, stride, padding):
    return k == 1 and stride == 1 and padding == 0


def _is_depthwise(w, groups, c_in):
    return groups == c_in and groups > 1 and w.shape[0] == c_in and w.shape[1] == 1


def conv2d_forward(x, w, b=None, stride=1, padding=0, groups=1):
    """Fast convolution. x (N, C, H, W), w (F, C/groups, k, k), b (F,) or None -> (y, cache)."""
    n_img, c_in, h, wd = x.shape
    f_out, cg, k, _ = w.shape
    ho, wo = conv_output_size(h, k, stride, padding), conv_output_size(wd, k, stride, padding)
    dtype = np.result_type(x, w)
    y = np.empty((n_img, f_out, ho, wo), dtype=dtype)
    if _is_depthwise(w, groups, c_in):
        kernels.depthwise_forward(x, w, stride, padding, y)
    elif groups == 1 and _is_pointwise(k, stride, padding):
        np.matmul(w.reshape(f_out, c_in), x.reshape(n_img, c_in, h * wd), out=y.reshape(n_img, f_out, ho * wo))
    else:
        fg = f_out // groups
        w2 = w.reshape(groups, fg, cg * k * k)
        col = np.empty((cg * k * k, ho * wo), dtype=dtype)
        yv = y.reshape(n_img, groups, fg, ho * wo)
        for n in range(n_img):
            for g in range(groups):
                kernels.im2col_image(x[n, g * cg:(g + 1) * cg], k, stride, padding, ho, wo, col)
                np.matmul(w2[g], col, out=yv[n, g])
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y, ConvCache(x, w, stride, padding, groups, (ho, wo))


def conv2d_backward(dy, cache: ConvCache, need_dx: bool = True):
    """Gradients of `conv2d_forward`: returns (dx or None, dw, db) for the upstream gradient dy (N, F, Ho, Wo)."""
    x, w, stride, padding, groups = cache.x, cache.w, cache.stride, cache.padding, cache.groups
    n_img, c_in, h, wd = x.shape
    f_out, cg, k, _ = w.shape
    ho, wo = cache.out_hw
    dtype = np.result_type(x, w)
    dy = np.ascontiguousarray(dy, dtype=dtype)
    db = dy.sum(axis=(0, 2, 3))
    dw = np.zeros_like(w)
    dx = np.zeros_like(x) if need_dx else None
    if _is_depthwise(w, groups, c_in):
        dx_buf = dx if need_dx else np.zeros_like(x)
        kernels.depthwise_backward(x, w, dy, stride, padding, dx_buf, dw)
        return dx, dw, db
    if groups == 1 and _is_pointwise(k, stride, padding):
        xs = x.reshape(n_img, c_in, h * wd)
        ds = dy.reshape(n_img, f_out, ho * wo)
        w2 = dw.reshape(f_out, c_in)
        for n in range(n_img):
            w2 += ds[n] @ xs[n].T
        if need_dx:
            np.matmul(w.reshape(f_out, c_in).T, ds, out=dx.reshape(n_img, c_in, h * wd))
        return dx, dw, db
    fg = f_out // groups
    w2 = w.reshape(groups, fg, cg * k * k)
    dw2 = dw.reshape(groups, fg, cg * k * k)
    col = np.empty((cg * k * k, ho * wo), dtype=dtype)
    dcol = np.empty_like(col)
    ds = dy.reshape(n_img, groups, fg, ho * wo)
    for n in range(n_img):
        for g in range(groups):
            xg = x[n, g * cg:(g + 1) * cg]
            kernels.im2col_image(xg, k, stride, padding, ho, wo, col)
            dw2[g] += ds[n, g] @ col.T
            if need_dx:
                np.matmul(w2[g].T, ds[n, g], out=dcol)
                kernels.col2im_image(dcol, k, stride, padding, ho, wo, dx[n, g * cg:(g + 1) * cg])
    return dx, dw, db


# ----------------------------------------------------------------------------- batch norm
def batchnorm_forward_train(x, gamma, beta, eps):
    """Normalise with the biased batch statistics over (N, H, W); returns y, cache, mean, unbiased var."""
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mean = x.mean(axis=(0, 2, 3))
    xc = x - mean.reshape(1, -1, 1, 1)
    var = np.einsum("nchw,nchw->c", xc, xc) / n
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = xc * inv_std.reshape(1, -1, 1, 1)
    y = xhat * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1)
    unbiased = var * (n / max(n - 1, 1))
    return y, (xhat, inv_std, gamma), mean, unbiased


def batchnorm_backward(dy, cache):
    """Gradients of the train-mode batch norm: returns (dx, dgamma, dbeta)."""
    xhat, inv_std, gamma = cache
    n = dy.shape[0] * dy.shape[2] * dy.shape[3]
    dbeta = dy.sum(axis=(0, 2, 3))
    dgamma = np.einsum("nchw,nchw->c", dy, xhat)
    scale = (gamma * inv_std / n).reshape(1, -1, 1, 1)
    dx = scale * (n * dy - dbeta.reshape(1, -1, 1, 1) - xhat * dgamma.reshape(1, -1, 1, 1))
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------- activations
def sigmoid(x):
    """Numerically stable logistic function (no overflow for large |x|)."""
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


# ----------------------------------------------------------------------------- pooling and resizing
def maxpool2d_forward(x, k, stride, padding):
    n, c, h, w = x.shape
    ho, wo = conv_output_size(h, k, stride, padding), conv_output_size(w, k, stride, padding)
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    argmax = np.empty((n, c, ho, wo), dtype=np.int64)
    kernels.maxpool_forward(x, k, stride, padding, out, argmax)
    return out, argmax


def maxpool2d_backward(dout, argmax, x_shape, dtype):
    dx = np.zeros(x_shape, dtype=dtype)
    kernels.maxpool_backward(np.ascontiguousarray(dout, dtype=dtype), argmax, dx)
    return dx


def upsample_nearest2x(x):
    n, c, h, w = x.shape
    out = np.empty((n, c, h, 2, w, 2), dtype=x.dtype)
    out[...] = x[:, :, :, None, :, None]
    return out.reshape(n, c, 2 * h, 2 * w)


def upsample_nearest2x_backward(dout):
    n, c, h2, w2 = dout.shape
    return dout.reshape(n, c, h2 // 2, 2, w2 // 2, 2).sum(axis=(3, 5))
