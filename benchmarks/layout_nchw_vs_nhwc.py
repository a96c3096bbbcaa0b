"""Which internal layout should the im2col convolution use? NCHW (the engine) against an NHWC variant.

Both take and return NCHW arrays, as the public API must. NHWC pays a transpose of x on the way in and of y
on the way out, and then builds `col` (band_rows, k*k*C) from contiguous channel runs and multiplies
`col @ W'` with W' (k*k*C, F), the weights permuted once beforehand (not timed). NCHW builds `col`
(C*k*k, band_cols) from shifted plane copies and `W @ col` is already the NCHW output
(yolox_np.nn.functional).

Timed single-threaded (OpenBLAS on one thread, one band after another) in CPU seconds of this process, so
the result is about work, not about how busy the machine is. Run:

    OPENBLAS_NUM_THREADS=1 YOLOX_NP_CONV_THREADS=1 python benchmarks/layout_nchw_vs_nhwc.py
"""

from __future__ import annotations

import os
import sys
import time

import numba
import numpy as np

from yolox_np.bench import DARKNET53_CONVS, geomean
from yolox_np.nn import functional as F

_u = np.uint64


@numba.njit(cache=True, nogil=True)
def nchw_to_nhwc(x, out):
    n_img, c, h, w = x.shape
    for n in range(n_img):
        for y in range(h):
            for xx in range(w):
                for ch in range(c):
                    out[n, y, xx, ch] = x[n, ch, y, xx]


@numba.njit(cache=True, nogil=True)
def im2col_nhwc_rows(xh, n, k, stride, pad, oy0, oy1, wo, col):
    """xh (N, H, W, C) -> col[(oy - oy0) * wo + ox, (ki * k + kj) * C + c] for output rows [oy0, oy1)."""
    _, h, w, c = xh.shape
    xf = xh.reshape(-1)
    cf = col.reshape(-1)
    kdim = k * k * c
    for oy in range(oy0, oy1):
        for ox in range(wo):
            base = _u(((oy - oy0) * wo + ox) * kdim)
            for ki in range(k):
                iy = oy * stride + ki - pad
                for kj in range(k):
                    ix = ox * stride + kj - pad
                    dst = base + _u((ki * k + kj) * c)
                    if 0 <= iy < h and 0 <= ix < w:
                        src = _u(((n * h + iy) * w + ix) * c)
                        for i in range(_u(c)):
                            cf[dst + i] = xf[src + i]
                    else:
                        for i in range(_u(c)):
                            cf[dst + i] = 0.0


def permute_weights(w):
    """(F, C, k, k) -> (k*k*C, F) in the (ki, kj, c) order of the NHWC col; a real NHWC engine would keep
    this copy with the layer, so it is made once, outside the timing."""
    f, c, k, _ = w.shape
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(k * k * c, f))


def conv_nhwc(x, wt, k, stride, pad, band_bytes=F.CHUNK_BYTES):
    n_img, c, h, wd = x.shape
    f = wt.shape[1]
    ho, wo = F.conv_output_size(h, k, stride, pad), F.conv_output_size(wd, k, stride, pad)
    xh = np.empty((n_img, h, wd, c), x.dtype)
    nchw_to_nhwc(x, xh)
    rows = max(1, min(ho, band_bytes // (k * k * c * 4 * wo)))
    col = np.empty((rows * wo, k * k * c), x.dtype)
    out = np.empty((rows * wo, f), x.dtype)
    y = np.empty((n_img, f, ho * wo), x.dtype)
    for n in range(n_img):
        for r0 in range(0, ho, rows):
            r1 = min(ho, r0 + rows)
            m = (r1 - r0) * wo
            im2col_nhwc_rows(xh, n, k, stride, pad, r0, r1, wo, col)
            np.matmul(col[:m], wt, out=out[:m])
            y[n, :, r0 * wo:r1 * wo] = out[:m].T
    return y.reshape(n_img, f, ho, wo)


def cpu_time(fn, repeats=3):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def compare_layer(spec, size, batch, rng):
    """(GEMM seconds, NCHW / GEMM, NHWC / GEMM) for one layer; checks that both layouts agree first."""
    xs, ws, ho = spec.shapes(size, batch)
    x = rng.standard_normal(xs, dtype=np.float32)
    w = rng.standard_normal(ws, dtype=np.float32)
    ref = F.conv2d_forward(x, w, None, spec.stride, 1, 1)[0]
    wt = permute_weights(w)
    np.testing.assert_allclose(conv_nhwc(x, wt, spec.k, spec.stride, 1), ref, rtol=1e-4, atol=1e-3)
    wm = w.reshape(spec.c_out, -1)
    col = rng.standard_normal((wm.shape[1], batch * ho * ho), dtype=np.float32)
    out = np.empty((spec.c_out, col.shape[1]), np.float32)
    t_gemm = cpu_time(lambda: np.matmul(wm, col, out=out))
    t_nchw = cpu_time(lambda: F.conv2d_forward(x, w, None, spec.stride, 1, 1))
    t_nhwc = cpu_time(lambda: conv_nhwc(x, wt, spec.k, spec.stride, 1))
    return t_gemm, t_nchw / t_gemm, t_nhwc / t_gemm


def main(size=128, batch=4):
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1" or os.environ.get("YOLOX_NP_CONV_THREADS") != "1":
        print("run with OPENBLAS_NUM_THREADS=1 YOLOX_NP_CONV_THREADS=1 (single-threaded CPU-time comparison)")
        return 1
    rng = np.random.default_rng(0)
    print(f"Darknet-53 3x3 layers at {size}x{size}, batch {batch}: CPU seconds, ratio to the bare GEMM")
    print(f"{'layer':<36} {'GEMM ms':>8} {'NCHW':>6} {'NHWC':>6}")
    ratios = {"nchw": [], "nhwc": []}
    for spec in DARKNET53_CONVS:
        if spec.k != 3:
            continue
        t_gemm, r_nchw, r_nhwc = compare_layer(spec, size, batch, rng)
        ratios["nchw"].append(r_nchw)
        ratios["nhwc"].append(r_nhwc)
        print(f"{spec.name[:36]:<36} {t_gemm * 1e3:8.1f} {r_nchw:6.2f} {r_nhwc:6.2f}", flush=True)
    print(f"{'geometric mean':<36} {'':>8} {geomean(ratios['nchw']):6.2f} {geomean(ratios['nhwc']):6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:3])))
