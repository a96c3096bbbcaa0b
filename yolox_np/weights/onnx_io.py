"""Read weights from an ONNX export: the initializers and the `Conv` nodes in graph order.

An export such as the official `yolox_nano.onnx` has BatchNorm folded into the convolutions and renames
most tensors (`"1178"`), so weights are matched to a model by position: the graph lists its `Conv` nodes
in the order the network runs them, which is the forward-call order of the model's `Conv2d` modules.
Needs the optional dependency `onnx` (`pip install 'yolox_np[onnx]'`), imported only when used.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class OnnxConv:
    """One `Conv` node: its initializer names and geometry (2-D only)."""

    node_name: str
    weight_name: str
    bias_name: str | None
    weight_shape: tuple[int, ...]
    groups: int
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right (ONNX order: begins then ends)
    dilations: tuple[int, int]

    @property
    def kernel_size(self) -> tuple[int, int]:
        return self.weight_shape[2], self.weight_shape[3]


@dataclass
class OnnxWeights:
    """`initializers`: every constant tensor of the graph by name (initializers and `Constant` outputs);
    `convs`: the `Conv` nodes in graph order."""

    path: Path
    initializers: OrderedDict[str, np.ndarray]
    convs: list[OnnxConv]


def _import_onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading .onnx weights needs the optional dependency 'onnx': pip install 'yolox_np[onnx]'"
        ) from e
    return onnx, numpy_helper


def read_onnx(path: str | os.PathLike) -> OnnxWeights:
    """Read the constant tensors and the `Conv` nodes (in graph order) of an ONNX model file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such ONNX file: {path}")
    onnx, numpy_helper = _import_onnx()
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf DecodeError and friends
        raise ValueError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from e
    graph = model.graph
    consts: OrderedDict[str, np.ndarray] = OrderedDict()
    for t in graph.initializer:
        consts[t.name] = np.array(numpy_helper.to_array(t))
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = np.array(numpy_helper.to_array(attr.t))
    convs = []
    for index, node in enumerate(graph.node):
        if node.op_type == "Conv":
            convs.append(_conv_from_node(path, index, node, consts, onnx))
    if not convs:
        raise ValueError(f"{path}: the graph has no Conv nodes")
    return OnnxWeights(path, consts, convs)


def _conv_from_node(path: Path, index: int, node, consts, onnx) -> OnnxConv:
    label = f"{path}: Conv node {index} ('{node.name}')"
    if len(node.input) < 2:
        raise ValueError(f"{label} has no weight input")
    weight_name = node.input[1]
    bias_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
    for name in (weight_name, bias_name):
        if name is not None and name not in consts:
            raise ValueError(f"{label}: input '{name}' is computed at run time, not a constant tensor")
    w = consts[weight_name]
    if w.ndim != 4:
        raise ValueError(f"{label}: only 2-D convolutions are supported, weight shape is {w.shape}")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", ""):
        raise ValueError(f"{label}: auto_pad={auto_pad} is not supported (explicit pads only)")
    kernel = tuple(int(k) for k in attrs.get("kernel_shape", w.shape[2:]))
    if kernel != tuple(w.shape[2:]):
        raise ValueError(f"{label}: kernel_shape {kernel} disagrees with weight shape {w.shape}")
    return OnnxConv(
        node_name=node.name,
        weight_name=weight_name,
        bias_name=bias_name,
        weight_shape=tuple(int(s) for s in w.shape),
        groups=int(attrs.get("group", 1)),
        strides=tuple(int(s) for s in attrs.get("strides", (1, 1))),
        pads=tuple(int(p) for p in attrs.get("pads", (0, 0, 0, 0))),
        dilations=tuple(int(d) for d in attrs.get("dilations", (1, 1))),
    )


def onnx_conv_state_dict(weights: OnnxWeights, conv_names: Sequence[str]) -> OrderedDict[str, np.ndarray]:
    """Name the ONNX convs: the i-th Conv node becomes `conv_names[i]`, giving `<name>.weight` and (if the
    node has one) `<name>.bias`, in graph order. The lengths must agree."""
    if len(conv_names) != len(weights.convs):
        raise ValueError(
            f"{weights.path}: the graph has {len(weights.convs)} Conv nodes but {len(conv_names)} names "
            "were given"
        )
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, conv in zip(conv_names, weights.convs):
        out[f"{name}.weight"] = weights.initializers[conv.weight_name]
        if conv.bias_name is not None:
            out[f"{name}.bias"] = weights.initializers[conv.bias_name]
    return out
