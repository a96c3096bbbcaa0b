"""Model weights in and out: official PyTorch `.pth`, `.npz`, ONNX, and BatchNorm folding.

Every format loads into the model a factory returns by default (conv without bias + BatchNorm, official
names). Weights whose BatchNorm was folded into the conv (ONNX, a fused `.npz` with `P.conv.weight` and
`P.conv.bias`) are loaded as *conv weight with identity BatchNorm statistics*: `bn.weight = 1`,
`bn.bias = folded bias`, `running_mean = 0`, `running_var = 1 - eps`, so `sqrt(var + eps) = 1` and the
BatchNorm adds the bias. A "BaseConv" below is any module with children `conv` (Conv2d) and `bn`
(BatchNorm2d, or Identity once fused), as in official YOLOX.
"""

from __future__ import annotations

import os
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .npz import read_npz, save_npz
from .onnx_io import OnnxConv, OnnxWeights, onnx_conv_state_dict, read_onnx
from .pth import UnsafeCheckpointError, allowed_globals, read_pth, save_pth

__all__ = [
    "OnnxConv", "OnnxWeights", "UnsafeCheckpointError", "YOLOX_BN_EPS", "allowed_globals", "conv_call_order",
    "detect_format", "fold_bn", "fold_state_dict", "fuse_model", "load_weights", "onnx_conv_state_dict",
    "onnx_state_dict", "read_npz", "read_onnx", "read_pth", "save_npz", "save_pth", "save_weights",
    "unfold_state_dict", "unfold_to_identity_bn",
]

YOLOX_BN_EPS = 1e-3  # every YOLOX exp sets BatchNorm eps to 1e-3
DEFAULT_PROBE_SHAPE = (1, 3, 64, 64)  # input of the forward pass that records the conv call order
SUPPORTED_FORMATS = "PyTorch .pth (zip format), .npz of arrays, ONNX"
_BN_KEYS = ("weight", "bias", "running_mean", "running_var")


# ------------------------------------------------------------------------------------- pure helpers
def _vector(name: str, v, n: int) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the conv's {n} output channels, got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return v


def fold_bn(conv_w, bn_w, bn_b, mean, var, eps: float, conv_b=None) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference-mode BatchNorm into the conv before it.

    conv_w (C_out, C_in/g, k, k); bn_w, bn_b, mean, var, conv_b (C_out,). Returns (weight, bias) with
    `weight = conv_w * s`, `bias = (conv_b - mean) * s + bn_b`, `s = bn_w / sqrt(var + eps)` per output
    channel, computed in float64 and returned in conv_w's dtype.
    """
    conv_w = np.asarray(conv_w)
    if conv_w.ndim != 4 or conv_w.shape[0] == 0:
        raise ValueError(f"conv weight must have shape (C_out, C_in/groups, k, k), got {conv_w.shape}")
    if not np.issubdtype(conv_w.dtype, np.floating) or not np.all(np.isfinite(conv_w)):
        raise ValueError(f"conv weight must be finite floating-point, got dtype {conv_w.dtype}")
    n = conv_w.shape[0]
    gamma, beta = _vector("bn weight", bn_w, n), _vector("bn bias", bn_b, n)
    mean, var = _vector("running_mean", mean, n), _vector("running_var", var, n)
    bias = np.zeros(n) if conv_b is None else _vector("conv bias", conv_b, n)
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    if np.any(var + eps <= 0):
        bad = int(np.argmax(var + eps <= 0))
        raise ValueError(f"running_var + eps must be > 0, channel {bad} has {var[bad] + eps}")
    scale = gamma / np.sqrt(var + eps)
    weight = conv_w.astype(np.float64) * scale.reshape(-1, 1, 1, 1)
    return weight.astype(conv_w.dtype), ((bias - mean) * scale + beta).astype(conv_w.dtype)


def unfold_to_identity_bn(folded_w, folded_b, eps: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Split a folded conv (weight, bias) into a bias-free conv weight and identity BatchNorm parameters
    `{"weight": 1, "bias": folded_b, "running_mean": 0, "running_var": 1 - eps}` (so that `fold_bn` of the
    result gives back (folded_w, folded_b)). Arrays keep folded_w's dtype."""
    folded_w = np.asarray(folded_w)
    if folded_w.ndim != 4 or folded_w.shape[0] == 0:
        raise ValueError(f"folded conv weight must have shape (C_out, C_in/groups, k, k), got {folded_w.shape}")
    if not np.issubdtype(folded_w.dtype, np.floating) or not np.all(np.isfinite(folded_w)):
        raise ValueError(f"folded conv weight must be finite floating-point, got dtype {folded_w.dtype}")
    n, dtype = folded_w.shape[0], folded_w.dtype
    bias = _vector("folded conv bias", folded_b, n)
    if not (np.isfinite(eps) and 0 <= eps < 1):
        raise ValueError(f"eps must be in [0, 1) for identity statistics (running_var = 1 - eps), got {eps}")
    bn = {
        "weight": np.ones(n, dtype),
        "bias": bias.astype(dtype),
        "running_mean": np.zeros(n, dtype),
        "running_var": np.full(n, 1.0 - eps, dtype),
    }
    return folded_w.copy(), bn


def _rewrite(state: Mapping[str, np.ndarray], fold: Mapping[str, float], unfold: Mapping[str, float],
             source: str = "state_dict") -> OrderedDict[str, np.ndarray]:
    """Fold the BaseConvs at the prefixes in `fold` and unfold those in `unfold` (prefix -> eps), keeping
    every other entry and the key order; `num_batches_tracked` entries of folded BNs are dropped."""
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    skip = set()
    for p in fold:
        skip.update({f"{p}.conv.bias"} | {f"{p}.bn.{k}" for k in (*_BN_KEYS, "num_batches_tracked")})
    for p in unfold:
        skip.add(f"{p}.conv.bias")
    for key, value in state.items():
        if key in skip:
            continue
        prefix = key[: -len(".conv.weight")] if key.endswith(".conv.weight") else None
        try:
            if prefix in fold:
                bn = [state[f"{prefix}.bn.{k}"] for k in _BN_KEYS]
                w, b = fold_bn(value, *bn, eps=fold[prefix], conv_b=state.get(f"{prefix}.conv.bias"))
                out[key], out[f"{prefix}.conv.bias"] = w, b
            elif prefix in unfold:
                w, bn = unfold_to_identity_bn(value, state[f"{prefix}.conv.bias"], unfold[prefix])
                out[key] = w
                for k in _BN_KEYS:
                    out[f"{prefix}.bn.{k}"] = bn[k]
            else:
                out[key] = value
        except ValueError as e:
            raise ValueError(f"{source}: cannot convert the BatchNorm of '{prefix}': {e}") from e
    return out


def fold_state_dict(state: Mapping[str, np.ndarray], eps: float = YOLOX_BN_EPS) -> OrderedDict[str, np.ndarray]:
    """Fold every BaseConv of an official state dict (`P.conv.weight` + `P.bn.{weight, bias, running_mean,
    running_var}`) into `P.conv.weight` + `P.conv.bias`; other entries pass through unchanged."""
    prefixes = [k[: -len(".conv.weight")] for k in state if k.endswith(".conv.weight")]
    fold = {p: eps for p in prefixes if all(f"{p}.bn.{k}" in state for k in _BN_KEYS)}
    return _rewrite(state, fold, {})


def unfold_state_dict(state: Mapping[str, np.ndarray], eps: float = YOLOX_BN_EPS) -> OrderedDict[str, np.ndarray]:
    """Inverse of `fold_state_dict`: every `P.conv.weight` + `P.conv.bias` without `P.bn.*` becomes a
    bias-free conv with identity BatchNorm statistics (see `unfold_to_identity_bn`)."""
    prefixes = [k[: -len(".conv.weight")] for k in state if k.endswith(".conv.weight")]
    unfold = {p: eps for p in prefixes if f"{p}.conv.bias" in state and f"{p}.bn.weight" not in state}
    return _rewrite(state, {}, unfold)


# ------------------------------------------------------------------------------------- format detection
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}  # ModelProto: wire type


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while i < len(buf) and shift < 64:
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7
    raise IndexError


def _looks_like_onnx(head: bytes, size: int) -> bool:
    """True if the file starts like a protobuf ModelProto (fields known to ONNX, consistent lengths)."""
    i = fields = 0
    try:
        while i < len(head) and fields < 4:
            tag, i = _read_varint(head, i)
            field, wire = tag >> 3, tag & 7
            if _ONNX_FIELDS.get(field) != wire:
                return False
            value, i = _read_varint(head, i)
            fields += 1
            if wire == 2:
                if i + value > size:
                    return False
                i += value
    except IndexError:
        return fields > 0
    return fields > 0


def detect_format(path: str | os.PathLike) -> str:
    """`"pth"`, `"npz"` or `"onnx"`, decided by the file's content (not its name)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such weights file: {path}")
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as e:
            raise ValueError(f"{path}: corrupt or truncated zip archive ({e})") from e
        if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            return "pth"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        raise ValueError(
            f"{path}: a zip archive that is neither a PyTorch checkpoint (no data.pkl) nor an .npz of arrays; "
            f"supported formats: {SUPPORTED_FORMATS}"
        )
    if head[:1] == b"\x80" or head[257:262] == b"ustar":
        return "pth"  # legacy PyTorch pickle or tar: read_pth refuses it with the reason
    if _looks_like_onnx(head, path.stat().st_size):
        return "onnx"
    raise ValueError(f"{path}: unrecognised weights file; supported formats: {SUPPORTED_FORMATS}")


# ------------------------------------------------------------------------------------- model structure
def _nn():
    from yolox_np import nn

    return nn


def _check_model(model) -> None:
    if not isinstance(model, _nn().Module):
        raise ValueError(f"expected a yolox_np.nn.Module, got {type(model).__name__}")


def _base_convs(model) -> list[tuple[str, object, object, object]]:
    """(prefix, parent, conv, bn) for every module with a Conv2d child `conv` and a child `bn` that is a
    BatchNorm2d or an Identity (fused), or no `bn` but a conv bias (fused; bn is then None), in
    registration order."""
    nn = _nn()
    out = []
    for name, m in model.named_modules():
        conv, bn = m._modules.get("conv"), m._modules.get("bn")
        if not isinstance(conv, nn.Conv2d):
            continue
        if isinstance(bn, (nn.BatchNorm2d, nn.Identity)) or (bn is None and conv.bias is not None):
            out.append((name, m, conv, bn))
    return out


def conv_call_order(model, input_shape: tuple[int, ...] = DEFAULT_PROBE_SHAPE) -> list[tuple[str, object]]:
    """(name, Conv2d) of every convolution of `model` in the order a forward pass calls them.

    Runs one eval-mode forward pass on zeros of `input_shape` (NCHW; YOLOX needs H, W multiples of 32)
    with a recorder installed on each Conv2d instance, then removes the recorders and restores every
    module's train/eval mode. Raises ValueError if a conv is called other than exactly once.
    """
    nn = _nn()
    _check_model(model)
    shape = tuple(input_shape)
    if len(shape) != 4 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape):
        raise ValueError(f"input_shape must be 4 positive ints (N, C, H, W), got {input_shape!r}")
    convs: dict[int, tuple[str, object]] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            convs.setdefault(id(m), (name, m))
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d modules")
    calls: list[int] = []
    modes = [(m, m.training) for m in model.modules()]

    def recorder(conv):
        original = conv.forward

        def forward(*args, **kwargs):
            calls.append(id(conv))
            return original(*args, **kwargs)

        return forward

    try:
        for _, conv in convs.values():
            object.__setattr__(conv, "forward", recorder(conv))
        model.eval()
        model(np.zeros(shape, dtype=model.dtype))
    finally:
        for _, conv in convs.values():
            conv.__dict__.pop("forward", None)
        for m, training in modes:
            object.__setattr__(m, "training", training)
    counts = {key: calls.count(key) for key in convs}
    wrong = [f"'{convs[k][0]}' ({n} calls)" for k, n in counts.items() if n != 1]
    if wrong:
        raise ValueError(
            "conv call order is ambiguous: every Conv2d must run exactly once per forward pass, but "
            + ", ".join(wrong)
        )
    return [convs[k] for k in calls]


def onnx_state_dict(model, path: str | os.PathLike,
                    input_shape: tuple[int, ...] = DEFAULT_PROBE_SHAPE) -> OrderedDict[str, np.ndarray]:
    """The ONNX file's conv weights named after `model`: the i-th Conv node of the graph is paired with the
    i-th Conv2d the model calls (`conv_call_order`); each pair must agree in weight shape, groups, stride
    and padding. Returns `<conv name>.weight` / `.bias` (BatchNorm still folded)."""
    weights = read_onnx(path)
    order = conv_call_order(model, input_shape)
    if len(order) != len(weights.convs):
        raise ValueError(
            f"{path}: the graph has {len(weights.convs)} Conv nodes, {type(model).__name__} calls "
            f"{len(order)} Conv2d modules"
        )
    for i, ((name, conv), node) in enumerate(zip(order, weights.convs)):
        s, p = conv.stride, conv.padding
        want = (tuple(conv.weight.shape), conv.groups, (s, s), (p, p, p, p), (1, 1))
        got = (node.weight_shape, node.groups, node.strides, node.pads, node.dilations)
        if want != got:
            raise ValueError(
                f"{path}: conv {i} does not match: ONNX node '{node.node_name}' (weight '{node.weight_name}' "
                f"{node.weight_shape}, groups {node.groups}, strides {node.strides}, pads {node.pads}, "
                f"dilations {node.dilations}) vs model conv '{name}' (weight {want[0]}, groups {conv.groups}, "
                f"stride {s}, padding {p})"
            )
    return onnx_conv_state_dict(weights, [name for name, _ in order])


# ------------------------------------------------------------------------------------- model-level API
def _fit_to_model(state: Mapping[str, np.ndarray], model, source: str) -> OrderedDict[str, np.ndarray]:
    """Convert folded <-> BatchNorm form per BaseConv so the keys match the model's own layout."""
    nn = _nn()
    state = OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    fold, unfold = {}, {}
    for prefix, _, conv, bn in _base_convs(model):
        has_bias = f"{prefix}.conv.bias" in state
        has_bn = any(f"{prefix}.bn.{k}" in state for k in _BN_KEYS)
        if isinstance(bn, nn.BatchNorm2d) and conv.bias is None and has_bias and not has_bn:
            unfold[prefix] = bn.eps
        elif not isinstance(bn, nn.BatchNorm2d) and conv.bias is not None and has_bn and not has_bias:
            fold[prefix] = getattr(bn, "eps", YOLOX_BN_EPS)
    return _rewrite(state, fold, unfold, source)


def _list(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... and {len(items) - limit} more" if len(items) > limit else "")


def _check_fits(state: Mapping[str, np.ndarray], model, source: str) -> None:
    target = OrderedDict()
    for name, p in model.named_parameters():
        target[name] = tuple(p.shape)
    for name, b in model.named_buffers():
        target[name] = tuple(np.shape(b))
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    misshaped = [f"{k} (file {tuple(np.shape(v))}, model {target[k]})" for k, v in state.items()
                 if k in target and tuple(np.shape(v)) != target[k]]
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"missing ({len(missing)}): {_list(missing)}")
        if unexpected:
            parts.append(f"unexpected ({len(unexpected)}): {_list(unexpected)}")
        if misshaped:
            parts.append(f"mis-shaped ({len(misshaped)}): {_list(misshaped)}")
        raise ValueError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))


def load_weights(model, path: str | os.PathLike, input_shape: tuple[int, ...] = DEFAULT_PROBE_SHAPE):
    """Load weights from any supported file into `model` (in place); returns the model.

    The format is chosen by content (see `detect_format`). Folded weights are loaded into a BatchNorm
    model as identity statistics and official BatchNorm weights into a fused model by folding, so any file
    fits either form. `input_shape` is only used for ONNX files (the probe pass of `conv_call_order`).
    Missing, unexpected or mis-shaped tensors raise one ValueError listing them.
    """
    _check_model(model)
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "pth":
        state = read_pth(path)
    elif fmt == "npz":
        state = read_npz(path)
    else:
        state = onnx_state_dict(model, path, input_shape)
    source = f"{path} ({fmt})"
    state = _fit_to_model(state, model, source)
    _check_fits(state, model, source)
    model.load_state_dict(state, strict=True)
    return model


def save_weights(model, path: str | os.PathLike, archive_name: str | None = None) -> None:
    """Save `model` as an official-format PyTorch checkpoint `{"model": state_dict}` (see `save_pth`),
    with `num_batches_tracked` for every BatchNorm. A fused model is saved with identity BatchNorm
    statistics, so the file always loads into the official (unfused) YOLOX with `strict=True`."""
    _check_model(model)
    nn = _nn()
    state = model.state_dict()
    unfold = {prefix: getattr(bn, "eps", YOLOX_BN_EPS) for prefix, _, conv, bn in _base_convs(model)
              if not isinstance(bn, nn.BatchNorm2d) and conv.bias is not None}
    save_pth(_rewrite(state, {}, unfold, type(model).__name__), path, archive_name=archive_name)


def fuse_model(model):
    """Fold every BaseConv's BatchNorm into its conv, in place, for faster inference; returns the model.

    The conv gains a bias Parameter and `bn` becomes an `Identity` (remembering `eps`, so saving and
    loading official weights still work). Outputs are unchanged up to float rounding in eval mode; a fused
    model must not be trained (there are no BatchNorm statistics left to update).
    """
    _check_model(model)
    nn = _nn()
    for prefix, parent, conv, bn in _base_convs(model):
        if not isinstance(bn, nn.BatchNorm2d):
            continue
        try:
            w, b = fold_bn(conv.weight.data, bn.weight.data, bn.bias.data, bn.running_mean, bn.running_var,
                           bn.eps, conv_b=None if conv.bias is None else conv.bias.data)
        except ValueError as e:
            raise ValueError(f"cannot fuse '{prefix}': {e}") from e
        conv.weight.data = w
        conv.bias = nn.Parameter(b)
        identity = nn.Identity()
        object.__setattr__(identity, "eps", bn.eps)
        parent.bn = identity
    return model
