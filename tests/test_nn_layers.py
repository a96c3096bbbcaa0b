"""Layers against references written here (einsum, loops, hand-computed numbers), gradient accumulation,
numerical stability, input validation, and the pure-Python path (NUMBA_DISABLE_JIT=1)."""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from yolox_np.nn import (
    Add,
    BatchNorm2d,
    Concat,
    Conv2d,
    LeakyReLU,
    MaxPool2d,
    Sigmoid,
    SiLU,
    Upsample,
    concat,
    concat_backward,
    conv2d_backward,
    conv2d_forward,
    conv2d_naive,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- references
def conv_patches(x, k, stride, padding):
    """(N, C, Ho, Wo, k, k) windows of the zero-padded input."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    return sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]


def conv_reference(x, w, b, stride, padding, groups):
    """Grouped convolution as one einsum per group over the windows."""
    f_out, cg, k, _ = w.shape
    fg = f_out // groups
    patches = conv_patches(x, k, stride, padding)
    outs = [np.einsum("nchwij,fcij->nfhw", patches[:, g * cg:(g + 1) * cg], w[g * fg:(g + 1) * fg])
            for g in range(groups)]
    y = np.concatenate(outs, axis=1)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def conv_reference_backward(x, w, dy, stride, padding, groups):
    """(dx, dw, db) of `conv_reference`: dw from the windows, dx by scattering every kernel tap."""
    f_out, cg, k, _ = w.shape
    fg = f_out // groups
    ho, wo = dy.shape[2:]
    patches = conv_patches(x, k, stride, padding)
    dw = np.concatenate([np.einsum("nfhw,nchwij->fcij", dy[:, g * fg:(g + 1) * fg],
                                   patches[:, g * cg:(g + 1) * cg]) for g in range(groups)])
    n, c, h, wd = x.shape
    dxp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    for g in range(groups):
        dyg, wg = dy[:, g * fg:(g + 1) * fg], w[g * fg:(g + 1) * fg]
        for i in range(k):
            for j in range(k):
                dxp[:, g * cg:(g + 1) * cg, i:i + stride * ho:stride, j:j + stride * wo:stride] += np.einsum(
                    "nfhw,fc->nchw", dyg, wg[:, :, i, j])
    dx = dxp[:, :, padding:padding + h, padding:padding + wd]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def maxpool_naive(x, k, stride, padding):
    """Max over each window, padded cells excluded, plus a loop-built gradient routing for dout = 1s."""
    n, c, h, w = x.shape
    ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    y = np.empty((n, c, ho, wo), x.dtype)
    for b in range(n):
        for ch in range(c):
            for oy in range(ho):
                for ox in range(wo):
                    y0, x0 = oy * stride - padding, ox * stride - padding
                    window = x[b, ch, max(y0, 0):y0 + k, max(x0, 0):x0 + k]
                    y[b, ch, oy, ox] = window.max()
    return y


def maxpool_naive_backward(x, dout, k, stride, padding):
    dx = np.zeros_like(x)
    n, c, ho, wo = dout.shape
    for b in range(n):
        for ch in range(c):
            for oy in range(ho):
                for ox in range(wo):
                    y0, x0 = oy * stride - padding, ox * stride - padding
                    ys, xs = max(y0, 0), max(x0, 0)
                    window = x[b, ch, ys:y0 + k, xs:x0 + k]
                    i, j = np.unravel_index(np.argmax(window), window.shape)
                    dx[b, ch, ys + i, xs + j] += dout[b, ch, oy, ox]
    return dx


def distinct_values(shape, rng, dtype=np.float64):
    """Values with gaps of at least 0.1 (no ties in max-pooling), centred on 0."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * 0.1 - 0.05 * n).astype(dtype)


# (in, out, kernel, stride, padding, groups, bias, H, W)
CONV_CASES = [
    (4, 6, 1, 1, 0, 1, True, 5, 7),   # pointwise (plain GEMM path)
    (3, 5, 3, 1, 1, 1, True, 5, 7),
    (3, 4, 3, 2, 1, 1, False, 7, 6),
    (2, 3, 3, 1, 0, 1, True, 5, 5),
    (4, 6, 3, 2, 0, 2, True, 7, 9),   # grouped
    (4, 4, 3, 1, 1, 4, True, 5, 7),   # depthwise
    (4, 4, 3, 2, 1, 4, False, 7, 7),  # depthwise, stride 2
    (3, 6, 3, 1, 1, 3, True, 5, 6),   # depthwise with channel multiplier 2
    (2, 3, 1, 2, 0, 1, True, 7, 7),   # 1x1 stride 2
    (2, 2, 5, 1, 2, 1, True, 6, 5),
    (2, 3, 2, 2, 1, 1, True, 5, 5),   # even kernel
]
CONV_IDS = [f"c{a}-{b}-k{k}s{s}p{p}g{g}{'' if bias else '-nobias'}-{h}x{w}"
            for a, b, k, s, p, g, bias, h, w in CONV_CASES]


def make_conv(case, dtype=np.float64, seed=0, batch=2):
    cin, cout, k, s, p, g, bias, h, w = case
    rng = np.random.default_rng(seed)
    conv = Conv2d(cin, cout, k, stride=s, padding=p, groups=g, bias=bias, rng=rng).astype(dtype)
    x = rng.standard_normal((batch, cin, h, w)).astype(dtype)
    return conv, x, rng


# ----------------------------------------------------------------------------- Conv2d
def test_conv_reference_agrees_with_a_hand_computed_example():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])  # x[i, j] - x[i+1, j+1] = -5 everywhere
    np.testing.assert_array_equal(conv_reference(x, w, np.array([0.5]), 1, 0, 1), np.full((1, 1, 3, 3), -4.5))
    np.testing.assert_array_equal(conv2d_naive(x, w, np.array([0.5])), np.full((1, 1, 3, 3), -4.5))
    # padding 1, stride 2: the top-left window holds three padded zeros and x[0, 0] under w[1, 1] = -1
    y = conv_reference(x, w, None, 2, 1, 1)
    assert y.shape == (1, 1, 3, 3)
    assert y[0, 0, 0, 0] == -0.0 and y[0, 0, 1, 1] == x[0, 0, 1, 1] - x[0, 0, 2, 2]


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_forward_equals_naive_loops_and_einsum(case):
    conv, x, _ = make_conv(case)
    cin, cout, k, s, p, g, bias, h, w = case
    y = conv(x)
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    assert y.shape == (2, cout, ho, wo)
    b = conv.bias.data if bias else None
    ref = conv_reference(x, conv.weight.data, b, s, p, g)
    np.testing.assert_allclose(conv2d_naive(x, conv.weight.data, b, s, p, g), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_backward_equals_einsum_reference(case):
    conv, x, rng = make_conv(case)
    y = conv(x)
    dy = rng.standard_normal(y.shape)
    dx = conv.backward(dy)
    rdx, rdw, rdb = conv_reference_backward(x, conv.weight.data, dy, conv.stride, conv.padding, conv.groups)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, rdw, rtol=1e-10, atol=1e-12)
    if conv.bias is not None:
        np.testing.assert_allclose(conv.bias.grad, rdb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_float32_matches_float64(case):
    conv64, x64, rng = make_conv(case)
    conv32, x32, _ = make_conv(case, dtype=np.float32)
    y32 = conv32(x32)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, conv64(x64), rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal(y32.shape)
    dx32 = conv32.backward(dy.astype(np.float32))
    assert dx32.dtype == conv32.weight.grad.dtype == np.float32
    np.testing.assert_allclose(dx32, conv64.backward(dy), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(conv32.weight.grad, conv64.weight.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_backward_accumulates_parameter_gradients(case):
    conv, x, rng = make_conv(case)
    y = conv(x)
    dy = rng.standard_normal(y.shape)
    dx1 = conv.backward(dy)
    grads1 = [p.grad.copy() for p in conv.parameters()]
    dx2 = conv.backward(dy)
    np.testing.assert_array_equal(dx1, dx2)  # dx is returned, not accumulated
    for g1, p in zip(grads1, conv.parameters(), strict=True):
        assert np.abs(g1).max() > 0
        np.testing.assert_allclose(p.grad, 2 * g1, rtol=1e-12, atol=1e-12)


def test_conv_backward_without_input_gradient_still_fills_parameter_gradients():
    conv, x, rng = make_conv(CONV_CASES[1])
    dy = rng.standard_normal(conv(x).shape)
    assert conv.backward(dy, need_dx=False) is None
    _, rdw, rdb = conv_reference_backward(x, conv.weight.data, dy, 1, 1, 1)
    np.testing.assert_allclose(conv.weight.grad, rdw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.bias.grad, rdb, rtol=1e-10, atol=1e-12)


def test_conv_default_initialisation_is_pytorch_kaiming_uniform():
    conv = Conv2d(8, 16, 3, groups=2, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(4 * 3 * 3)
    assert conv.weight.dtype == conv.bias.dtype == np.float32
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.9 * bound  # uses the whole range
    np.testing.assert_array_equal(Conv2d(8, 16, 3, rng=np.random.default_rng(4)).weight.data,
                                  Conv2d(8, 16, 3, rng=np.random.default_rng(4)).weight.data)


@pytest.mark.parametrize("case", [CONV_CASES[0], CONV_CASES[1], CONV_CASES[5]], ids=["pointwise", "3x3", "dw"])
def test_functional_conv_handles_non_contiguous_inputs(case):
    """conv2d_forward/backward are public: a transposed view must give the same numbers as a copy."""
    cin, cout, k, s, p, g, bias, h, w = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, cin, w, h)).transpose(0, 1, 3, 2)  # a non-contiguous (2, cin, h, w) view
    wt = rng.standard_normal((cout, cin // g, k, k))
    y, cache = conv2d_forward(x, wt, None, s, p, g)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = conv2d_backward(dy, cache)
    rdx, rdw, _ = conv_reference_backward(x, wt, dy, s, p, g)
    np.testing.assert_allclose(y, conv_reference(x, wt, None, s, p, g), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw, rdw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)


# Sizes large enough for the fast path to split each image into row bands (whose dx overlap) and to share
# them out to threads: (N, in, out, kernel, stride, padding, groups, H, W)
BANDED_CASES = [
    (2, 64, 32, 3, 1, 1, 1, 24, 24),
    (2, 64, 16, 3, 2, 1, 1, 47, 45),
    (1, 128, 32, 3, 1, 0, 2, 26, 25),
    (3, 96, 96, 1, 1, 0, 1, 24, 24),
    (3, 64, 64, 1, 1, 0, 1, 24, 24),
    (2, 32, 16, 5, 1, 2, 1, 23, 24),
]


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("case", BANDED_CASES, ids=[f"n{c[0]}-c{c[1]}-{c[2]}-k{c[3]}s{c[4]}p{c[5]}g{c[6]}-{c[7]}x{c[8]}"
                                                    for c in BANDED_CASES])
def test_conv_on_larger_inputs_equals_einsum_reference(case, threads, monkeypatch):
    monkeypatch.setenv("YOLOX_NP_CONV_THREADS", threads)
    n, cin, cout, k, s, p, g, h, w = case
    rng = np.random.default_rng(1)
    conv = Conv2d(cin, cout, k, s, p, g, rng=rng).astype(np.float64)
    x = rng.standard_normal((n, cin, h, w))
    y = conv(x)
    np.testing.assert_allclose(y, conv_reference(x, conv.weight.data, conv.bias.data, s, p, g), rtol=1e-9,
                               atol=1e-11)
    dy = rng.standard_normal(y.shape)
    dx = conv.backward(dy)
    rdx, rdw, rdb = conv_reference_backward(x, conv.weight.data, dy, s, p, g)
    np.testing.assert_allclose(dx, rdx, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(conv.weight.grad, rdw, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(conv.bias.grad, rdb, rtol=1e-9, atol=1e-10)


# ----------------------------------------------------------------------------- BatchNorm2d
def test_batchnorm_train_forward_normalises_each_channel():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.5, (4, 3, 5, 7)).astype(np.float32)
    bn = BatchNorm2d(3)
    y = bn(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-4)
    bn.weight.data[...] = [2.0, -1.0, 0.5]
    bn.bias.data[...] = [1.0, 0.0, -3.0]
    y = bn(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), [1.0, 0.0, -3.0], atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), [2.0, 1.0, 0.5], rtol=1e-4)


def test_batchnorm_running_statistics_hand_computed():
    # channel 0 holds 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased variance 5/3
    # channel 1 holds 0, 0, 0, 8: mean 2, biased variance 12, unbiased variance 16
    x = np.array([[[[1, 2], [3, 4]], [[0, 0], [0, 8]]]], np.float32)
    bn = BatchNorm2d(2)
    y = bn(x)
    np.testing.assert_allclose(bn.running_mean, [0.25, 0.2], rtol=1e-6)
    np.testing.assert_allclose(bn.running_var, [0.9 + 0.1 * 5 / 3, 0.9 + 1.6], rtol=1e-6)
    np.testing.assert_allclose(y[0, 0].ravel(), (np.array([1, 2, 3, 4]) - 2.5) / np.sqrt(1.25 + 1e-5), rtol=1e-5)
    np.testing.assert_allclose(y[0, 1].ravel(), (np.array([0, 0, 0, 8]) - 2) / np.sqrt(12 + 1e-5), rtol=1e-5)
    bn(x)  # second step: running = 0.9 * running + 0.1 * batch
    np.testing.assert_allclose(bn.running_mean, [0.9 * 0.25 + 0.25, 0.9 * 0.2 + 0.2], rtol=1e-6)
    np.testing.assert_allclose(bn.running_var, [0.9 * (0.9 + 0.5 / 3) + 0.5 / 3, 0.9 * 2.5 + 1.6], rtol=1e-6)


def test_batchnorm_momentum_and_eps_are_configurable():
    x = np.array([[[[1, 2], [3, 4]]]], np.float64)
    bn = BatchNorm2d(1, eps=0.75, momentum=0.5).astype(np.float64)
    y = bn(x)
    np.testing.assert_allclose(y.ravel(), (np.array([1, 2, 3, 4]) - 2.5) / np.sqrt(1.25 + 0.75), rtol=1e-12)
    np.testing.assert_allclose(bn.running_mean, [1.25], rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, [0.5 + 0.5 * 5 / 3], rtol=1e-12)
    frozen = BatchNorm2d(1, momentum=0.0).astype(np.float64)
    frozen(x)
    assert frozen.running_mean[0] == 0.0 and frozen.running_var[0] == 1.0
    copy = BatchNorm2d(1, momentum=1.0).astype(np.float64)
    copy(x)
    np.testing.assert_allclose([copy.running_mean[0], copy.running_var[0]], [2.5, 5 / 3], rtol=1e-12)


def test_batchnorm_eval_forward_uses_running_statistics():
    rng = np.random.default_rng(1)
    bn = BatchNorm2d(3, eps=1e-3)
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([0.25, 4.0, 1.5])
    gamma, beta = np.array([1.5, -0.5, 1.0]), np.array([0.1, 0.2, -0.3])
    bn.running_mean[...], bn.running_var[...] = mean, var
    bn.weight.data[...], bn.bias.data[...] = gamma, beta
    bn.eval()
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    y = bn(x)
    r = lambda v: v.reshape(1, -1, 1, 1)
    expected = (x - r(mean)) / np.sqrt(r(var) + 1e-3) * r(gamma) + r(beta)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-7)  # unchanged by eval
    np.testing.assert_allclose(bn(x[1:]), y[1:], rtol=1e-6)  # each image on its own


def test_batchnorm_eval_backward_is_the_affine_map_gradient():
    rng = np.random.default_rng(2)
    bn = BatchNorm2d(2).astype(np.float64).eval()
    bn.running_mean[...], bn.running_var[...] = [0.3, -0.2], [2.0, 0.5]
    bn.weight.data[...] = [1.5, -2.0]
    x = rng.standard_normal((2, 2, 3, 3))
    dy = rng.standard_normal(bn(x).shape)
    dx = bn.backward(dy)
    inv_std = 1 / np.sqrt(np.array([2.0, 0.5]) + 1e-5)
    np.testing.assert_allclose(dx, dy * (np.array([1.5, -2.0]) * inv_std).reshape(1, 2, 1, 1), rtol=1e-12)
    xhat = (x - np.array([0.3, -0.2]).reshape(1, 2, 1, 1)) * inv_std.reshape(1, 2, 1, 1)
    np.testing.assert_allclose(bn.weight.grad, (dy * xhat).sum(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bn.bias.grad, dy.sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_backward_accumulates_parameter_gradients(training):
    rng = np.random.default_rng(3)
    bn = BatchNorm2d(3).astype(np.float64).train(training)
    bn.weight.data[...] = rng.uniform(0.5, 1.5, 3)
    x = rng.standard_normal((2, 3, 3, 5))
    dy = rng.standard_normal(bn(x).shape)
    dx1 = bn.backward(dy)
    g1 = [p.grad.copy() for p in bn.parameters()]
    dx2 = bn.backward(dy)
    np.testing.assert_array_equal(dx1, dx2)
    for a, p in zip(g1, bn.parameters(), strict=True):
        assert np.abs(a).max() > 0
        np.testing.assert_allclose(p.grad, 2 * a, rtol=1e-12)


def test_batchnorm_train_needs_more_than_one_value_per_channel():
    with pytest.raises(ValueError, match=r"\(1, 2, 1, 1\)"):
        BatchNorm2d(2)(np.ones((1, 2, 1, 1), np.float32))
    BatchNorm2d(2).eval()(np.ones((1, 2, 1, 1), np.float32))  # fine in eval mode


# ----------------------------------------------------------------------------- activations
def test_leaky_relu_values_and_gradient():
    x = np.array([-2.0, -0.5, 0.5, 3.0]).reshape(1, 4, 1, 1)
    act = LeakyReLU(0.1)
    np.testing.assert_allclose(act(x).ravel(), [-0.2, -0.05, 0.5, 3.0], rtol=1e-12)
    np.testing.assert_allclose(act.backward(np.full_like(x, 2.0)).ravel(), [0.2, 0.2, 2.0, 2.0], rtol=1e-12)
    assert LeakyReLU().negative_slope == 0.01  # PyTorch's default
    assert act(x.astype(np.float32)).dtype == np.float32


def test_sigmoid_and_silu_match_their_formulas():
    x = np.linspace(-8, 8, 33).reshape(1, 1, 3, 11)
    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(Sigmoid()(x), sig, rtol=1e-12)
    np.testing.assert_allclose(SiLU()(x), x * sig, rtol=1e-12, atol=1e-15)
    s = Sigmoid()
    s(x)
    np.testing.assert_allclose(s.backward(np.ones_like(x)), sig * (1 - sig), rtol=1e-10)
    a = SiLU()
    a(x)
    np.testing.assert_allclose(a.backward(np.ones_like(x)), sig + x * sig * (1 - sig), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", [Sigmoid, SiLU])
def test_sigmoid_and_silu_are_stable_at_extreme_inputs(layer, dtype):
    x = np.array([-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0], dtype).reshape(1, 7, 1, 1)
    m = layer()
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y = m(x)
        dx = m.backward(np.ones_like(x))
    assert y.dtype == dx.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    sig = np.array([0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0])
    if layer is Sigmoid:
        np.testing.assert_allclose(y.ravel(), sig, atol=1e-12)
        np.testing.assert_allclose(dx.ravel()[[0, 3, 6]], [0.0, 0.25, 0.0], atol=1e-12)
    else:
        np.testing.assert_allclose(y.ravel()[[0, 3, 5, 6]], [0.0, 0.0, 100.0, 1000.0], atol=1e-12)
        np.testing.assert_allclose(dx.ravel()[[0, 3, 5, 6]], [0.0, 0.5, 1.0, 1.0], atol=1e-12)


# ----------------------------------------------------------------------------- MaxPool2d
POOL_CASES = [(2, 2, 0, 5, 7), (3, 1, 1, 5, 6), (3, 2, 1, 7, 7), (5, 1, 2, 6, 5), (2, 1, 0, 4, 5), (3, 3, 1, 8, 7)]
POOL_IDS = [f"k{k}s{s}p{p}-{h}x{w}" for k, s, p, h, w in POOL_CASES]


@pytest.mark.parametrize("k,s,p,h,w", POOL_CASES, ids=POOL_IDS)
def test_maxpool_forward_and_backward_equal_naive_loops(k, s, p, h, w):
    rng = np.random.default_rng(0)
    x = distinct_values((2, 3, h, w), rng)
    pool = MaxPool2d(k, s, p)
    y = pool(x)
    np.testing.assert_array_equal(y, maxpool_naive(x, k, s, p))
    dout = rng.standard_normal(y.shape)
    np.testing.assert_allclose(pool.backward(dout), maxpool_naive_backward(x, dout, k, s, p), rtol=1e-12)
    x32 = x.astype(np.float32)
    assert pool(x32).dtype == np.float32 and pool.backward(dout.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("k,s,p,h,w", [c for c in POOL_CASES if c[2] > 0], ids=[i for i, c in zip(POOL_IDS, POOL_CASES)
                                                                               if c[2] > 0])
def test_maxpool_padding_never_wins_over_negative_inputs(k, s, p, h, w):
    rng = np.random.default_rng(1)
    x = -rng.uniform(1.0, 5.0, (1, 2, h, w))
    y = MaxPool2d(k, s, p)(x)
    assert np.all(y < 0)
    assert np.all(np.isin(y, x))  # every output is one of the input values


def test_maxpool_gradient_accumulates_over_overlapping_windows():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0  # the centre wins all nine 3x3 windows (stride 1, padding 1)
    pool = MaxPool2d(3, 1, 1)
    np.testing.assert_array_equal(pool(x), np.full((1, 1, 3, 3), 5.0))
    dx = pool.backward(np.arange(9.0).reshape(1, 1, 3, 3))
    assert dx[0, 0, 1, 1] == 36.0 and dx.sum() == 36.0


# ----------------------------------------------------------------------------- Upsample, concat, add
def test_upsample_nearest_by_two_and_its_backward():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 3, 5)).astype(np.float32)
    up = Upsample(scale_factor=2, mode="nearest")
    y = up(x)
    assert y.shape == (2, 3, 6, 10) and y.dtype == np.float32
    for i in range(6):
        for j in range(10):
            np.testing.assert_array_equal(y[:, :, i, j], x[:, :, i // 2, j // 2])
    dout = rng.standard_normal(y.shape)
    dx = up.backward(dout)
    expected = np.zeros(x.shape)
    for i in range(6):
        for j in range(10):
            expected[:, :, i // 2, j // 2] += dout[:, :, i, j]
    np.testing.assert_allclose(dx, expected, rtol=1e-12)


def test_concat_and_its_backward_split():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, c, 3, 4)) for c in (1, 3, 2)]
    y, sizes = concat(xs)
    assert y.shape == (2, 6, 3, 4) and sizes == [1, 3, 2]
    np.testing.assert_array_equal(y[:, 1:4], xs[1])
    dout = rng.standard_normal(y.shape)
    parts = concat_backward(dout, sizes)
    assert [p.shape for p in parts] == [x.shape for x in xs]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), dout)
    np.testing.assert_array_equal(parts[2], dout[:, 4:6])
    cat = Concat()
    np.testing.assert_array_equal(cat(xs), y)
    for a, b in zip(cat.backward(dout), parts, strict=True):
        np.testing.assert_array_equal(a, b)


def test_concat_rejects_inputs_that_disagree_off_the_channel_axis():
    with pytest.raises(ValueError, match=r"input 1.*\(1, 2, 3, 5\)"):
        Concat()([np.zeros((1, 1, 3, 4)), np.zeros((1, 2, 3, 5))])
    with pytest.raises(ValueError):
        Concat()([])


def test_add_hands_the_gradient_to_both_branches():
    a, b = np.ones((1, 2, 3, 3)), np.full((1, 2, 3, 3), 2.0)
    add = Add()
    np.testing.assert_array_equal(add(a, b), np.full((1, 2, 3, 3), 3.0))
    da, db = add.backward(np.full((1, 2, 3, 3), 0.5))
    np.testing.assert_array_equal(da, 0.5)
    np.testing.assert_array_equal(db, 0.5)
    with pytest.raises(ValueError, match=r"\(1, 2, 3, 3\).*\(1, 2, 3, 4\)"):
        add(a, np.ones((1, 2, 3, 4)))


def test_a_tensor_feeding_two_branches_gets_the_sum_of_both_gradients():
    """y = conv(x) + x: the residual input's gradient is the conv path's plus the identity path's."""
    conv, x, rng = make_conv((3, 3, 3, 1, 1, 1, True, 4, 4))
    add = Add()
    y = add(conv(x), x)
    dout = rng.standard_normal(y.shape)
    d_conv, d_skip = add.backward(dout)
    dx = conv.backward(d_conv) + d_skip
    rdx, _, _ = conv_reference_backward(x, conv.weight.data, dout, 1, 1, 1)
    np.testing.assert_allclose(dx, rdx + dout, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- bad input
def layers_with_channels():
    return [("Conv2d", Conv2d(4, 8, 3, padding=1)), ("BatchNorm2d", BatchNorm2d(4))]


@pytest.mark.parametrize("name,layer", layers_with_channels(), ids=["conv", "bn"])
def test_wrong_channel_count_names_layer_and_shapes(name, layer):
    x = np.zeros((2, 3, 5, 5), np.float32)
    with pytest.raises(ValueError) as info:
        layer(x)
    msg = str(info.value)
    assert name in msg and "(N, 4, H, W)" in msg and "(2, 3, 5, 5)" in msg


@pytest.mark.parametrize("name,layer", layers_with_channels() + [("MaxPool2d", MaxPool2d(2)),
                                                               ("Upsample", Upsample())],
                         ids=["conv", "bn", "pool", "upsample"])
def test_wrong_ndim_names_layer_and_shapes(name, layer):
    with pytest.raises(ValueError) as info:
        layer(np.zeros((4, 5, 5), np.float32))
    msg = str(info.value)
    assert name in msg and "(N, C, H, W)" in msg and "(4, 5, 5)" in msg


@pytest.mark.parametrize("name,layer", layers_with_channels(), ids=["conv", "bn"])
def test_wrong_dtype_names_layer_and_both_dtypes(name, layer):
    with pytest.raises(ValueError) as info:
        layer(np.zeros((2, 4, 5, 5), np.float64))
    msg = str(info.value)
    assert name in msg and "float32" in msg and "float64" in msg
    with pytest.raises(ValueError, match=rf"{name}.*int64"):
        layer(np.zeros((2, 4, 5, 5), np.int64))


@pytest.mark.parametrize("layer", [LeakyReLU(), SiLU(), Sigmoid(), MaxPool2d(2), Upsample()],
                         ids=["leaky", "silu", "sigmoid", "pool", "upsample"])
def test_integer_or_non_array_input_is_rejected(layer):
    with pytest.raises(ValueError, match=type(layer).__name__):
        layer(np.zeros((1, 2, 4, 4), np.int32))
    with pytest.raises(ValueError, match=type(layer).__name__):
        layer([[[[1.0]]]])


def test_conv_input_smaller_than_kernel_is_rejected():
    with pytest.raises(ValueError, match=r"\(1, 2, 2, 4\)"):
        Conv2d(2, 2, 3)(np.zeros((1, 2, 2, 4), np.float32))


@pytest.mark.parametrize("make", [
    lambda: Conv2d(4, 6, 3, groups=4),      # groups does not divide out_channels
    lambda: Conv2d(3, 6, 3, groups=2),      # groups does not divide in_channels
    lambda: Conv2d(4, 4, 3, padding=-1),
    lambda: Conv2d(4, 4, 3, stride=0),
    lambda: Conv2d(4, 4, 0),
    lambda: Conv2d(0, 4, 3),
    lambda: MaxPool2d(3, 1, -1),
    lambda: MaxPool2d(3, 1, 2),             # padding above kernel_size // 2 (PyTorch's rule)
    lambda: MaxPool2d(0),
    lambda: BatchNorm2d(0),
    lambda: BatchNorm2d(4, eps=0.0),
    lambda: BatchNorm2d(4, momentum=1.5),
    lambda: Upsample(scale_factor=3),
    lambda: Upsample(mode="bilinear"),
], ids=["conv-groups-out", "conv-groups-in", "conv-neg-pad", "conv-stride0", "conv-k0", "conv-cin0",
        "pool-neg-pad", "pool-big-pad", "pool-k0", "bn-0", "bn-eps", "bn-momentum", "up-3", "up-bilinear"])
def test_bad_constructor_arguments_raise(make):
    with pytest.raises(ValueError):
        make()


def test_groups_error_names_the_numbers():
    with pytest.raises(ValueError, match=r"4.*6.*4|6.*4"):
        Conv2d(4, 6, 3, groups=4)


@pytest.mark.parametrize("layer", [Conv2d(1, 1, 1), BatchNorm2d(1), LeakyReLU(), Sigmoid(), SiLU(), MaxPool2d(2)],
                         ids=["conv", "bn", "leaky", "sigmoid", "silu", "pool"])
def test_backward_before_forward_is_an_error(layer):
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 1, 2, 2), np.float32))


# ----------------------------------------------------------------------------- pure-Python path
JIT_FREE_SCRIPT = textwrap.dedent("""
    import sys
    import numba
    import numpy as np
    from yolox_np.nn import Conv2d, MaxPool2d, kernels

    assert numba.config.DISABLE_JIT, "NUMBA_DISABLE_JIT was not honoured"
    assert not isinstance(kernels.im2col_image, numba.core.dispatcher.Dispatcher)
    data = dict(np.load(sys.argv[1]))
    out = {}
    for name in ("conv", "same", "grouped", "dw"):
        w = data[name + "_w"]
        layer = Conv2d(w.shape[1] * int(data[name + "_groups"]), w.shape[0], w.shape[2],
                       stride=int(data[name + "_stride"]), padding=1, groups=int(data[name + "_groups"]))
        layer.weight.data = w
        layer.bias.data = data[name + "_b"]
        out[name + "_y"] = layer(data["x"])
        out[name + "_dx"] = layer.backward(data[name + "_dy"])
        out[name + "_dw"] = layer.weight.grad
    pool = MaxPool2d(3, 2, 1)
    out["pool_y"] = pool(data["x"])
    out["pool_dx"] = pool.backward(data["pool_dy"])
    np.savez(sys.argv[2], **out)
""")


def test_layers_give_the_same_results_with_numba_jit_disabled(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    data, results = {"x": x}, {}
    for name, groups, stride, cout in (("conv", 1, 2, 3), ("same", 1, 1, 3), ("grouped", 2, 1, 6), ("dw", 4, 1, 4)):
        conv = Conv2d(4, cout, 3, stride=stride, padding=1, groups=groups, rng=rng)
        y = conv(x)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        results.update({name + "_y": y, name + "_dx": conv.backward(dy), name + "_dw": conv.weight.grad})
        data.update({name + "_w": conv.weight.data, name + "_b": conv.bias.data, name + "_dy": dy,
                     name + "_groups": groups, name + "_stride": stride})
    pool = MaxPool2d(3, 2, 1)
    y = pool(x)
    data["pool_dy"] = rng.standard_normal(y.shape).astype(np.float32)
    results.update({"pool_y": y, "pool_dx": pool.backward(data["pool_dy"])})
    np.savez(tmp_path / "inputs.npz", **data)
    script = tmp_path / "run_without_jit.py"
    script.write_text(JIT_FREE_SCRIPT)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "out.npz")
    assert sorted(got.files) == sorted(results)
    for k, v in results.items():
        assert got[k].dtype == v.dtype, k
        np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-5, err_msg=k)
