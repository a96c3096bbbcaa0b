"""Convolution overhead in CPU time: conv / bare GEMM with everything on one thread.

On a machine shared with other jobs the wall-clock ratios of `yolox-np bench conv` swing by tens of percent
(a two-threaded GEMM loses badly whenever one of its threads is descheduled). The work a convolution adds
around its GEMMs (im2col, col2im, copies) shows up just as well in the CPU time of a single-threaded run,
which other jobs disturb far less. Use this to compare engine settings; use the bench for the real thing.

    OPENBLAS_NUM_THREADS=1 YOLOX_NP_CONV_THREADS=1 python benchmarks/conv_cpu_time.py [size batch repeats]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from yolox_np.bench import DARKNET53_CONVS, _gemm_operands, geomean
from yolox_np.nn import functional as F


def cpu_time(fn, repeats):
    """Least CPU time of `repeats` runs after one warm-up (other jobs can only add time)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def layer_ratios(spec, size, batch, repeats):
    rng = np.random.default_rng(0)
    xs, ws, ho = spec.shapes(size, batch)
    pad = spec.k // 2
    x = rng.standard_normal(xs, dtype=np.float32)
    w = rng.standard_normal(ws, dtype=np.float32)
    dy = rng.standard_normal((batch, spec.c_out, ho, ho), dtype=np.float32)
    wm, col, out, dw, dcol = _gemm_operands(spec, size, batch, np.float32, rng)

    def three_gemms():
        np.matmul(wm, col, out=out)
        np.matmul(out, col.T, out=dw)
        np.matmul(wm.T, out, out=dcol)

    def conv_fwd_bwd():
        _, cache = F.conv2d_forward(x, w, None, spec.stride, pad, 1)
        F.conv2d_backward(dy, cache)

    g1 = cpu_time(lambda: np.matmul(wm, col, out=out), repeats)
    g3 = cpu_time(three_gemms, repeats)
    c1 = cpu_time(lambda: F.conv2d_forward(x, w, None, spec.stride, pad, 1), repeats)
    c3 = cpu_time(conv_fwd_bwd, repeats)
    return g1, c1 / g1, c3 / g3


def main(size=256, batch=8, repeats=5):
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1" or os.environ.get("YOLOX_NP_CONV_THREADS") != "1":
        print("run with OPENBLAS_NUM_THREADS=1 YOLOX_NP_CONV_THREADS=1 (single-threaded CPU-time comparison)")
        return 1
    print(f"Darknet-53 convolutions at {size}x{size}, batch {batch}: CPU time / bare GEMM CPU time")
    print(f"{'layer':<44} {'GEMM ms':>8} {'GF/s':>6} {'fwd':>6} {'f+b':>6}")
    fwd, fb = [], []
    for spec in DARKNET53_CONVS:
        g1, r1, r3 = layer_ratios(spec, size, batch, repeats)
        fwd.append(r1)
        fb.append(r3)
        gflops = 2 * spec.macs(size, batch) / g1 / 1e9
        print(f"{spec.name[:44]:<44} {g1 * 1e3:8.2f} {gflops:6.1f} {r1:6.3f} {r3:6.3f}", flush=True)
    print(f"{'geometric mean':<44} {'':>8} {'':>6} {geomean(fwd):6.3f} {geomean(fb):6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:4])))
