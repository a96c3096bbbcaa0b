"""Numerical gradient checking by central finite differences in float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .module import Module


def rel_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-12) -> float:
    """||a - b|| / max(||a|| + ||b||, floor): not dominated by single entries that are almost 0.

    `floor` keeps a tensor whose true gradient is 0 (its finite differences are pure round-off) from
    scoring ~1; `gradcheck` sets it to 1e-3 of the largest gradient norm it checks.
    """
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    den = max(np.linalg.norm(a) + np.linalg.norm(b), floor)
    return float(np.linalg.norm(a - b) / den)


def numerical_grad(f: Callable[[], float], x: np.ndarray, h: float = 1e-6, max_entries: int | None = None,
                   rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of the scalar f() w.r.t. x (perturbed in place); returns (indices, values).

    With `max_entries`, only that many randomly chosen entries are probed (large tensors).
    """
    if not x.flags.c_contiguous:
        raise ValueError("numerical_grad perturbs x in place and needs a C-contiguous array "
                         "(np.ascontiguousarray(x))")
    flat = x.reshape(-1)
    idx = np.arange(flat.size)
    if max_entries is not None and flat.size > max_entries:
        rng = rng if rng is not None else np.random.default_rng(0)
        idx = np.sort(rng.choice(flat.size, max_entries, replace=False))
    out = np.empty(idx.size)
    for j, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        out[j] = (fp - fm) / (2 * h)
    return idx, out


def gradcheck(fn_or_module, inputs: Sequence[np.ndarray] | np.ndarray, dout: np.ndarray | None = None,
              h: float = 1e-6, seed: int = 0, check_params: bool = True,
              max_entries: int | None = 200, backward: Callable | None = None) -> float:
    """Max relative error (see `rel_error`) between analytic and numerical gradients, per input and
    per parameter tensor.

    `fn_or_module` is a `Module` (its `backward(dout)` gives the input gradient and fills `.grad`), or a
    function `f(*inputs) -> y` together with `backward(dout) -> grads` (one per input). The scalar checked
    is `sum(y * dout)` with a random upstream gradient `dout`, in float64: cast modules with
    `module.astype(np.float64)` first. BN in train mode is checked as is (its running statistics change
    during probing but do not enter the train-mode output).
    """
    single = isinstance(inputs, np.ndarray)
    xs = [inputs] if single else list(inputs)
    for i, x in enumerate(xs):
        if not isinstance(x, np.ndarray) or x.dtype != np.float64:
            raise ValueError(f"gradcheck input {i} must be a float64 array, got {getattr(x, 'dtype', type(x))}")
    xs = [np.ascontiguousarray(x) for x in xs]  # probed in place: a view's reshape would be a copy
    is_module = isinstance(fn_or_module, Module)
    if is_module:
        if any(p.dtype != np.float64 for p in fn_or_module.parameters()):
            raise ValueError("gradcheck needs a float64 module: call module.astype(np.float64) first")
        forward = fn_or_module
        backward = fn_or_module.backward
    else:
        if backward is None:
            raise ValueError("gradcheck of a plain function needs its `backward`")
        forward = fn_or_module
    rng = np.random.default_rng(seed)
    y = forward(*xs)
    if dout is None:
        dout = rng.standard_normal(np.shape(y))
    if is_module:
        fn_or_module.zero_grad()
    grads = backward(dout)
    if len(xs) == 1 and not isinstance(grads, (list, tuple)):
        grads = [grads]
    param_grads = {}
    if is_module and check_params:
        param_grads = {n: p.grad.copy() for n, p in fn_or_module.named_parameters()}

    def scalar() -> float:
        return float(np.sum(forward(*xs) * dout))

    pairs = []
    for x, g in zip(xs, grads):
        if g is None:
            continue
        idx, num = numerical_grad(scalar, x, h, max_entries, rng)
        pairs.append((np.asarray(g).reshape(-1)[idx], num))
    if is_module and check_params:
        for name, p in fn_or_module.named_parameters():
            idx, num = numerical_grad(scalar, p.data, h, max_entries, rng)
            pairs.append((param_grads[name].reshape(-1)[idx], num))
    if not pairs:
        return 0.0
    scale = max(np.linalg.norm(a) + np.linalg.norm(b) for a, b in pairs)
    return max(rel_error(a, b, floor=max(1e-3 * scale, 1e-12)) for a, b in pairs)
