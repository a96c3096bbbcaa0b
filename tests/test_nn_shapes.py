"""Properties over random layer configurations: output sizes, agreement with the naive loops, adjointness."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import conv_configs, pool_configs

from yolox_np.nn import (
    BatchNorm2d,
    Concat,
    Conv2d,
    LeakyReLU,
    MaxPool2d,
    Sigmoid,
    SiLU,
    Upsample,
    conv2d_naive,
)

SETTINGS = settings(max_examples=60, deadline=None)


def out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def build_conv(cfg, dtype, seed):
    rng = np.random.default_rng(seed)
    conv = Conv2d(cfg["in_channels"], cfg["out_channels"], cfg["kernel_size"], stride=cfg["stride"],
                  padding=cfg["padding"], groups=cfg["groups"], bias=cfg["bias"], rng=rng).astype(dtype)
    x = rng.standard_normal((cfg["batch"], cfg["in_channels"], cfg["height"], cfg["width"])).astype(dtype)
    return conv, x, rng


@SETTINGS
@given(cfg=conv_configs(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_conv_output_and_gradient_shapes(cfg, dtype, seed):
    conv, x, rng = build_conv(cfg, dtype, seed)
    y = conv(x)
    k, s, p = cfg["kernel_size"], cfg["stride"], cfg["padding"]
    assert y.shape == (cfg["batch"], cfg["out_channels"], out_size(cfg["height"], k, s, p),
                       out_size(cfg["width"], k, s, p))
    assert y.dtype == dtype
    dx = conv.backward(rng.standard_normal(y.shape).astype(dtype))
    assert dx.shape == x.shape and dx.dtype == dtype
    for p_ in conv.parameters():
        assert p_.grad.shape == p_.data.shape and p_.grad.dtype == dtype
    assert conv.weight.shape == (cfg["out_channels"], cfg["in_channels"] // cfg["groups"], k, k)


@SETTINGS
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv_forward_equals_naive_loops(cfg, seed):
    conv, x, _ = build_conv(cfg, np.float64, seed)
    b = conv.bias.data if conv.bias is not None else None
    expected = conv2d_naive(x, conv.weight.data, b, cfg["stride"], cfg["padding"], cfg["groups"])
    np.testing.assert_allclose(conv(x), expected, rtol=1e-10, atol=1e-12)


@SETTINGS
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv_backward_is_the_adjoint_of_forward(cfg, seed):
    """y = A(w) x + b is linear in x and in w: <y - b, dy> = <x, dx> = <w, dw>, and db = sum(dy)."""
    conv, x, rng = build_conv(cfg, np.float64, seed)
    y = conv(x)
    if conv.bias is not None:
        y = y - conv.bias.data.reshape(1, -1, 1, 1)
    dy = rng.standard_normal(y.shape)
    dx = conv.backward(dy)
    lhs = np.sum(y * dy)
    scale = np.sqrt(np.sum(y * y) * np.sum(dy * dy)) + 1e-12
    assert abs(lhs - np.sum(x * dx)) <= 1e-10 * scale
    assert abs(lhs - np.sum(conv.weight.data * conv.weight.grad)) <= 1e-10 * scale
    if conv.bias is not None:
        np.testing.assert_allclose(conv.bias.grad, dy.sum(axis=(0, 2, 3)), rtol=1e-10, atol=1e-12)


@SETTINGS
@given(cfg=pool_configs(), seed=st.integers(0, 2**16))
def test_maxpool_output_shape_and_values(cfg, seed):
    rng = np.random.default_rng(seed)
    k, s, p = cfg["kernel_size"], cfg["stride"], cfg["padding"]
    x = rng.standard_normal((cfg["batch"], cfg["channels"], cfg["height"], cfg["width"])) - 10.0
    pool = MaxPool2d(k, s, p)
    y = pool(x)
    ho, wo = out_size(cfg["height"], k, s, p), out_size(cfg["width"], k, s, p)
    assert y.shape == (cfg["batch"], cfg["channels"], ho, wo)
    for oy in range(ho):
        for ox in range(wo):
            y0, x0 = oy * s - p, ox * s - p
            window = x[:, :, max(y0, 0):y0 + k, max(x0, 0):x0 + k]
            np.testing.assert_array_equal(y[:, :, oy, ox], window.max(axis=(2, 3)))
    dx = pool.backward(np.ones_like(y))
    assert dx.shape == x.shape
    assert dx.sum() == y.size  # every output routes its whole gradient to one input cell


@SETTINGS
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_upsample_doubles_the_spatial_size(shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    up = Upsample()
    y = up(x)
    n, c, h, w = shape
    assert y.shape == (n, c, 2 * h, 2 * w) and y.dtype == dtype
    dx = up.backward(np.ones_like(y))
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx, 4.0)


@SETTINGS
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5)),
       dtype=st.sampled_from([np.float32, np.float64]),
       layer=st.sampled_from([LeakyReLU, SiLU, Sigmoid]))
def test_activations_keep_shape_and_dtype(shape, dtype, layer):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    m = layer()
    y = m(x)
    assert y.shape == x.shape and y.dtype == dtype
    dx = m.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == dtype


@SETTINGS
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5)),
       training=st.booleans())
def test_batchnorm_keeps_shape(shape, training):
    if training and shape[0] * shape[2] * shape[3] < 2:
        shape = (2,) + shape[1:]
    bn = BatchNorm2d(shape[1]).train(training)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    y = bn(x)
    assert y.shape == shape and y.dtype == np.float32
    assert bn.backward(np.ones_like(y)).shape == shape


@SETTINGS
@given(channels=st.lists(st.integers(1, 4), min_size=1, max_size=4), h=st.integers(1, 4), w=st.integers(1, 4))
def test_concat_round_trip(channels, h, w):
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((2, c, h, w)) for c in channels]
    cat = Concat()
    y = cat(xs)
    assert y.shape == (2, sum(channels), h, w)
    parts = cat.backward(y)
    assert len(parts) == len(xs)
    for a, b in zip(parts, xs, strict=True):
        np.testing.assert_array_equal(a, b)
