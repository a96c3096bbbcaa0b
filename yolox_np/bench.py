"""Benchmarks of the convolution engine and the models, against a bare `np.matmul` timed in the same run.

`yolox-np bench conv|model|all [--json FILE] [--quick]` calls `main_bench(argv)`; `run_bench(kind, ...)` is
the same from Python. For every distinct convolution of Darknet-53 (backbone with its SPP block) at 256x256
batch 8 it times the forward and the forward + backward (dx, dw, db) of `conv2d_forward/backward` and the
GEMMs they amount to: `W (F, C*k*k) @ col (C*k*k, N*Ho*Wo)` for the forward, plus `dY @ col^T` and
`W^T @ dY` for the backward, each one `np.matmul` on preallocated arrays. The forward is also timed at
640x640 batch 1. Conv and GEMM repeats are interleaved so that a change of machine load hits both, each
timed call starts after a 0.1 s pause (OpenBLAS's idle threads spin for a while; see `time_interleaved`),
and the ratio conv / GEMM is taken from the medians.

Timings are wall-clock medians (`time.perf_counter`) after warm-up; GFLOP/s counts 2 x multiply-adds.
The GEMMs write into preallocated arrays while the convolution allocates its outputs, as a layer must.
Nothing here sets BLAS or OpenBLAS environment variables: the BLAS section of the report says what ran.

JSON report (`--json FILE`, schema_version 1):

    {"schema_version", "kind": "conv"|"model"|"all", "quick", "dtype", "started",
     "machine": {"cpu_count", "cpus_usable", "cpu_model", "platform", "python", "loadavg", "loadavg_end"},
     "blas": {"numpy", "build": {"name", "version", "openblas configuration"}, "simd",
              "openblas_runtime": {"found", "library", "corename", "config", "threads"},
              "threadpoolctl": [...] or null, "env": {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", ...},
              "conv_threads", "conv_mode"},
     "conv": {"train_256_b8" | "infer_640_b1": {
                 "size", "batch", "repeats",
                 "layers": [{"name", "c_in", "c_out", "k", "stride", "padding", "input", "output", "count",
                             "gemm_mnk": [F, N*Ho*Wo, C*k*k], "macs",
                             "fwd" | "fwd_bwd": {"time_s", "time_min_s", "gflops", "gemm_time_s",
                                                 "gemm_time_min_s", "gemm_gflops", "ratio", "ratio_min"}}],
                 "summary": {"fwd" | "fwd_bwd": {"geomean_ratio", "geomean_ratio_min", "geomean_time_s",
                             "geomean_gemm_time_s", "network_time_s", "network_gemm_time_s",
                             "network_ratio"}}}},
     "models": {"darknet53": [record, record], "nano": [record]} where a record is
               {"name", "mode", "input", "convs", "conv_macs", "flops", "time_s", "time_min_s", "gflops",
                "gemm_time_s", "gemm_gflops", "fraction_of_gemm_gflops"} (or {"skipped": reason})}

`ratio` = conv median / GEMM median ("fwd": one GEMM, "fwd_bwd": the three), `ratio_min` the same with the
fastest runs; `network_*` weight every layer by how often Darknet-53 uses it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np

from .nn import functional as F

SCHEMA_VERSION = 1
SETTLE_S = 0.1  # pause before each timed call, see `time_interleaved`


# ----------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class ConvSpec:
    """One distinct convolution: its input is (batch, c_in, size/down, size/down); `count` = uses in the net."""

    name: str
    c_in: int
    c_out: int
    k: int
    stride: int
    down: int
    count: int

    def shapes(self, size: int, batch: int):
        h = size // self.down
        ho = F.conv_output_size(h, self.k, self.stride, self.k // 2)
        return (batch, self.c_in, h, h), (self.c_out, self.c_in, self.k, self.k), ho

    def macs(self, size: int, batch: int) -> int:
        _, _, ho = self.shapes(size, batch)
        return batch * ho * ho * self.c_out * self.c_in * self.k * self.k


# Darknet-53 as YOLOX builds it (yolox/models/darknet.py, depth 53, SPP block in dark5): 58 convolutions.
DARKNET53_CONVS = (
    ConvSpec("stem.0", 3, 32, 3, 1, 1, 1),
    ConvSpec("stem.1", 32, 64, 3, 2, 1, 1),
    ConvSpec("stem.2.layer1", 64, 32, 1, 1, 2, 1),
    ConvSpec("stem.2.layer2", 32, 64, 3, 1, 2, 1),
    ConvSpec("dark2.0", 64, 128, 3, 2, 2, 1),
    ConvSpec("dark2.res.layer1", 128, 64, 1, 1, 4, 2),
    ConvSpec("dark2.res.layer2", 64, 128, 3, 1, 4, 2),
    ConvSpec("dark3.0", 128, 256, 3, 2, 4, 1),
    ConvSpec("dark3.res.layer1", 256, 128, 1, 1, 8, 8),
    ConvSpec("dark3.res.layer2", 128, 256, 3, 1, 8, 8),
    ConvSpec("dark4.0", 256, 512, 3, 2, 8, 1),
    ConvSpec("dark4.res.layer1", 512, 256, 1, 1, 16, 8),
    ConvSpec("dark4.res.layer2", 256, 512, 3, 1, 16, 8),
    ConvSpec("dark5.0", 512, 1024, 3, 2, 16, 1),
    ConvSpec("dark5.1x1 (res.layer1, 5.5, spp.conv1, 5.9)", 1024, 512, 1, 1, 32, 7),
    ConvSpec("dark5.3x3 (res.layer2, 5.6, 5.8)", 512, 1024, 3, 1, 32, 6),
    ConvSpec("dark5.7.conv2 (spp)", 2048, 512, 1, 1, 32, 1),
)

# --quick: the same kinds of layer (3x3 s1/s2, 1x1) at a few channels, for a smoke test of the pipeline
QUICK_CONVS = (
    ConvSpec("quick.3x3", 3, 8, 3, 1, 1, 1),
    ConvSpec("quick.3x3s2", 8, 16, 3, 2, 1, 1),
    ConvSpec("quick.1x1", 16, 8, 1, 1, 2, 2),
)


# ----------------------------------------------------------------------------- timing
def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_interleaved(fns: dict, repeats: int, warmup: int = 1, settle: float = 0.0) -> dict:
    """Run each function `warmup` times, then `repeats` rounds of all of them in turn (so slow phases of
    the machine hit every candidate alike); returns {name: {"median": s, "min": s, "times": [...]}}.

    `settle` seconds of sleep precede every timed call: after a multi-threaded call OpenBLAS's worker
    threads keep spinning for a while, and whatever runs next would share the cores with them (measured:
    a convolution right after a two-threaded GEMM ran ~25% slower), which never happens between two
    layers of a network.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if settle:
                time.sleep(settle)
            times[name].append(_timed(fn))
    return {name: {"median": float(np.median(t)), "min": float(np.min(t)), "times": [float(v) for v in t]}
            for name, t in times.items()}


def geomean(values) -> float:
    values = [v for v in values if v is not None and v > 0]
    return float(math.exp(sum(math.log(v) for v in values) / len(values))) if values else float("nan")


# ----------------------------------------------------------------------------- environment
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "NUMBA_DISABLE_JIT",
            "YOLOX_NP_CONV_THREADS")


def blas_info() -> dict:
    """Which BLAS NumPy runs and which of its kernels: build config, OpenBLAS core/threads, env vars."""
    info: dict = {"numpy": np.__version__}
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["build"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration") if k in blas}
        info["simd"] = cfg.get("SIMD Extensions", {})
    except Exception as e:  # older NumPy: no dict mode
        info["build_error"] = repr(e)
    ob = F.openblas()
    info["openblas_runtime"] = {
        "found": ob.available,
        "library": ob.path,
        "corename": ob.corename() if ob.available else None,
        "config": ob.config() if ob.available else None,
        "threads": ob.get_threads() if ob.available else None,
    }
    try:
        import threadpoolctl  # optional, never a dependency

        info["threadpoolctl"] = threadpoolctl.threadpool_info()
    except ImportError:
        info["threadpoolctl"] = None
    info["env"] = {k: os.environ.get(k) for k in ENV_VARS}
    info["conv_threads"] = F.conv_workers()
    info["conv_mode"] = ("one Python thread per core, single-threaded BLAS each"
                         if info["conv_threads"] > 1 and ob.available else "serial bands, BLAS's own threads")
    return info


def machine_info() -> dict:
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {"cpu_count": os.cpu_count(), "cpus_usable": affinity, "cpu_model": model,
            "platform": platform.platform(), "python": platform.python_version(), "loadavg": load}


# ----------------------------------------------------------------------------- conv layers
def _gemm_operands(spec: ConvSpec, size: int, batch: int, dtype, rng):
    _, _, ho = spec.shapes(size, batch)
    kdim, cols = spec.c_in * spec.k * spec.k, batch * ho * ho
    wm = rng.standard_normal((spec.c_out, kdim), dtype=dtype)
    col = rng.standard_normal((kdim, cols), dtype=dtype)
    return wm, col, np.empty((spec.c_out, cols), dtype), np.empty((spec.c_out, kdim), dtype), np.empty_like(col)


def bench_conv_layer(spec: ConvSpec, size: int, batch: int, repeats: int, backward: bool = True,
                     dtype=np.float32, seed: int = 0, settle: float = SETTLE_S) -> dict:
    """Time one convolution (forward, and forward + backward) against its bare GEMMs; returns a record."""
    rng = np.random.default_rng(seed)
    xs, ws, ho = spec.shapes(size, batch)
    x = rng.standard_normal(xs, dtype=dtype)
    w = (rng.standard_normal(ws, dtype=dtype) * 0.05).astype(dtype)
    dy = rng.standard_normal((batch, spec.c_out, ho, ho), dtype=dtype)
    wm, col, out, dw, dcol = _gemm_operands(spec, size, batch, dtype, rng)
    pad = spec.k // 2

    def conv_fwd():
        F.conv2d_forward(x, w, None, spec.stride, pad, 1)

    def conv_fwd_bwd():
        _, cache = F.conv2d_forward(x, w, None, spec.stride, pad, 1)
        F.conv2d_backward(dy, cache, need_dx=True)

    def gemm_fwd():
        np.matmul(wm, col, out=out)

    def gemm_three():
        np.matmul(wm, col, out=out)
        np.matmul(out, col.T, out=dw)  # dW = dY @ col^T (out stands in for dY: same shape)
        np.matmul(wm.T, out, out=dcol)  # dcol = W^T @ dY

    fns = {"gemm_fwd": gemm_fwd, "conv_fwd": conv_fwd}
    if backward:
        fns.update({"gemm_fwd_bwd": gemm_three, "conv_fwd_bwd": conv_fwd_bwd})
    t = time_interleaved(fns, repeats, settle=settle)
    macs = spec.macs(size, batch)
    rec = {
        "name": spec.name, "c_in": spec.c_in, "c_out": spec.c_out, "k": spec.k, "stride": spec.stride,
        "padding": pad, "input": list(xs), "output": [batch, spec.c_out, ho, ho], "count": spec.count,
        "gemm_mnk": [spec.c_out, batch * ho * ho, spec.c_in * spec.k * spec.k], "macs": macs,
        "fwd": _summary(t["conv_fwd"], t["gemm_fwd"], 2 * macs),
    }
    if backward:
        rec["fwd_bwd"] = _summary(t["conv_fwd_bwd"], t["gemm_fwd_bwd"], 6 * macs)
    return rec


def _summary(conv: dict, gemm: dict, flops: float) -> dict:
    return {
        "time_s": conv["median"], "time_min_s": conv["min"], "gflops": flops / conv["median"] / 1e9,
        "gemm_time_s": gemm["median"], "gemm_time_min_s": gemm["min"], "gemm_gflops": flops / gemm["median"] / 1e9,
        "ratio": conv["median"] / gemm["median"], "ratio_min": conv["min"] / gemm["min"],
    }


def _aggregate(records, key: str) -> dict:
    records = [r for r in records if key in r]
    if not records:
        return {}
    rows = [r[key] for r in records]
    conv_total = sum(row["time_s"] * rec["count"] for row, rec in zip(rows, records))
    gemm_total = sum(row["gemm_time_s"] * rec["count"] for row, rec in zip(rows, records))
    return {
        "geomean_ratio": geomean(r["ratio"] for r in rows),
        "geomean_ratio_min": geomean(r["ratio_min"] for r in rows),
        "geomean_time_s": geomean(r["time_s"] for r in rows),
        "geomean_gemm_time_s": geomean(r["gemm_time_s"] for r in rows),
        "network_time_s": conv_total, "network_gemm_time_s": gemm_total,
        "network_ratio": conv_total / gemm_total,
    }


def bench_conv(quick: bool = False, log=print) -> dict:
    """Every distinct Darknet-53 convolution at 256x256 batch 8 (forward and forward + backward) and at
    640x640 batch 1 (forward); with `quick`, a few small layers at 32x32."""
    specs = QUICK_CONVS if quick else DARKNET53_CONVS
    configs = [("train_256_b8", 32 if quick else 256, 2 if quick else 8, True),
               ("infer_640_b1", 64 if quick else 640, 1, False)]
    repeats = 2 if quick else 7
    out = {}
    for key, size, batch, backward in configs:
        log(f"\nconv layers at {size}x{size}, batch {batch}" + (" (forward and forward+backward)" if backward
                                                              else " (forward)"))
        log(_header(backward))
        records = []
        for spec in specs:
            rec = bench_conv_layer(spec, size, batch, repeats, backward=backward, settle=0.0 if quick else SETTLE_S)
            records.append(rec)
            log(_row(rec, backward))
        summary = {"fwd": _aggregate(records, "fwd")}
        if backward:
            summary["fwd_bwd"] = _aggregate(records, "fwd_bwd")
        log(_footer(summary, backward))
        out[key] = {"size": size, "batch": batch, "repeats": repeats, "layers": records, "summary": summary}
    return out


def _header(backward: bool) -> str:
    h = f"{'layer':<44} {'M x N x K':>20} | {'fwd ms':>8} {'GF/s':>6} {'xGEMM':>6}"
    if backward:
        h += f" | {'f+b ms':>8} {'GF/s':>6} {'xGEMMs':>6}"
    return h + "\n" + "-" * len(h)


def _row(rec: dict, backward: bool) -> str:
    m, n, k = rec["gemm_mnk"]
    f = rec["fwd"]
    s = f"{rec['name'][:44]:<44} {f'{m}x{n}x{k}':>20} | {f['time_s'] * 1e3:8.2f} {f['gflops']:6.1f} {f['ratio']:6.2f}"
    if backward:
        b = rec["fwd_bwd"]
        s += f" | {b['time_s'] * 1e3:8.2f} {b['gflops']:6.1f} {b['ratio']:6.2f}"
    return s


def _footer(summary: dict, backward: bool) -> str:
    f = summary["fwd"]
    s = f"geometric mean conv/GEMM: forward {f['geomean_ratio']:.3f}"
    if backward:
        s += f", forward+backward {summary['fwd_bwd']['geomean_ratio']:.3f}"
    s += f"   (whole network, counts weighted: forward {f['network_ratio']:.3f}"
    if backward:
        s += f", forward+backward {summary['fwd_bwd']['network_ratio']:.3f}"
    return s + ")"


# ----------------------------------------------------------------------------- models
def _record_convs(model, x) -> list[tuple]:
    """(x.shape, w.shape, stride, padding, groups) of every convolution of one forward pass."""
    seen = []
    original = F.conv2d_forward

    def recording(xx, w, b=None, stride=1, padding=0, groups=1):
        seen.append((tuple(xx.shape), tuple(w.shape), int(stride), int(padding), int(groups)))
        return original(xx, w, b, stride, padding, groups)

    F.conv2d_forward = recording
    try:
        model(x)
    finally:
        F.conv2d_forward = original
    return seen


def _conv_macs(shapes) -> int:
    total = 0
    for xs, ws, s, p, _ in shapes:
        ho = F.conv_output_size(xs[2], ws[2], s, p)
        wo = F.conv_output_size(xs[3], ws[3], s, p)
        total += xs[0] * ws[0] * ho * wo * ws[1] * ws[2] * ws[3]
    return total


def _bare_gemms(shapes, dtype, three: bool):
    """A function running the bare GEMMs of all (non-depthwise) convolutions once each: W @ col, plus
    dY @ col^T and W^T @ dY with `three`. Operands are views of a few shared buffers (values do not
    matter to a GEMM's speed), so they cost the memory of the largest layer only."""
    jobs = []
    for xs, ws, s, p, g in shapes:
        if g > 1 and ws[1] == 1:
            continue  # depthwise: no GEMM
        ho, wo = F.conv_output_size(xs[2], ws[2], s, p), F.conv_output_size(xs[3], ws[3], s, p)
        jobs += [(ws[0] // g, ws[1] * ws[2] * ws[3], xs[0] * ho * wo)] * g
    if not jobs:
        return lambda: None
    rng = np.random.default_rng(0)
    big = {name: rng.standard_normal(max(size(*j) for j in jobs), dtype=np.float32).astype(dtype)
           for name, size in (("w", lambda m, k, n: m * k), ("col", lambda m, k, n: k * n),
                              ("out", lambda m, k, n: m * n))}
    dw = np.empty(big["w"].size, dtype)
    dcol = np.empty(big["col"].size, dtype)

    def run():
        for m, k, n in jobs:
            wm, col, out = big["w"][:m * k].reshape(m, k), big["col"][:k * n].reshape(k, n), big["out"][:m * n]
            out = out.reshape(m, n)
            np.matmul(wm, col, out=out)
            if three:
                np.matmul(out, col.T, out=dw[:m * k].reshape(m, k))
                np.matmul(wm.T, out, out=dcol[:k * n].reshape(k, n))

    return run


def _model_record(name, model, size, batch, train, repeats, log) -> dict:
    """Time model(x) (eval) or model(x) + model.backward(random gradient) (train) against the bare GEMMs of
    its convolutions, interleaved."""
    dtype = model.dtype
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size)).astype(dtype)
    model.train(train)
    shapes = _record_convs(model, x)
    macs = _conv_macs(shapes)
    flops = (6 if train else 2) * macs  # training: forward, dX and dW GEMMs of every convolution
    out = model(x)
    raw = out[0] if isinstance(out, tuple) else out
    grad = rng.standard_normal(raw.shape).astype(raw.dtype) if train else None

    def step():
        model(x)
        if train:
            model.backward(grad)

    t = time_interleaved({"model": step, "gemm": _bare_gemms(shapes, dtype, three=train)}, repeats,
                         settle=SETTLE_S)
    gemm_t = t["gemm"]["median"]
    rec = {
        "name": name, "mode": "train step (forward + backward)" if train else "eval forward",
        "input": [batch, 3, size, size], "convs": len(shapes), "conv_macs": macs, "flops": flops,
        "time_s": t["model"]["median"], "time_min_s": t["model"]["min"],
        "gflops": flops / t["model"]["median"] / 1e9,
        "gemm_time_s": gemm_t, "gemm_gflops": flops / gemm_t / 1e9,
        "fraction_of_gemm_gflops": gemm_t / t["model"]["median"],
    }
    log(f"{name:<20} {rec['mode']:<32} {size}x{size} b{batch}: {rec['time_s'] * 1e3:9.1f} ms "
        f"{rec['gflops']:7.1f} GFLOP/s = {100 * rec['fraction_of_gemm_gflops']:5.1f}% of the bare GEMMs' "
        f"{rec['gemm_gflops']:.1f} GFLOP/s")
    return rec


def bench_model_darknet53(quick: bool = False, log=print) -> list[dict]:
    """YOLOX-Darknet53: eval forward at 640x640 batch 1 and a training step (forward + backward of a random
    upstream gradient, no loss) at 256x256 batch 8. GFLOP/s = 2 x conv MACs (x3 for the training step)."""
    from .models import yolox_darknet53

    model = yolox_darknet53(num_classes=80)
    repeats = 1 if quick else 3
    fwd, train = ((32, 1), (32, 2)) if quick else ((640, 1), (256, 8))
    return [_model_record("yolox_darknet53", model, *fwd, False, repeats, log),
            _model_record("yolox_darknet53", model, *train, True, repeats, log)]


def bench_model_nano(quick: bool = False, log=print) -> list[dict]:
    """YOLOX-Nano with BN folded into the convolutions (fused=True): eval forward at 416x416 batch 1."""
    from .models import yolox_nano

    model = yolox_nano(num_classes=80, fused=True)
    size, repeats = (32, 1) if quick else (416, 5)
    return [_model_record("yolox_nano (fused)", model, size, 1, False, repeats, log)]


def bench_models(quick: bool = False, log=print) -> dict:
    log("\nmodels")
    out = {}
    for key, fn in (("darknet53", bench_model_darknet53), ("nano", bench_model_nano)):
        try:
            out[key] = fn(quick=quick, log=log)
        except ImportError as e:  # the model package is optional while it is being built
            log(f"{key}: skipped ({e})")
            out[key] = {"skipped": str(e)}
    return out


# ----------------------------------------------------------------------------- entry points
def run_bench(kind: str = "conv", json_path=None, quick: bool = False, log=print) -> dict:
    """Run `kind` in {"conv", "model", "all"}; print the tables, write JSON to `json_path` if given, return
    the report dict."""
    if kind not in ("conv", "model", "all"):
        raise ValueError(f"bench kind must be conv, model or all, got {kind!r}")
    blas = blas_info()
    report = {"schema_version": SCHEMA_VERSION, "kind": kind, "quick": bool(quick), "dtype": "float32",
              "machine": machine_info(), "blas": blas, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    rt = blas["openblas_runtime"]
    log(f"BLAS: {blas.get('build', {}).get('name')} {blas.get('build', {}).get('version')}, kernel "
        f"{rt['corename']!s}, {rt['threads']} threads; conv: {blas['conv_threads']} x {blas['conv_mode']}")
    log("env: " + ", ".join(f"{k}={blas['env'][k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")))
    m = report["machine"]
    log(f"machine: {m['cpu_model']}, {m['cpu_count']} CPUs, load average {m['loadavg']}")
    if kind in ("conv", "all"):
        report["conv"] = bench_conv(quick=quick, log=log)
    if kind in ("model", "all"):
        report["models"] = bench_models(quick=quick, log=log)
    report["machine"]["loadavg_end"] = machine_info()["loadavg"]
    if json_path is not None:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1, default=_json_default)
        log(f"\nwrote {json_path}")
    return report


def _json_default(o):
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def main_bench(argv=None) -> int:
    """`yolox-np bench conv|model|all [--json FILE] [--quick]`."""
    parser = argparse.ArgumentParser(prog="yolox-np bench", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("conv", "model", "all"))
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, fewer repeats (a smoke test)")
    args = parser.parse_args(argv)
    run_bench(args.kind, args.json, args.quick)
    return 0


__all__ = ["ConvSpec", "DARKNET53_CONVS", "bench_conv", "bench_conv_layer", "bench_model_darknet53",
           "bench_model_nano", "bench_models", "blas_info", "main_bench", "run_bench"]

if __name__ == "__main__":
    sys.exit(main_bench())
