"""SGD with momentum and Nesterov, in PyTorch's form, with YOLOX's three parameter groups.

Official YOLOX puts every BatchNorm weight (gamma) in a group without weight decay, every conv / prediction
weight in a group with weight decay (5e-4), and every bias (BN beta and prediction-conv biases) in a third
group without decay. All groups follow the same scheduled learning rate.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..nn import BatchNorm2d, Module, Parameter


def sgd_nesterov_update(weight: np.ndarray, grad: np.ndarray, buf: np.ndarray | None, lr: float,
                        momentum: float = 0.9, weight_decay: float = 0.0,
                        nesterov: bool = True) -> np.ndarray:
    """One PyTorch SGD step on `weight` in place; returns the (new) momentum buffer.

    g = grad + weight_decay * w;  buf = g at the first step (buf is None), else momentum * buf + g;
    Nesterov: w -= lr * (g + momentum * buf);  plain momentum: w -= lr * buf.
    """
    if weight.shape != grad.shape:
        raise ValueError(f"sgd_nesterov_update: weight {weight.shape} and grad {grad.shape} differ in shape")
    if buf is not None and buf.shape != weight.shape:
        raise ValueError(f"sgd_nesterov_update: momentum buffer {buf.shape} does not match weight {weight.shape}")
    ### BEGIN SOLUTION
    # HINT: add weight_decay * weight to the gradient, update the buffer (a copy of g the first time), then step.
    g = grad + weight_decay * weight if weight_decay != 0 else grad.copy()
    if momentum != 0:
        if buf is None:
            buf = g.copy()
        else:
            buf *= momentum
            buf += g
        step = g + momentum * buf if nesterov else buf
    else:
        step = g
    weight -= lr * step
    return buf
    ### END SOLUTION


def parameter_groups(model: Module, weight_decay: float = 5e-4) -> list[dict]:
    """Split `model`'s parameters into YOLOX's three groups.

    Returns `[{"name": "bn_weight", "weight_decay": 0, "params": OrderedDict(name -> Parameter)},
    {"name": "weight", "weight_decay": weight_decay, ...}, {"name": "bias", "weight_decay": 0, ...}]`.
    A parameter named `*.bias` is a bias; a `weight` owned by a BatchNorm2d is a BN weight; every other
    parameter (conv weights) gets weight decay.
    """
    if not isinstance(model, Module):
        raise ValueError(f"parameter_groups needs a Module, got {type(model).__name__}")
    if not (np.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay}")
    bn_w: OrderedDict[str, Parameter] = OrderedDict()
    decay: OrderedDict[str, Parameter] = OrderedDict()
    bias: OrderedDict[str, Parameter] = OrderedDict()
    for mod_name, mod in model.named_modules():
        pre = f"{mod_name}." if mod_name else ""
        for pname, p in mod._parameters.items():
            if p is None:
                continue
            full = pre + pname
            if pname == "bias":
                bias[full] = p
            elif isinstance(mod, BatchNorm2d):
                bn_w[full] = p
            else:
                decay[full] = p
    return [
        {"name": "bn_weight", "weight_decay": 0.0, "params": bn_w},
        {"name": "weight", "weight_decay": float(weight_decay), "params": decay},
        {"name": "bias", "weight_decay": 0.0, "params": bias},
    ]


class SGD:
    """SGD with momentum (Nesterov by default) over named parameter groups.

    `lr` is shared by all groups (YOLOX schedules one rate); set it before each `step()`. The momentum
    buffers are created at the first step, even when lr is 0 (as PyTorch does).
    """

    def __init__(self, groups: list[dict] | Module, lr: float = 0.0, momentum: float = 0.9,
                 nesterov: bool = True, weight_decay: float = 5e-4):
        if isinstance(groups, Module):
            groups = parameter_groups(groups, weight_decay)
        if not isinstance(groups, list) or not all(isinstance(g, dict) and "params" in g for g in groups):
            raise ValueError("SGD needs a Module or a list of groups {'params': {name: Parameter}, ...}")
        if not (np.isfinite(momentum) and 0 <= momentum < 1):
            raise ValueError(f"SGD momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("SGD with nesterov=True needs momentum > 0")
        self.groups = groups
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.lr = lr
        seen = set()
        for g in groups:
            for name in g["params"]:
                if name in seen:
                    raise ValueError(f"SGD: parameter {name!r} appears in more than one group")
                seen.add(name)
        self.buffers: dict[str, np.ndarray] = {}

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        value = float(value)
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"SGD learning rate must be finite and >= 0, got {value}")
        self._lr = value

    def named_parameters(self):
        for g in self.groups:
            yield from g["params"].items()

    def zero_grad(self) -> None:
        for _, p in self.named_parameters():
            p.zero_grad()

    def step(self) -> None:
        """Update every parameter from its `.grad` with the current `lr`."""
        for g in self.groups:
            wd = float(g.get("weight_decay", 0.0))
            for name, p in g["params"].items():
                if p.grad.shape != p.data.shape:
                    raise ValueError(f"SGD: gradient of {name} has shape {p.grad.shape}, expected {p.data.shape}")
                self.buffers[name] = sgd_nesterov_update(
                    p.data, p.grad, self.buffers.get(name), self._lr, self.momentum, wd, self.nesterov
                )

    def state_dict(self) -> dict:
        """`{"lr": float, "momentum_buffers": {name: array}}` (copies)."""
        return {"lr": self._lr, "momentum_buffers": {k: v.copy() for k, v in self.buffers.items()}}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or "momentum_buffers" not in state:
            raise ValueError("SGD.load_state_dict needs a dict with 'momentum_buffers'")
        params = dict(self.named_parameters())
        bufs = {}
        for name, arr in state["momentum_buffers"].items():
            if name not in params:
                raise ValueError(f"SGD.load_state_dict: momentum buffer for unknown parameter {name!r}")
            arr = np.asarray(arr)
            if arr.shape != params[name].shape:
                raise ValueError(
                    f"SGD.load_state_dict: buffer {name!r} has shape {arr.shape}, parameter has {params[name].shape}"
                )
            bufs[name] = arr.astype(params[name].dtype, copy=True)
        self.buffers = bufs
        if "lr" in state:
            self.lr = state["lr"]
