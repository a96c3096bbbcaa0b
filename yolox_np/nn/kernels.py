"""Numba kernels for the hot loops around the GEMMs: im2col/col2im, depthwise conv, max-pooling.

The convolution kernels work on a band of an NCHW batch: images `n0 <= n < n1`, output rows
`oy0 <= oy < oy1`, channels `c_off <= c < c_off + c_cnt` (one group), so the caller can build the im2col
matrix of a cache-sized chunk, multiply it at once and move on. Column
`((n - n0) * (oy1 - oy0) + oy - oy0) * wo + ox` of `col` (shape (c_cnt*k*k, ncols)) holds output position
(n, oy, ox); row `(c * k + ki) * k + kj` holds kernel tap (c, ki, kj), as in `functional.im2col_naive`.
Each row is written image after image, so a band of several small images is filled in long runs.

Index arithmetic is done in unsigned integers (`_u`): Numba then skips the negative-index wrap-around test,
which is what lets LLVM vectorise the inner copy loops (5-10x faster). Every index is non-negative by
construction.

The Numba kernels are compiled with `cache=True` and release the GIL, so two Python threads can run them
at once; the entry points `im2col_band`/`col2im_band` are plain Python that pick a kernel. With
`NUMBA_DISABLE_JIT=1` everything runs as plain (slow) Python, which is how a student can step through it
in a debugger.
"""

from __future__ import annotations

import numba
import numpy as np

njit = numba.njit(cache=True, nogil=True)
# Small helpers are inlined at Numba's level, so that every kernel is one self-contained function: a cached
# Numba function that called another large one ran 6x slower than freshly compiled (Numba 0.68).
njit_inline = numba.njit(cache=True, nogil=True, inline="always")
_u = np.uint64


@njit_inline
def _tap_ranges(k, stride, pad, w, wo):
    """For each kj: the valid output columns [lo, hi) (0 <= ox*stride + kj - pad < w) and the first input
    column lo*stride + kj - pad."""
    lo = np.empty(k, np.int64)
    hi = np.empty(k, np.int64)
    first = np.empty(k, np.int64)
    for kj in range(k):
        a = 0
        if kj < pad:
            a = (pad - kj + stride - 1) // stride
        b = (w - 1 + pad - kj) // stride + 1
        a = min(a, wo)
        b = max(min(b, wo), a)
        lo[kj] = a
        hi[kj] = b
        first[kj] = a * stride + kj - pad
    return lo, hi, first


@njit_inline
def _row_range(ki, stride, pad, h, oy0, oy1):
    """Output rows [a, b) within [oy0, oy1) whose input row oy*stride + ki - pad lies inside [0, h)."""
    a = oy0
    if ki < pad:
        a = min(max(oy0, (pad - ki + stride - 1) // stride), oy1)
    b = min(oy1, (h - 1 + pad - ki) // stride + 1)
    b = max(b, a)
    return a, b


# ----------------------------------------------------------------------------- stride-phase planes
# With wo == w / stride, output row oy of tap (ki, kj) reads input row stride*(oy + dr) + rp and columns
# stride*(ox + dc) + cp (rp, cp: the tap's phases; dr, dc: its shifts). Split into its stride x stride phase
# planes ("space to depth"), the input becomes planes of exactly the output's width, and every tap's rows
# of a band are ONE contiguous copy out of one plane, shifted by dr rows and dc columns; the few cells that
# the shift wraps round to the neighbouring row are zeroed afterwards. For stride 1 the planes are the input
# itself; for stride 2 the band's rows are split once (a vectorised de-interleave) into scratch memory.
@njit_inline
def _phase(t, stride):
    """t = stride * shift + phase with 0 <= phase < stride."""
    ph = t % stride
    return ph, (t - ph) // stride


def phase_rows(h, w, k, stride, pad, wo, oy0, oy1):
    """(usable, i0, i1): whether output rows [oy0, oy1) can be built from phase planes, and the plane
    rows [i0, i1) they read. Needs stride 1 or 2, sizes divisible by the stride, wo == w / stride and
    every column shift smaller than a plane row."""
    if stride > 2 or h % stride != 0 or w % stride != 0 or wo != w // stride:
        return False, 0, 0
    shifts = [(kk - pad) // stride for kk in range(k)]
    if max(abs(d) for d in shifts) >= wo:
        return False, 0, 0
    d_min, d_max = min(shifts), max(shifts)
    i0 = max(0, oy0 + d_min)
    i1 = max(min(h // stride, oy1 + d_max), i0)
    return True, i0, i1


def scratch_size(c_cnt, nb, h, w, k, stride, pad, wo, oy0, oy1):
    """Elements of scratch memory `im2col_band`/`col2im_band` use for a band (0 if they need none)."""
    ok, i0, i1 = phase_rows(h, w, k, stride, pad, wo, oy0, oy1)
    if not ok or stride == 1:
        return 0
    return nb * c_cnt * stride * stride * (i1 - i0) * (w // stride)


@njit
def _split_phases2(x, c_off, c_cnt, n0, n1, i0, i1, planes):
    """planes[n - n0, c, rp, cp, i - i0, j] = x[n, c_off + c, 2i + rp, 2j + cp] for plane rows [i0, i1)."""
    c_all, h, w = x.shape[1], x.shape[2], x.shape[3]
    ws, rows = w // 2, i1 - i0
    xf = x.reshape(-1)
    pf = planes.reshape(-1)
    for n in range(n1 - n0):
        for c in range(c_cnt):
            for rp in range(2):
                for i in range(i0, i1):
                    src = _u(((n0 + n) * c_all + c_off + c) * h * w + (2 * i + rp) * w)
                    even = _u(((((n * c_cnt + c) * 2 + rp) * 2) * rows + i - i0) * ws)
                    odd = even + _u(rows * ws)
                    for j in range(_u(ws)):
                        pf[even + j] = xf[src + _u(2) * j]
                        pf[odd + j] = xf[src + _u(2) * j + _u(1)]


@njit
def _merge_phases2_add(planes, c_off, c_cnt, n0, n1, i0, i1, dx):
    """Adjoint of `_split_phases2`: dx[n, c_off + c, 2i + rp, 2j + cp] += planes[n - n0, c, rp, cp, i - i0, j]."""
    c_all, h, w = dx.shape[1], dx.shape[2], dx.shape[3]
    ws, rows = w // 2, i1 - i0
    xf = dx.reshape(-1)
    pf = planes.reshape(-1)
    for n in range(n1 - n0):
        for c in range(c_cnt):
            for rp in range(2):
                for i in range(i0, i1):
                    dst = _u(((n0 + n) * c_all + c_off + c) * h * w + (2 * i + rp) * w)
                    even = _u(((((n * c_cnt + c) * 2 + rp) * 2) * rows + i - i0) * ws)
                    odd = even + _u(rows * ws)
                    for j in range(_u(ws)):
                        xf[dst + _u(2) * j] += pf[even + j]
                        xf[dst + _u(2) * j + _u(1)] += pf[odd + j]


@njit_inline
def _zero_wrapped(cf, row, dc, ws, r0, r1):
    """Zero the |dc| cells at the left (dc < 0) or right (dc > 0) end of rows [r0, r1) of a band row."""
    if dc == -1 or dc == 1:  # 3x3 kernels: one cell per row, no inner loop
        base = row + _u(r0 * ws + (ws - 1 if dc > 0 else 0))
        for oy in range(_u(r1 - r0)):
            cf[base + oy * _u(ws)] = 0.0
        return
    first = 0 if dc < 0 else ws - dc
    for oy in range(r0, r1):
        base = row + _u(oy * ws + first)
        for i in range(_u(abs(dc))):
            cf[base + i] = 0.0


@njit
def _im2col_planes(planes, pn0, pc0, c_cnt, nb, stride, k, pad, oy0, oy1, i0, hs, col):
    """Band columns from phase planes (N', C', stride, stride, rows, ws) whose row 0 is plane row i0;
    hs = rows of a full plane. Images pn0.., channels pc0.. of `planes`."""
    c_all, rows, ws = planes.shape[1], planes.shape[4], planes.shape[5]
    plane = rows * ws
    pf = planes.reshape(-1)
    cf = col.reshape(-1)
    ncol = col.shape[1]
    per_img = (oy1 - oy0) * ws
    for c in range(c_cnt):
        for ki in range(k):
            rp, dr = _phase(ki - pad, stride)
            a = min(max(oy0, -dr), oy1)
            b = max(min(oy1, hs - dr), a)
            for kj in range(k):
                cp, dc = _phase(kj - pad, stride)
                # flat source range of the block, clipped to the plane (clipped cells are border cells)
                s_start = (a + dr - i0) * ws + dc
                s_end = min((b - 1 + dr - i0) * ws + ws + dc, plane)
                d_start = (a - oy0) * ws
                if s_start < 0:
                    d_start -= s_start
                    s_start = 0
                for n in range(nb):
                    row = _u(((c * k + ki) * k + kj) * ncol + n * per_img)
                    for i in range(_u(0), _u((a - oy0) * ws)):  # rows above/below the image
                        cf[row + i] = 0.0
                    for i in range(_u((b - oy0) * ws), _u(per_img)):
                        cf[row + i] = 0.0
                    if b <= a:
                        continue
                    src = _u(((((pn0 + n) * c_all + pc0 + c) * stride + rp) * stride + cp) * plane + s_start)
                    dst = row + _u(d_start)
                    for i in range(_u(s_end - s_start)):
                        cf[dst + i] = pf[src + i]
                    if dc != 0:
                        _zero_wrapped(cf, row, dc, ws, a - oy0, b - oy0)


@njit
def _col2im_planes(col, planes, pn0, pc0, c_cnt, nb, stride, k, pad, oy0, oy1, i0, hs):
    """Adjoint of `_im2col_planes` (planes += ...); zeroes the wrapped-round border cells of col first."""
    c_all, rows, ws = planes.shape[1], planes.shape[4], planes.shape[5]
    plane = rows * ws
    pf = planes.reshape(-1)
    cf = col.reshape(-1)
    ncol = col.shape[1]
    per_img = (oy1 - oy0) * ws
    for c in range(c_cnt):
        for ki in range(k):
            rp, dr = _phase(ki - pad, stride)
            a = min(max(oy0, -dr), oy1)
            b = max(min(oy1, hs - dr), a)
            if b <= a:
                continue
            for kj in range(k):
                cp, dc = _phase(kj - pad, stride)
                d_start = (a + dr - i0) * ws + dc
                d_end = min((b - 1 + dr - i0) * ws + ws + dc, plane)
                s_start = (a - oy0) * ws
                if d_start < 0:
                    s_start -= d_start
                    d_start = 0
                for n in range(nb):
                    row = _u(((c * k + ki) * k + kj) * ncol + n * per_img)
                    if dc != 0:
                        _zero_wrapped(cf, row, dc, ws, a - oy0, b - oy0)
                    src = row + _u(s_start)
                    dst = _u(((((pn0 + n) * c_all + pc0 + c) * stride + rp) * stride + cp) * plane + d_start)
                    for i in range(_u(d_end - d_start)):
                        pf[dst + i] += cf[src + i]


# ----------------------------------------------------------------------------- im2col / col2im
# The entry points are plain Python that pick a kernel: a Numba function that calls another large Numba
# function ran 6x slower once loaded from the cache (Numba 0.68), so kernels never call each other.
def im2col_band(x, c_off, c_cnt, n0, n1, k, stride, pad, oy0, oy1, wo, col, scratch):
    """Channels [c_off, c_off + c_cnt) of images [n0, n1) of x (N, C, H, W) (C-contiguous), output rows
    [oy0, oy1) -> col[:, :(n1-n0)*(oy1-oy0)*wo] (columns ordered image, row, column); padding is 0.

    `scratch` (1-D, x's dtype) of at least `scratch_size(...)` elements enables the stride-2 fast path.
    """
    n_all, c_all, h, w = x.shape
    nb = n1 - n0
    ok, i0, i1 = phase_rows(h, w, k, stride, pad, wo, oy0, oy1)
    if ok and stride == 1:
        planes = x.reshape(n_all, c_all, 1, 1, h, w)
        _im2col_planes(planes, n0, c_off, c_cnt, nb, 1, k, pad, oy0, oy1, 0, h, col)
    elif ok and stride == 2 and scratch.size >= scratch_size(c_cnt, nb, h, w, k, stride, pad, wo, oy0, oy1):
        planes = scratch[:nb * c_cnt * 4 * (i1 - i0) * (w // 2)].reshape(nb, c_cnt, 2, 2, i1 - i0, w // 2)
        _split_phases2(x, c_off, c_cnt, n0, n1, i0, i1, planes)
        _im2col_planes(planes, 0, 0, c_cnt, nb, 2, k, pad, oy0, oy1, i0, h // 2, col)
    else:
        _im2col_band_rows(x, c_off, c_cnt, n0, n1, k, stride, pad, oy0, oy1, wo, col)


def col2im_band(col, c_off, c_cnt, n0, n1, k, stride, pad, oy0, oy1, wo, dx, scratch):
    """Adjoint of `im2col_band`: dx (N, C, H, W) += scatter-add of col[:, :(n1-n0)*(oy1-oy0)*wo].

    The phase-plane paths zero the wrapped-round border cells of `col` in place (they belong to padding
    taps, whose gradient is dropped), so `col` is scratch afterwards.
    """
    n_all, c_all, h, w = dx.shape
    nb = n1 - n0
    ok, i0, i1 = phase_rows(h, w, k, stride, pad, wo, oy0, oy1)
    if ok and stride == 1:
        planes = dx.reshape(n_all, c_all, 1, 1, h, w)
        _col2im_planes(col, planes, n0, c_off, c_cnt, nb, 1, k, pad, oy0, oy1, 0, h)
    elif ok and stride == 2 and scratch.size >= scratch_size(c_cnt, nb, h, w, k, stride, pad, wo, oy0, oy1):
        planes = scratch[:nb * c_cnt * 4 * (i1 - i0) * (w // 2)].reshape(nb, c_cnt, 2, 2, i1 - i0, w // 2)
        planes.fill(0)
        _col2im_planes(col, planes, 0, 0, c_cnt, nb, 2, k, pad, oy0, oy1, i0, h // 2)
        _merge_phases2_add(planes, c_off, c_cnt, n0, n1, i0, i1, dx)
    else:
        _col2im_band_rows(col, c_off, c_cnt, n0, n1, k, stride, pad, oy0, oy1, wo, dx)


def im2col_image(x, k, stride, pad, ho, wo, col):
    """x (C, H, W) -> col (C*k*k, ho*wo); padded cells are 0.

    Row (c*k + ki)*k + kj holds x[c, oy*stride + ki - pad, ox*stride + kj - pad] for every output (oy, ox).
    """
    x4 = np.ascontiguousarray(x)[None]
    scratch = np.empty(scratch_size(x.shape[0], 1, x.shape[1], x.shape[2], k, stride, pad, wo, 0, ho), x.dtype)
    im2col_band(x4, 0, x.shape[0], 0, 1, k, stride, pad, 0, ho, wo, col, scratch)


def col2im_image(col, k, stride, pad, ho, wo, dx):
    """Adjoint of `im2col_image`: dx (C, H, W) += scatter-add of col (C*k*k, ho*wo) (col is not modified)."""
    dx4 = np.ascontiguousarray(dx)[None]
    scratch = np.empty(scratch_size(dx.shape[0], 1, dx.shape[1], dx.shape[2], k, stride, pad, wo, 0, ho),
                       dx.dtype)
    col2im_band(np.array(col, copy=True), 0, dx.shape[0], 0, 1, k, stride, pad, 0, ho, wo, dx4, scratch)
    if not np.shares_memory(dx4, dx):
        dx[...] = dx4[0]


@njit
def _im2col_band_rows(x, c_off, c_cnt, n0, n1, k, stride, pad, oy0, oy1, wo, col):
    """Any stride, padding and size: one copy per output row of each tap."""
    h, w = x.shape[2], x.shape[3]
    xf = x.reshape(-1)
    cf = col.reshape(-1)
    ncol = col.shape[1]
    per_img = (oy1 - oy0) * wo
    lo, hi, first = _tap_ranges(k, stride, pad, w, wo)
    st = _u(stride)
    for c in range(c_cnt):
        for ki in range(k):
            a, b = _row_range(ki, stride, pad, h, oy0, oy1)
            for kj in range(k):
                x_lo, x_hi = _u(lo[kj]), _u(hi[kj])
                for n in range(n0, n1):
                    row = _u(((c * k + ki) * k + kj) * ncol + (n - n0) * per_img)
                    for i in range(_u(0), _u((a - oy0) * wo)):  # rows above/below the image
                        cf[row + i] = 0.0
                    for i in range(_u((b - oy0) * wo), _u(per_img)):
                        cf[row + i] = 0.0
                    plane = _u((n * x.shape[1] + c_off + c) * h * w)
                    for oy in range(a, b):
                        dst = row + _u((oy - oy0) * wo)
                        src = plane + _u((oy * stride + ki - pad) * w + first[kj])
                        for i in range(x_lo):
                            cf[dst + i] = 0.0
                        d2 = dst + x_lo
                        if stride == 1:
                            for i in range(x_hi - x_lo):
                                cf[d2 + i] = xf[src + i]
                        else:
                            for i in range(x_hi - x_lo):
                                cf[d2 + i] = xf[src + i * st]
                        for i in range(x_hi, _u(wo)):
                            cf[dst + i] = 0.0


@njit
def _col2im_band_rows(col, c_off, c_cnt, n0, n1, k, stride, pad, oy0, oy1, wo, dx):
    h, w = dx.shape[2], dx.shape[3]
    xf = dx.reshape(-1)
    cf = col.reshape(-1)
    ncol = col.shape[1]
    per_img = (oy1 - oy0) * wo
    lo, hi, first = _tap_ranges(k, stride, pad, w, wo)
    st = _u(stride)
    for c in range(c_cnt):
        for ki in range(k):
            a, b = _row_range(ki, stride, pad, h, oy0, oy1)
            for kj in range(k):
                x_lo, x_hi = _u(lo[kj]), _u(hi[kj])
                for n in range(n0, n1):
                    row = _u(((c * k + ki) * k + kj) * ncol + (n - n0) * per_img)
                    plane = _u((n * dx.shape[1] + c_off + c) * h * w)
                    for oy in range(a, b):
                        s2 = row + _u((oy - oy0) * wo) + x_lo
                        dst = plane + _u((oy * stride + ki - pad) * w + first[kj])
                        if stride == 1:
                            for i in range(x_hi - x_lo):
                                xf[dst + i] += cf[s2 + i]
                        else:
                            for i in range(x_hi - x_lo):
                                xf[dst + i * st] += cf[s2 + i]


# ----------------------------------------------------------------------------- depthwise, pooling
@njit
def depthwise_forward(x, w, stride, pad, out, c0=0, c1=-1):
    """Depthwise conv (one k x k filter per channel): x (N, C, H, W), w (C, 1, k, k) -> out (N, C, ho, wo),
    channels [c0, c1) (all by default). Each tap adds a weighted, shifted input row to an output row, so
    the inner loop runs along contiguous memory."""
    n_img, c_all, h, wd = x.shape
    k = w.shape[2]
    ho, wo = out.shape[2], out.shape[3]
    c1 = c_all if c1 < 0 else c1
    lo, hi, first = _tap_ranges(k, stride, pad, wd, wo)
    xf = x.reshape(-1)
    of = out.reshape(-1)
    st = _u(stride)
    for n in range(n_img):
        for c in range(c0, c1):
            obase = _u((n * c_all + c) * ho * wo)
            xbase = _u((n * c_all + c) * h * wd)
            for i in range(_u(ho * wo)):
                of[obase + i] = 0.0
            for ki in range(k):
                a, b = _row_range(ki, stride, pad, h, 0, ho)
                for kj in range(k):
                    wv = w[c, 0, ki, kj]
                    x_lo, x_hi = _u(lo[kj]), _u(hi[kj])
                    for oy in range(a, b):
                        orow = obase + _u(oy * wo) + x_lo
                        xrow = xbase + _u((oy * stride + ki - pad) * wd + first[kj])
                        if stride == 1:
                            for i in range(x_hi - x_lo):
                                of[orow + i] += wv * xf[xrow + i]
                        else:
                            for i in range(x_hi - x_lo):
                                of[orow + i] += wv * xf[xrow + i * st]


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})  # lets LLVM vectorise the dw sums
def depthwise_backward(x, w, dout, stride, pad, dx, dw, c0=0, c1=-1):
    """Gradients of `depthwise_forward` for channels [c0, c1): dx (N, C, H, W) and dw (C, 1, k, k) are
    accumulated (+=); the dw sums are carried in float64."""
    n_img, c_all, h, wd = x.shape
    k = w.shape[2]
    ho, wo = dout.shape[2], dout.shape[3]
    c1 = c_all if c1 < 0 else c1
    lo, hi, first = _tap_ranges(k, stride, pad, wd, wo)
    xf = x.reshape(-1)
    gf = dout.reshape(-1)
    dxf = dx.reshape(-1)
    st = _u(stride)
    for c in range(c0, c1):
        for ki in range(k):
            a, b = _row_range(ki, stride, pad, h, 0, ho)
            for kj in range(k):
                wv = w[c, 0, ki, kj]
                x_lo, x_hi = _u(lo[kj]), _u(hi[kj])
                acc = 0.0
                for n in range(n_img):
                    gbase = _u((n * c_all + c) * ho * wo)
                    xbase = _u((n * c_all + c) * h * wd)
                    for oy in range(a, b):
                        grow = gbase + _u(oy * wo) + x_lo
                        xrow = xbase + _u((oy * stride + ki - pad) * wd + first[kj])
                        if stride == 1:
                            for i in range(x_hi - x_lo):
                                g = gf[grow + i]
                                dxf[xrow + i] += wv * g
                                acc += g * xf[xrow + i]
                        else:
                            for i in range(x_hi - x_lo):
                                g = gf[grow + i]
                                dxf[xrow + i * st] += wv * g
                                acc += g * xf[xrow + i * st]
                dw[c, 0, ki, kj] += acc


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
