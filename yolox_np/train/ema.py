"""Exponential moving average of a model's weights, with YOLOX's ramp.

After every optimizer step: `updates += 1`, `d = decay * (1 - exp(-updates / ramp))` and, for every
floating-point state entry (parameters AND BatchNorm running statistics), `ema = d * ema + (1 - d) * model`.
Early on d is small, so the average follows the model closely; it approaches `decay` (0.9998) later.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from ..nn import Module


def ema_decay(updates: int, decay: float = 0.9998, ramp: float = 2000.0) -> float:
    """The EMA weight of the old average after `updates` updates: decay * (1 - exp(-updates / ramp))."""
    if int(updates) != updates or updates < 0:
        raise ValueError(f"ema_decay: updates must be a non-negative integer, got {updates!r}")
    if not 0 <= decay < 1:
        raise ValueError(f"ema_decay: decay must be in [0, 1), got {decay}")
    if not ramp > 0:
        raise ValueError(f"ema_decay: ramp must be > 0, got {ramp}")
    ### BEGIN SOLUTION
    # HINT: the decay ramps up from 0 towards `decay` with time constant `ramp`.
    return decay * (1.0 - math.exp(-updates / ramp))
    ### END SOLUTION


def _float_state(module: Module):
    """(name, array) of every parameter and floating buffer; the arrays are the live ones, not copies."""
    for name, p in module.named_parameters():
        yield name, p.data
    for name, b in module.named_buffers():
        if np.issubdtype(b.dtype, np.floating):
            yield name, b


class ModelEMA:
    """Keeps `self.module`, an eval-mode copy of `model` whose weights are the moving average."""

    def __init__(self, model: Module, decay: float = 0.9998, ramp: float = 2000.0, updates: int = 0):
        if not isinstance(model, Module):
            raise ValueError(f"ModelEMA needs a Module, got {type(model).__name__}")
        ema_decay(updates, decay, ramp)  # validates
        self.module = copy.deepcopy(model).eval()
        self.decay, self.ramp, self.updates = float(decay), float(ramp), int(updates)

    def update(self, model: Module) -> float:
        """Fold the current weights of `model` into the average; returns the d that was used."""
        self.updates += 1
        d = ema_decay(self.updates, self.decay, self.ramp)
        ema_state = dict(_float_state(self.module))
        for name, live in _float_state(model):
            avg = ema_state.get(name)
            if avg is None or avg.shape != live.shape:
                raise ValueError(f"ModelEMA.update: model entry {name!r} does not match the EMA copy")
            avg *= d
            avg += (1.0 - d) * live
        return d

    def state_dict(self) -> dict:
        return {"updates": self.updates, "decay": self.decay, "ramp": self.ramp,
                "module": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or "module" not in state or "updates" not in state:
            raise ValueError("ModelEMA.load_state_dict needs a dict with 'module' and 'updates'")
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
        self.decay = float(state.get("decay", self.decay))
        self.ramp = float(state.get("ramp", self.ramp))
