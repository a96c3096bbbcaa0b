"""BatchNorm + activation of a `BaseConv` in two or three passes over memory instead of about ten.

The unfused path (`BatchNorm2d` then `SiLU`/`LeakyReLU` modules) allocates and reads several temporaries per
element; at YOLOX sizes those passes cost as much as the convolutions. The kernels here compute the same
functions: in train mode BN normalises with the biased batch variance, in eval mode with the running
statistics, then z = xhat * gamma + beta goes through the activation. The backward recomputes xhat and z
from the conv output x instead of storing them. `tests/test_models_csp.py` holds both paths equal.

Arrays are viewed as (N, C, L) with L = H * W; per-channel sums are accumulated in float64.
"""

from __future__ import annotations

import numba
import numpy as np

ACT_CODES = {"identity": 0, "silu": 1, "lrelu": 2, "relu": 3}

njit = numba.njit(cache=True, nogil=True)
# Reassociating the float64 channel sums lets LLVM vectorise them (several partial sums); it changes the
# result only at the level of float64 rounding.
njit_sums = numba.njit(cache=True, nogil=True, fastmath={"reassoc"})


@njit
def _act(z, code, slope):
    if code == 1:
        return z / (1.0 + np.exp(-z))
    if code == 2:
        return z if z > 0 else z * slope
    if code == 3:
        return z if z > 0 else z * 0
    return z


@njit
def _act_grad(z, code, slope):
    if code == 1:
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 + z * (1.0 - s))
    if code == 2:
        return 1.0 if z > 0 else slope
    if code == 3:
        return 1.0 if z > 0 else 0.0
    return 1.0


@njit_sums
def channel_mean_var(x, mean, var):
    """Per-channel mean and biased variance of x (N, C, L), two passes, float64 accumulators."""
    n_img, c_in, length = x.shape
    count = n_img * length
    for c in range(c_in):
        acc = 0.0
        for n in range(n_img):
            for i in range(length):
                acc += x[n, c, i]
        m = acc / count
        acc = 0.0
        for n in range(n_img):
            for i in range(length):
                d = x[n, c, i] - m
                acc += d * d
        mean[c] = m
        var[c] = acc / count


@njit
def affine_act_forward(x, center, scale, shift, code, slope, y):
    """y[n, c, i] = act((x[n, c, i] - center[c]) * scale[c] + shift[c])."""
    n_img, c_in, length = x.shape
    for n in range(n_img):
        for c in range(c_in):
            m = center[c]
            a = scale[c]
            b = shift[c]
            for i in range(length):
                y[n, c, i] = _act((x[n, c, i] - m) * a + b, code, slope)


@njit_sums
def bn_act_backward(x, dout, mean, inv_std, gamma, beta, code, slope, batch_stats, dx, dgamma, dbeta):
    """Gradients of y = act(gamma * (x - mean) * inv_std + beta).

    With `batch_stats`, mean and inv_std are the batch statistics of x and their own dependence on x is
    included (train-mode BN); otherwise they are constants (eval mode). dgamma and dbeta are overwritten.
    """
    n_img, c_in, length = x.shape
    count = n_img * length
    for c in range(c_in):
        m = mean[c]
        s = inv_std[c]
        g = gamma[c]
        b = beta[c]
        sum_dz = 0.0
        sum_dz_xhat = 0.0
        for n in range(n_img):
            for i in range(length):
                xhat = (x[n, c, i] - m) * s
                dz = dout[n, c, i] * _act_grad(xhat * g + b, code, slope)
                dx[n, c, i] = dz
                sum_dz += dz
                sum_dz_xhat += dz * xhat
        dgamma[c] = sum_dz_xhat
        dbeta[c] = sum_dz
        k = g * s
        if batch_stats:
            mean_dz = sum_dz / count
            mean_dz_xhat = sum_dz_xhat / count
            for n in range(n_img):
                for i in range(length):
                    xhat = (x[n, c, i] - m) * s
                    dx[n, c, i] = k * (dx[n, c, i] - mean_dz - xhat * mean_dz_xhat)
        else:
            for n in range(n_img):
                for i in range(length):
                    dx[n, c, i] *= k
