"""The fast convolution (Numba im2col/col2im + BLAS, banded and threaded) against the naive loops, the
kernels against NumPy references, col2im as the adjoint of im2col, and the benchmark's report format.

The engine's band planner is forced to tiny bands and several threads (`engine` fixture) so that the small
shapes a test can afford still go through every path the large layers take: row bands of one image, several
images packed into one band, bands sharing dx rows, single-threaded BLAS in worker threads.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import conv_configs
from yolox_np import bench
from yolox_np.nn import functional as F
from yolox_np.nn import kernels

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the engine settings hold for a whole test, so hypothesis may share the fixture across examples
FIXTURE_OK = [HealthCheck.function_scoped_fixture]
ENGINES = {
    # name: (PARALLEL_MIN_FLOPS, MIN_COLS, CHUNK_BYTES, SPLIT_MIN_FILTERS, YOLOX_NP_CONV_THREADS)
    "default": (F.PARALLEL_MIN_FLOPS, F.MIN_COLS, F.CHUNK_BYTES, F.SPLIT_MIN_FILTERS, None),
    "tiny-bands-2-threads": (0, 2, 64, 10**9, "2"),
    "row-bands-3-threads": (0, 1, 1, 10**9, "3"),
    "packed-images-serial": (0, 16, 4096, 10**9, "1"),
    "filters-split-2-threads": (0, 4, 256, 1, "2"),
}


@pytest.fixture(params=list(ENGINES))
def engine(request, monkeypatch):
    min_flops, min_cols, chunk_bytes, min_filters, threads = ENGINES[request.param]
    monkeypatch.setattr(F, "PARALLEL_MIN_FLOPS", min_flops)
    monkeypatch.setattr(F, "SPLIT_MIN_FILTERS", min_filters)
    monkeypatch.setattr(F, "MIN_COLS", min_cols)
    monkeypatch.setattr(F, "CHUNK_BYTES", chunk_bytes)
    if threads is None:
        monkeypatch.delenv("YOLOX_NP_CONV_THREADS", raising=False)
    else:
        monkeypatch.setenv("YOLOX_NP_CONV_THREADS", threads)
    return request.param


def make_case(cfg, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c, f, k, g = cfg["in_channels"], cfg["out_channels"], cfg["kernel_size"], cfg["groups"]
    x = rng.standard_normal((cfg["batch"], c, cfg["height"], cfg["width"])).astype(dtype)
    w = (rng.standard_normal((f, c // g, k, k)) / np.sqrt(c // g * k * k)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype) if cfg["bias"] else None
    return x, w, b


def run_fast(x, w, b, cfg, dy_seed=1):
    y, cache = F.conv2d_forward(x, w, b, cfg["stride"], cfg["padding"], cfg["groups"])
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(x.dtype)
    dx, dw, db = F.conv2d_backward(dy, cache)
    return y, dy, dx, dw, db


# ----------------------------------------------------------------------------- fast vs naive
@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(cfg=conv_configs(max_batch=3, max_size=11))
def test_fast_conv_equals_naive_loops_float32(engine, cfg):
    x, w, b = make_case(cfg, np.float32)
    y, dy, dx, dw, db = run_fast(x, w, b, cfg)
    args = (cfg["stride"], cfg["padding"], cfg["groups"])
    x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64)
    assert y.dtype == dx.dtype == dw.dtype == np.float32
    np.testing.assert_allclose(y, F.conv2d_naive(x64, w64, b64, *args), rtol=1e-5, atol=1e-5)
    rdx, rdw, rdb = F.conv2d_naive_backward(dy.astype(np.float64), x64, w64, b64, *args)
    scale = np.sqrt(dy.shape[0] * dy.shape[2] * dy.shape[3])  # dw, db sum over N*Ho*Wo terms
    np.testing.assert_allclose(dx, rdx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, rdw, rtol=1e-5, atol=1e-5 * scale)
    if b is not None:
        np.testing.assert_allclose(db, rdb, rtol=1e-5, atol=1e-5 * scale)


@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURE_OK)
@given(cfg=conv_configs(max_batch=3, max_size=9))
def test_fast_conv_equals_naive_loops_float64(engine, cfg):
    x, w, b = make_case(cfg, np.float64)
    y, dy, dx, dw, db = run_fast(x, w, b, cfg)
    args = (cfg["stride"], cfg["padding"], cfg["groups"])
    np.testing.assert_allclose(y, F.conv2d_naive(x, w, b, *args), rtol=1e-12, atol=1e-12)
    rdx, rdw, rdb = F.conv2d_naive_backward(dy, x, w, b, *args)
    np.testing.assert_allclose(dx, rdx, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dw, rdw, rtol=1e-11, atol=1e-11)
    if b is not None:
        np.testing.assert_allclose(db, rdb, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("shape", [
    # (N, C, F, H, W, k, stride, padding, groups): Darknet/YOLOX-like layers, scaled down
    (2, 3, 8, 17, 15, 3, 1, 1, 1),  # stem: odd sizes, 3 input channels
    (3, 4, 8, 16, 16, 3, 2, 1, 1),  # stride-2 downsampling
    (2, 8, 4, 9, 9, 1, 1, 0, 1),  # 1x1, one GEMM on x itself
    (5, 8, 8, 3, 3, 3, 1, 1, 2),  # tiny maps: several images per band
    (2, 6, 6, 7, 8, 3, 2, 1, 6),  # depthwise
    (1, 4, 4, 12, 10, 5, 1, 2, 1),  # 5x5, batch 1: bands of one image must share dx rows
])
def test_darknet_like_layers_match_naive(engine, shape):
    n, c, f, h, w, k, s, p, g = shape
    cfg = {"in_channels": c, "out_channels": f, "kernel_size": k, "stride": s, "padding": p, "groups": g,
           "bias": True, "batch": n, "height": h, "width": w}
    x, wt, b = make_case(cfg, np.float64, seed=sum(shape))
    y, dy, dx, dw, db = run_fast(x, wt, b, cfg)
    rdx, rdw, rdb = F.conv2d_naive_backward(dy, x, wt, b, s, p, g)
    np.testing.assert_allclose(y, F.conv2d_naive(x, wt, b, s, p, g), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, rdx, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dw, rdw, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(db, rdb, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("shape", [
    # deep-layer-like: many filters, few output cells (6 F >= N Ho Wo), so workers split filters/channels
    (2, 5, 16, 3, 3, 3, 1, 1),  # odd channel count: unequal channel ranges
    (3, 6, 14, 4, 4, 3, 2, 1),  # stride 2
    (4, 7, 9, 2, 2, 1, 1, 0),  # 1x1 on tiny maps: packed images
    (1, 4, 12, 3, 2, 1, 1, 0),  # 1x1, one image: the GEMMs read x and write dx directly
])
@pytest.mark.parametrize("threads", ["2", "3"])
def test_backward_split_by_filters_matches_naive(monkeypatch, shape, threads):
    n, c, f, h, w, k, s, p = shape
    monkeypatch.setattr(F, "PARALLEL_MIN_FLOPS", 0)
    monkeypatch.setattr(F, "SPLIT_MIN_FILTERS", 1)
    monkeypatch.setattr(F, "MIN_COLS", 4)
    monkeypatch.setenv("YOLOX_NP_CONV_THREADS", threads)
    geo = F._geometry(np.zeros((n, c, h, w)), np.zeros((f, c, k, k)), s, p, 1)
    assert F._split_filters(geo, int(threads))
    cfg = {"in_channels": c, "out_channels": f, "kernel_size": k, "stride": s, "padding": p, "groups": 1,
           "bias": True, "batch": n, "height": h, "width": w}
    x, wt, b = make_case(cfg, np.float64, seed=n + c + f)
    y, dy, dx, dw, db = run_fast(x, wt, b, cfg)
    rdx, rdw, rdb = F.conv2d_naive_backward(dy, x, wt, b, s, p, 1)
    np.testing.assert_allclose(dx, rdx, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dw, rdw, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(db, rdb, rtol=1e-11, atol=1e-11)
    _, _, db2 = F.conv2d_backward(dy, F.conv2d_forward(x, wt, b, s, p, 1)[1], need_dx=False)
    np.testing.assert_array_equal(db, db2)


@pytest.mark.parametrize("shape", [(1, 5, 7, 6, 5, 3, 1, 1), (1, 4, 9, 6, 6, 3, 2, 1), (1, 4, 5, 2, 3, 1, 1, 0)])
@pytest.mark.parametrize("threads", ["2", "3"])
def test_forward_split_by_filters_when_bands_do_not_share_out(monkeypatch, shape, threads):
    """One band (or a number of bands that is no multiple of the workers): workers split the filters."""
    n, c, f, h, w, k, s, p = shape
    monkeypatch.setattr(F, "PARALLEL_MIN_FLOPS", 0)
    monkeypatch.setattr(F, "SPLIT_MIN_FILTERS", 1)
    monkeypatch.setattr(F, "MIN_COLS", 10**6)
    monkeypatch.setenv("YOLOX_NP_CONV_THREADS", threads)
    geo = F._geometry(np.zeros((n, c, h, w)), np.zeros((f, c, k, k)), s, p, 1)
    assert len(F._plan_chunks(geo, 8, int(threads))) % int(threads) != 0
    rng = np.random.default_rng(sum(shape))
    x, wt, b = rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c, k, k)), rng.standard_normal(f)
    y, _ = F.conv2d_forward(x, wt, b, s, p, 1)
    np.testing.assert_allclose(y, F.conv2d_naive(x, wt, b, s, p, 1), rtol=1e-12, atol=1e-12)


def test_need_dx_false_gives_the_same_parameter_gradients(engine):
    cfg = {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "stride": 1, "padding": 1, "groups": 1,
           "bias": True, "batch": 2, "height": 9, "width": 7}
    x, w, b = make_case(cfg, np.float64)
    y, cache = F.conv2d_forward(x, w, b, 1, 1, 1)
    dy = np.random.default_rng(3).standard_normal(y.shape)
    _, dw, db = F.conv2d_backward(dy, cache)
    dx_none, dw2, db2 = F.conv2d_backward(dy, cache, need_dx=False)
    assert dx_none is None
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


def test_results_do_not_depend_on_run(engine):
    """Bands are shared out statically, so float32 sums come out bit-identical on every call."""
    cfg = {"in_channels": 5, "out_channels": 7, "kernel_size": 3, "stride": 1, "padding": 1, "groups": 1,
           "bias": True, "batch": 3, "height": 13, "width": 11}
    x, w, b = make_case(cfg, np.float32)
    first = run_fast(x, w, b, cfg)
    for _ in range(3):
        for a, r in zip(first, run_fast(x, w, b, cfg)):
            np.testing.assert_array_equal(a, r)


def test_mixed_dtypes_and_non_contiguous_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3))  # float64 weights: the result is float64
    y, _ = F.conv2d_forward(x, w, None, 1, 1, 1)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, F.conv2d_naive(x.astype(np.float64), w, None, 1, 1, 1), rtol=1e-12, atol=1e-12)
    xt = rng.standard_normal((2, 3, 9, 8)).transpose(0, 1, 3, 2)  # a (2, 3, 8, 9) view
    y2, cache = F.conv2d_forward(xt, w, None, 2, 1, 1)
    np.testing.assert_allclose(y2, F.conv2d_naive(xt, w, None, 2, 1, 1), rtol=1e-12, atol=1e-12)


def test_naive_conv_hand_computed():
    """A 1-channel 3x3 input, 2x2 kernel of ones, stride 1: every output is the sum of a 2x2 window."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    y = F.conv2d_naive(x, w, np.array([0.5]), 1, 0, 1)
    np.testing.assert_array_equal(y[0, 0], [[0 + 1 + 3 + 4 + 0.5, 1 + 2 + 4 + 5 + 0.5],
                                            [3 + 4 + 6 + 7 + 0.5, 4 + 5 + 7 + 8 + 0.5]])
    # padding 1, stride 2 on the same input: the corners' windows
    y2 = F.conv2d_naive(x, w, None, 2, 1, 1)
    np.testing.assert_array_equal(y2[0, 0], [[0, 1 + 2], [3 + 6, 4 + 5 + 7 + 8]])


def test_naive_backward_matches_finite_differences():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((6, 2, 3, 3))
    b = rng.standard_normal(6)
    args = (2, 1, 2)
    dy = rng.standard_normal(F.conv2d_naive(x, w, b, *args).shape)
    dx, dw, db = F.conv2d_naive_backward(dy, x, w, b, *args)
    h = 1e-6

    def numeric(arr, idx):
        old = arr[idx]
        arr[idx] = old + h
        up = np.sum(F.conv2d_naive(x, w, b, *args) * dy)
        arr[idx] = old - h
        down = np.sum(F.conv2d_naive(x, w, b, *args) * dy)
        arr[idx] = old
        return (up - down) / (2 * h)

    for arr, grad in ((x, dx), (w, dw), (b, db)):
        for _ in range(6):
            idx = tuple(int(rng.integers(s)) for s in arr.shape)
            assert abs(numeric(arr, idx) - grad[idx]) < 1e-6 * (1 + abs(grad[idx]))


# ----------------------------------------------------------------------------- kernels
@st.composite
def im2col_cases(draw):
    """A band of a batch: images [n0, n1), output rows [oy0, oy1) (all rows when n1 - n0 > 1), channels
    [c_off, c_off + c_cnt) of c_total."""
    k = draw(st.sampled_from([1, 2, 3, 5]))
    stride = draw(st.integers(1, 3))
    pad = draw(st.integers(0, k + 1))
    h = draw(st.integers(max(1, k - 2 * pad), 12))
    w = draw(st.integers(max(1, k - 2 * pad), 12))
    ho = F.conv_output_size(h, k, stride, pad)
    n = draw(st.integers(1, 3))
    n0 = draw(st.integers(0, n - 1))
    n1 = draw(st.integers(n0 + 1, n))
    oy0, oy1 = 0, ho
    if n1 - n0 == 1:
        oy0 = draw(st.integers(0, ho - 1))
        oy1 = draw(st.integers(oy0 + 1, ho))
    c_total = draw(st.integers(1, 4))
    c_off = draw(st.integers(0, c_total - 1))
    c_cnt = draw(st.integers(1, c_total - c_off))
    return (n, c_total, h, w), (c_off, c_cnt, n0, n1), (k, stride, pad), (oy0, oy1)


def reference_band(x, band, conv, rows):
    """The band's columns cut out of im2col_naive of each image."""
    (c_off, c_cnt, n0, n1), (k, stride, pad), (oy0, oy1) = band, conv, rows
    wo = F.conv_output_size(x.shape[3], k, stride, pad)
    return np.concatenate([F.im2col_naive(x[i, c_off:c_off + c_cnt], k, stride, pad)[:, oy0 * wo:oy1 * wo]
                           for i in range(n0, n1)], axis=1)


def band_scratch(case, dtype):
    """Scratch for the stride-2 phase planes: none half of the time, so the row-by-row path is tested too."""
    (n, c_total, h, w), (c_off, c_cnt, n0, n1), (k, stride, pad), (oy0, oy1) = case
    wo = F.conv_output_size(w, k, stride, pad)
    size = kernels.scratch_size(c_cnt, n1 - n0, h, w, k, stride, pad, wo, oy0, oy1)
    return np.empty(size if (h + w + oy0) % 2 == 0 else 0, dtype=dtype)


@settings(max_examples=100, deadline=None)
@given(case=im2col_cases(), dtype=st.sampled_from([np.float32, np.float64]))
def test_im2col_band_equals_numpy_reference_and_stays_in_its_columns(case, dtype):
    shape, band, conv, rows = case
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    ref = reference_band(x, band, conv, rows)
    col = np.full((ref.shape[0], ref.shape[1] + 3), 7.0, dtype=dtype)
    kernels.im2col_band(x, *band, *conv, *rows, F.conv_output_size(shape[3], *conv), col, band_scratch(case, dtype))
    np.testing.assert_array_equal(col[:, :ref.shape[1]], ref)
    assert np.all(col[:, ref.shape[1]:] == 7)


@settings(max_examples=100, deadline=None)
@given(case=im2col_cases())
def test_col2im_is_the_adjoint_of_im2col(case):
    """<im2col(x), c> == <x, col2im(c)> on the band, and col2im equals the NumPy scatter-add."""
    shape, band, conv, rows = case
    (c_off, c_cnt, n0, n1), (k, stride, pad), (oy0, oy1) = band, conv, rows
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    ho, wo = F.conv_output_size(shape[2], *conv), F.conv_output_size(shape[3], *conv)
    m = (n1 - n0) * (oy1 - oy0) * wo
    cband = rng.standard_normal((c_cnt * k * k, m + 2))
    col = np.zeros_like(cband)
    kernels.im2col_band(x, *band, *conv, *rows, wo, col, band_scratch(case, x.dtype))
    dx = np.zeros_like(x)
    kernels.col2im_band(cband.copy(), *band, *conv, *rows, wo, dx, band_scratch(case, x.dtype))
    lhs = np.vdot(col[:, :m], cband[:, :m])
    assert abs(lhs - np.vdot(x, dx)) <= 1e-12 * (1 + np.abs(col).sum() * np.abs(cband).max())
    expect = np.zeros_like(x)
    per = (oy1 - oy0) * wo
    for j, i in enumerate(range(n0, n1)):
        full = np.zeros((c_cnt * k * k, ho * wo))
        full[:, oy0 * wo:oy1 * wo] = cband[:, j * per:(j + 1) * per]
        expect[i, c_off:c_off + c_cnt] = F.col2im_naive(full, (c_cnt,) + shape[2:], k, stride, pad)
    np.testing.assert_allclose(dx, expect, rtol=1e-12, atol=1e-12)


def test_col2im_accumulates_into_dx():
    rng = np.random.default_rng(2)
    col = rng.standard_normal((2 * 9, 5 * 4))
    dx = np.ones((1, 2, 5, 4))
    kernels.col2im_band(col.copy(), 0, 2, 0, 1, 3, 1, 1, 0, 5, 4, dx, np.empty(0))
    np.testing.assert_allclose(dx[0], 1 + F.col2im_naive(col, (2, 5, 4), 3, 1, 1), rtol=1e-12)


def test_whole_image_kernels_used_by_the_lessons():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 7, 6)).astype(np.float32)
    col = np.empty((27, 4 * 3), np.float32)
    kernels.im2col_image(x, 3, 2, 1, 4, 3, col)
    np.testing.assert_array_equal(col, F.im2col_naive(x, 3, 2, 1))
    dx = np.zeros_like(x)
    snapshot = col.copy()
    kernels.col2im_image(col, 3, 2, 1, 4, 3, dx)
    np.testing.assert_array_equal(col, snapshot)  # the whole-image version leaves its input alone
    np.testing.assert_allclose(dx, F.col2im_naive(snapshot, x.shape, 3, 2, 1), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- band planner
@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 9), ho=st.integers(1, 40), wo=st.integers(1, 40), k=st.sampled_from([1, 3]),
       cin=st.integers(1, 600), workers=st.integers(1, 4), min_cols=st.sampled_from([1, 8, 256]))
def test_bands_cover_every_output_cell_once(n, ho, wo, k, cin, workers, min_cols):
    geo = F.ConvGeometry(n, cin, ho, wo, 8, k, 1, k // 2, 1, ho, wo)
    old = F.MIN_COLS
    F.MIN_COLS = min_cols
    try:
        chunks = F._plan_chunks(geo, 4, workers)
    finally:
        F.MIN_COLS = old
    hits = np.zeros((n, ho), int)
    for n0, n1, r0, r1 in chunks:
        assert 0 <= n0 < n1 <= n and 0 <= r0 < r1 <= ho
        assert n1 - n0 == 1 or (r0, r1) == (0, ho)  # packed images are whole images
        hits[n0:n1, r0:r1] += 1
    assert np.all(hits == 1)


# ----------------------------------------------------------------------------- validation, BLAS switch
@pytest.mark.parametrize("x_shape, w_shape, kw, match", [
    ((2, 3, 8), (4, 3, 3, 3), {}, "shape"),
    ((2, 3, 8, 8), (4, 3, 3, 2), {}, "F, C/groups, k, k"),
    ((2, 3, 8, 8), (4, 2, 3, 3), {}, "channels"),
    ((2, 4, 8, 8), (3, 2, 3, 3), {"groups": 2}, "divisible"),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"stride": 0}, "stride"),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"padding": -1}, "padding"),
    ((2, 3, 2, 2), (4, 3, 5, 5), {}, "smaller than the kernel"),
    ((0, 3, 8, 8), (4, 3, 3, 3), {}, "empty"),
])
def test_conv_forward_rejects_bad_input(x_shape, w_shape, kw, match):
    with pytest.raises(ValueError, match=match):
        F.conv2d_forward(np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32), None, **kw)


def test_conv_rejects_bad_bias_dtype_and_gradient_shape():
    x, w = np.zeros((1, 2, 5, 5), np.float32), np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        F.conv2d_forward(x, w, np.zeros(2, np.float32), 1, 1, 1)
    with pytest.raises(ValueError, match="floating"):
        F.conv2d_forward(x.astype(np.int32), w.astype(np.int32), None, 1, 1, 1)
    _, cache = F.conv2d_forward(x, w, None, 1, 1, 1)
    with pytest.raises(ValueError, match=r"dy of shape \(1, 3, 5, 5\)"):
        F.conv2d_backward(np.zeros((1, 3, 4, 5), np.float32), cache)


def test_conv_threads_env_is_validated(monkeypatch):
    monkeypatch.setenv("YOLOX_NP_CONV_THREADS", "two")
    with pytest.raises(ValueError, match="YOLOX_NP_CONV_THREADS"):
        F.conv_workers()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_threaded_conv_works_in_a_forked_child(monkeypatch):
    """A child forked after the worker threads started must not wait for threads it does not have."""
    monkeypatch.setattr(F, "PARALLEL_MIN_FLOPS", 0)
    monkeypatch.setenv("YOLOX_NP_CONV_THREADS", "2")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 4, 9, 9)), rng.standard_normal((6, 4, 3, 3))
    y = F.conv2d_forward(x, w, None, 1, 1, 1)[0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return into pytest
        ok = np.allclose(F.conv2d_forward(x, w, None, 1, 1, 1)[0], y)
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 120
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in the threaded convolution")
        time.sleep(0.05)
    assert os.read(read, 1) == b"1"


def test_blas_switch_restores_the_thread_count():
    blas = F.openblas()
    if not blas.available:
        pytest.skip("NumPy does not use a controllable OpenBLAS here")
    before = blas.get_threads()
    with F.blas_single_threaded():
        with F.blas_single_threaded():
            assert blas.get_threads() == 1
        assert blas.get_threads() == 1
    assert blas.get_threads() == before


# ----------------------------------------------------------------------------- pure-Python path
JIT_FREE = textwrap.dedent("""
    import numba, numpy as np
    from yolox_np.nn import functional as F
    assert numba.config.DISABLE_JIT
    F.PARALLEL_MIN_FLOPS, F.MIN_COLS, F.CHUNK_BYTES = 0, 2, 64
    rng = np.random.default_rng(0)
    for (n, c, f, h, w, k, s, p, g) in [(2, 3, 4, 6, 5, 3, 1, 1, 1), (3, 4, 4, 5, 6, 3, 2, 1, 2),
                                         (2, 2, 3, 6, 8, 3, 2, 1, 1), (2, 4, 3, 4, 4, 1, 1, 0, 1),
                                         (2, 3, 3, 5, 6, 3, 1, 1, 3)]:
        x = rng.standard_normal((n, c, h, w)); wt = rng.standard_normal((f, c // g, k, k))
        y, cache = F.conv2d_forward(x, wt, None, s, p, g)
        dy = rng.standard_normal(y.shape)
        dx, dw, _ = F.conv2d_backward(dy, cache)
        rdx, rdw, _ = F.conv2d_naive_backward(dy, x, wt, None, s, p, g)
        assert np.allclose(y, F.conv2d_naive(x, wt, None, s, p, g), atol=1e-12)
        assert np.allclose(dx, rdx, atol=1e-12) and np.allclose(dw, rdw, atol=1e-12)
    print("ok")
""")


def test_engine_runs_without_jit():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", YOLOX_NP_CONV_THREADS="2")
    out = subprocess.run([sys.executable, "-c", JIT_FREE], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ----------------------------------------------------------------------------- benchmark report
def test_quick_conv_bench_writes_the_documented_json(tmp_path):
    path = tmp_path / "bench.json"
    lines = []
    report = bench.run_bench("conv", path, quick=True, log=lines.append)
    data = json.loads(path.read_text())
    assert data["schema_version"] == bench.SCHEMA_VERSION and data["kind"] == "conv" and data["quick"]
    assert data["machine"]["cpu_count"] >= 1
    blas = data["blas"]
    assert {"numpy", "openblas_runtime", "env", "conv_threads"} <= set(blas)
    assert {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"} <= set(blas["env"])
    assert {"found", "corename", "threads"} <= set(blas["openblas_runtime"])
    train, infer = data["conv"]["train_256_b8"], data["conv"]["infer_640_b1"]
    assert len(train["layers"]) == len(bench.QUICK_CONVS) == len(infer["layers"])
    for rec in train["layers"]:
        for key in ("fwd", "fwd_bwd"):
            assert {"time_s", "gflops", "gemm_time_s", "gemm_gflops", "ratio"} <= set(rec[key])
            assert rec[key]["time_s"] > 0 and rec[key]["ratio"] > 0
        m, n, k = rec["gemm_mnk"]
        assert m * n * k == rec["macs"]
    assert "fwd_bwd" not in infer["layers"][0]
    for key in ("geomean_ratio", "network_ratio", "geomean_time_s"):
        assert train["summary"]["fwd"][key] > 0 and train["summary"]["fwd_bwd"][key] > 0
    assert report["conv"]["train_256_b8"]["summary"]["fwd"]["geomean_ratio"] == pytest.approx(
        train["summary"]["fwd"]["geomean_ratio"])
    text = "\n".join(lines)
    assert "geometric mean" in text and "OPENBLAS_CORETYPE" in text and "quick.3x3s2" in text


def test_quick_model_record_has_the_documented_fields():
    """The model benchmarks share `_model_record`; YOLOX-Nano at 32x32 is the cheap way to run it."""
    (rec,) = bench.bench_model_nano(quick=True, log=lambda *_: None)
    for key in ("name", "mode", "input", "convs", "conv_macs", "flops", "time_s", "gflops", "gemm_time_s",
                "gemm_gflops", "fraction_of_gemm_gflops"):
        assert key in rec
    assert rec["input"] == [1, 3, 32, 32] and rec["flops"] == 2 * rec["conv_macs"] > 0
    from yolox_np.models import count_flops, yolox_nano

    assert rec["flops"] == count_flops(yolox_nano(num_classes=80, fused=True), 32)  # counted independently
    assert rec["time_s"] > 0 and rec["gemm_time_s"] > 0
    json.dumps(rec)  # plain JSON types only


def test_bench_cli_rejects_unknown_kind():
    with pytest.raises(SystemExit):
        bench.main_bench(["gpu"])
    with pytest.raises(ValueError, match="conv, model or all"):
        bench.run_bench("gpu")


def test_darknet53_layer_table_counts_58_convolutions_and_the_published_flops():
    """58 convolutions; at 640x640 their MACs make up the backbone's 125.7 GFLOP (performance notes)."""
    assert sum(s.count for s in bench.DARKNET53_CONVS) == 58
    flops = sum(2 * s.macs(640, 1) * s.count for s in bench.DARKNET53_CONVS)
    assert flops / 1e9 == pytest.approx(125.7, abs=0.1)
