# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Convolution: loops, im2col, Numba
#
# **Goals**
# - write a convolution as plain loops and know exactly what it computes;
# - lower it to one matrix product with *im2col*, the way fast libraries do;
# - measure the three versions against each other and against a bare matrix product.
#
# Darknet-53, the backbone of YOLOX-Darknet53, is 52 convolutions deep; nearly all of YOLOX's time goes into
# convolutions, so this is where speed is won or lost.

# %%
import time

import numpy as np

from yolox_np.nn import functional as F
from yolox_np.nn import kernels

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Loops
# An output value is the sum over input channels and kernel positions of input × weight:
# `out[n, f, y, x] = b[f] + Σ_c Σ_i Σ_j x[n, c, y·s + i − p, x·s + j − p] · w[f, c, i, j]`.
# The output size is `⌊(H + 2p − k)/s⌋ + 1`: a 3×3 kernel with stride 2 and padding 1 halves a 256×256 map.

# %%
x = rng.standard_normal((1, 3, 8, 8))
w = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)
y = F.conv2d_naive(x, w, b, stride=2, padding=1)
print("input", x.shape, "-> output", y.shape)
manual = b[0] + np.sum(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))[0, :, 0:3, 0:3] * w[0])
print("out[0, 0, 0, 0] by hand:", manual, " by conv2d_naive:", y[0, 0, 0, 0])

# %% [markdown]
# ## 2. im2col: a convolution is a matrix product
# Copy every receptive field into a column: for a `C×H×W` image and a `k×k` kernel the matrix `col` has
# `C·k·k` rows and one column per output position. Then `W.reshape(F, C·k·k) @ col` is the whole output,
# already in NCHW order.

# %%
from yolox_np.figures import FIGURES

FIGURES["im2col"]()

# %%
col = F.im2col_naive(x[0], 3, 2, 1)
y_gemm = (w.reshape(4, -1) @ col).reshape(4, 4, 4) + b[:, None, None]
print("col shape", col.shape, "| max |loops - GEMM| =", np.abs(y_gemm - y[0]).max())

# %% [markdown]
# ## 3. Numba and the measurement
# Building `col` with NumPy slicing is fine for reading; the package builds it with a Numba kernel
# (`yolox_np.nn.kernels.im2col_image`) and multiplies with BLAS. We time a Darknet-53-like layer
# (128→256 channels, 3×3, 32×32 map) three ways, against the bare matrix product of the same size.

# %%
xb = rng.standard_normal((2, 128, 32, 32)).astype(np.float32)
wb = (rng.standard_normal((256, 128, 3, 3)) * 0.05).astype(np.float32)


def best_of(fn, repeat=3):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


small = (xb[:1, :8, :8, :8], wb[:4, :8])
t_naive = best_of(lambda: F.conv2d_naive(*small, None, 1, 1), repeat=1)
t_fast = best_of(lambda: F.conv2d_forward(xb, wb, None, 1, 1))
col_b = np.empty((128 * 9, 32 * 32), np.float32)
kernels.im2col_image(xb[0], 3, 1, 1, 32, 32, col_b)
t_gemm = best_of(lambda: [wb.reshape(256, -1) @ col_b for _ in range(2)])
macs_small = 4 * 8 * 9 * 8 * 8
macs = 2 * 256 * 128 * 9 * 32 * 32
print(f"loops:      {2 * macs_small / t_naive / 1e9:8.3f} GFLOP/s (on a tiny layer)")
print(f"im2col+GEMM:{2 * macs / t_fast / 1e9:8.1f} GFLOP/s")
print(f"bare GEMM:  {2 * macs / t_gemm / 1e9:8.1f} GFLOP/s  -> conv / GEMM time = {t_fast / t_gemm:.2f}")
y_check, _ = F.conv2d_forward(xb[:1, :8, :8, :8], wb[:4, :8], None, 1, 1)
print("fast vs loops, max difference:", np.abs(y_check - F.conv2d_naive(*small, None, 1, 1)).max())

# %% [markdown]
# The loops run at a tiny fraction of the GEMM's speed; im2col + GEMM comes close to the GEMM itself,
# because the copy into `col` costs little next to the multiply-adds. `make bench` measures every
# Darknet-53 layer this way and reports the ratios.
#
# ## Summary
# - A convolution is a sum over channels and kernel positions; `⌊(H + 2p − k)/s⌋ + 1` gives its size.
# - im2col turns it into one matrix product, so a convolution can run nearly at BLAS speed.
# - The naive loops stay in the package as the reference the fast path is tested against.
#
# ## Exercises
# 1. **`conv_forward`** (graded): write the loops of `yolox_np.nn.functional.conv2d_naive`, including
#    `groups` (each group of output channels sees only its own slice of input channels).
# 2. How many rows and columns does `col` have for the first 3×3 conv of Darknet-53 (3→32 channels) on a
#    256×256 image? How many bytes in float32?
# 3. Why does a 1×1 convolution with stride 1 need no im2col at all?

# %%
from yolox_np.grading import check

print(check("conv_forward", F.conv2d_naive))
