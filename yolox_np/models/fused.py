"""BatchNorm + activation of a `BaseConv` in two or three passes over memory instead of about ten.

The unfused path (`BatchNorm2d` then `SiLU`/`LeakyReLU` modules) allocates and reads several temporaries per
element, a large share of the time next to the convolutions. The kernels here compute the same
functions: in train mode BN normalises with the biased batch variance, in eval mode with the running
statistics, then z = xhat * gamma + beta goes through the activation. The backward recomputes xhat and z
from the conv output x instead of storing them. The tests hold both paths equal (LeakyReLU in
`tests/test_models_darknet.py`, SiLU through the NUMBA_DISABLE_JIT comparison in `tests/test_models_csp.py`).

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
def _act(z, code, one, slope):
    """The activation of z; `one` and `slope` have the dtype of the data (so float32 stays float32)."""
    if code == 1:
        return z / (one + np.exp(-z))
    if code == 2:
        return z if z > 0 else z * slope
    if code == 3:
        return z if z > 0 else z - z
    return z


@njit
def _act_grad(z, code, one, slope):
    if code == 1:
        s = one / (one + np.exp(-z))
        return s * (one + z * (one - s))
    if code == 2:
        return one if z > 0 else slope
    if code == 3:
        return one if z > 0 else one - one
    return one


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
def affine_act_forward(x, center, scale, shift, code, consts, y):
    """y[n, c, i] = act((x[n, c, i] - center[c]) * scale[c] + shift[c]); the per-channel arrays and
    consts = [1, slope] have the dtype of x."""
    n_img, c_in, length = x.shape
    one, slope = consts[0], consts[1]  # scalars, so that the loops need not reload them
    for n in range(n_img):
        for c in range(c_in):
            m = center[c]
            a = scale[c]
            b = shift[c]
            for i in range(length):
                y[n, c, i] = _act((x[n, c, i] - m) * a + b, code, one, slope)


@njit_sums
def bn_act_backward(x, dout, mean, inv_std, gamma, beta, code, consts, batch_stats, dx, dgamma, dbeta):
    """Gradients of y = act(gamma * (x - mean) * inv_std + beta).

    With `batch_stats`, mean and inv_std are the batch statistics of x and their own dependence on x is
    included (train-mode BN); otherwise they are constants (eval mode). The per-channel arrays and
    consts = [1, slope] have the dtype of x; the sums are float64. dgamma and dbeta are overwritten.
    """
    n_img, c_in, length = x.shape
    count = n_img * length
    one, slope = consts[0], consts[1]
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
                dz = dout[n, c, i] * _act_grad(xhat * g + b, code, one, slope)
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
