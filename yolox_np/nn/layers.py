"""Layers with hand-written backward passes.

Each `forward(x)` caches what `backward` needs on the layer itself, so a layer object is used once per
forward pass (build a second object to apply the same operation twice). `backward(dout)` returns the
input gradient and accumulates (+=) the parameter gradients.
"""

from __future__ import annotations

import math

import numpy as np

from . import functional as F
from .module import Module, Parameter


def _label(m: Module) -> str:
    name = m.__dict__.get("qualname")
    desc = f"{type(m).__name__}({m.extra_repr()})"
    return f"{desc} at '{name}'" if name else desc


def check_nchw(m: Module, x, channels: int | None = None) -> None:
    """Raise a ValueError naming the layer unless x is a floating NCHW array of the layer's dtype."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{_label(m)} expects a NumPy array, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{_label(m)} expects input of shape (N, C, H, W), got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{_label(m)} expects input of shape (N, {channels}, H, W), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{_label(m)} expects a floating-point input, got dtype {x.dtype}")
    dtype = m.dtype if m._parameters else None
    if dtype is not None and x.dtype != dtype:
        raise ValueError(
            f"{_label(m)} has {dtype} parameters but got a {x.dtype} input; cast one of them "
            "(x.astype(...) or model.astype(...))"
        )


def _check_float(m: Module, x) -> None:
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{_label(m)} expects a floating-point NumPy array, got {type(x).__name__} "
                         f"{getattr(x, 'dtype', '')}")


def _need_forward(m: Module, attr: str):
    val = m.__dict__.get(attr)
    if val is None:
        raise RuntimeError(f"{_label(m)}.backward called before forward")
    return val


class Identity(Module):
    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


class Conv2d(Module):
    """2-D convolution with PyTorch's signature and default initialisation (Kaiming-uniform, a=sqrt(5))."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True,
                 rng: np.random.Generator | None = None):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride), ("groups", groups)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"Conv2d {name} must be a positive integer, got {v!r}")
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"Conv2d padding must be a non-negative integer, got {padding!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible "
                f"by groups ({groups})"
            )
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        self.groups = int(groups)
        rng = rng if rng is not None else np.random.default_rng()
        fan_in = in_channels // groups * kernel_size * kernel_size
        bound = 1.0 / math.sqrt(fan_in)
        shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(np.float32))
        if bias:
            self.bias = Parameter(rng.uniform(-bound, bound, out_channels).astype(np.float32))
        else:
            self.bias = None
        self._cache = None

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s

    def forward(self, x):
        check_nchw(self, x, self.in_channels)
        if x.shape[2] + 2 * self.padding < self.kernel_size or x.shape[3] + 2 * self.padding < self.kernel_size:
            raise ValueError(f"{_label(self)}: input {x.shape} is smaller than the kernel")
        b = self.bias.data if self.bias is not None else None
        y, cache = F.conv2d_forward(np.ascontiguousarray(x), self.weight.data, b, self.stride, self.padding,
                                    self.groups)
        self._cache = cache
        return y

    def backward(self, dout, need_dx: bool = True):
        cache = _need_forward(self, "_cache")
        dx, dw, db = F.conv2d_backward(dout, cache, need_dx=need_dx)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx


class BatchNorm2d(Module):
    """Batch normalisation over (N, H, W) with PyTorch's running-statistics convention.

    Train mode normalises with the biased batch variance and updates
    `running = (1 - momentum) * running + momentum * batch` with the unbiased variance; eval mode uses the
    running statistics.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        if not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"BatchNorm2d num_features must be a positive integer, got {num_features!r}")
        if not eps > 0:
            raise ValueError(f"BatchNorm2d eps must be > 0, got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm2d momentum must be in [0, 1], got {momentum}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.weight = Parameter(np.ones(num_features, np.float32))
        self.bias = Parameter(np.zeros(num_features, np.float32))
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))
        self._cache = None

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x):
        check_nchw(self, x, self.num_features)
        if self.training:
            if x.shape[0] * x.shape[2] * x.shape[3] < 2:
                raise ValueError(f"{_label(self)}: train mode needs more than one value per channel, got {x.shape}")
            y, cache, mean, var = F.batchnorm_forward_train(x, self.weight.data, self.bias.data, self.eps)
            m = self.momentum
            self.running_mean[...] = (1 - m) * self.running_mean + m * mean
            self.running_var[...] = (1 - m) * self.running_var + m * var
            self._cache = ("train", cache)
            return y
        inv_std = 1.0 / np.sqrt(self.running_var + self.eps)
        scale = (self.weight.data * inv_std).astype(x.dtype)
        shift = (self.bias.data - self.running_mean * scale).astype(x.dtype)
        self._cache = ("eval", (x, scale))
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    def backward(self, dout):
        mode, cache = _need_forward(self, "_cache")
        if mode == "train":
            dx, dgamma, dbeta = F.batchnorm_backward(dout, cache)
        else:
            x, scale = cache
            inv_std = 1.0 / np.sqrt(self.running_var + self.eps)
            xhat = (x - self.running_mean.reshape(1, -1, 1, 1)) * inv_std.reshape(1, -1, 1, 1)
            dgamma = np.einsum("nchw,nchw->c", dout, xhat)
            dbeta = dout.sum(axis=(0, 2, 3))
            dx = dout * scale.reshape(1, -1, 1, 1)
        self.weight.grad += dgamma
        self.bias.grad += dbeta
        return dx


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)
        self._mask = None

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"

    def forward(self, x):
        _check_float(self, x)
        self._mask = x > 0
        return np.where(self._mask, x, x * x.dtype.type(self.negative_slope))

    def backward(self, dout):
        mask = _need_forward(self, "_mask")
        return np.where(mask, dout, dout * dout.dtype.type(self.negative_slope))


class ReLU(Module):
    def forward(self, x):
        _check_float(self, x)
        self._mask = x > 0
        return np.where(self._mask, x, 0).astype(x.dtype, copy=False)

    def backward(self, dout):
        return np.where(_need_forward(self, "_mask"), dout, 0).astype(dout.dtype, copy=False)


class Sigmoid(Module):
    def forward(self, x):
        _check_float(self, x)
        self._y = F.sigmoid(x)
        return self._y

    def backward(self, dout):
        y = _need_forward(self, "_y")
        return dout * y * (1 - y)


class SiLU(Module):
    """x * sigmoid(x)."""

    def forward(self, x):
        _check_float(self, x)
        self._x = x
        self._s = F.sigmoid(x)
        return x * self._s

    def backward(self, dout):
        s = _need_forward(self, "_s")
        return dout * s * (1 + self._x * (1 - s))


class MaxPool2d(Module):
    """Max-pooling with -inf padding (padded cells never win)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        stride = kernel_size if stride is None else stride
        if kernel_size < 1 or stride < 1 or padding < 0 or padding > kernel_size // 2:
            raise ValueError(
                f"MaxPool2d needs kernel_size >= 1, stride >= 1 and 0 <= padding <= kernel_size // 2, "
                f"got {kernel_size}, {stride}, {padding}"
            )
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, x):
        check_nchw(self, x)
        y, self._argmax = F.maxpool2d_forward(np.ascontiguousarray(x), self.kernel_size, self.stride, self.padding)
        self._x_shape, self._dtype = x.shape, x.dtype
        return y

    def backward(self, dout):
        argmax = _need_forward(self, "_argmax")
        return F.maxpool2d_backward(dout, argmax, self._x_shape, self._dtype)


class Upsample(Module):
    """Nearest-neighbour up-sampling by 2: out[y, x] = in[y // 2, x // 2]."""

    def __init__(self, scale_factor=2, mode="nearest"):
        super().__init__()
        if scale_factor != 2 or mode != "nearest":
            raise ValueError(f"Upsample supports scale_factor=2, mode='nearest' only, got {scale_factor}, {mode!r}")
        self.scale_factor, self.mode = 2, "nearest"

    def forward(self, x):
        check_nchw(self, x)
        return F.upsample_nearest2x(x)

    def backward(self, dout):
        return F.upsample_nearest2x_backward(dout)


def concat(xs, axis=1):
    """Channel concatenation; returns the output and the split sizes its backward needs."""
    return np.concatenate(xs, axis=axis), [x.shape[axis] for x in xs]


def concat_backward(dout, sizes, axis=1):
    """Split the gradient of a concatenation back into one piece per input."""
    return np.split(dout, np.cumsum(sizes)[:-1], axis=axis)


class Concat(Module):
    """Concatenate a list of NCHW arrays along channels; backward returns the list of input gradients."""

    def __init__(self, axis=1):
        super().__init__()
        self.axis = axis

    def forward(self, xs):
        if len(xs) == 0:
            raise ValueError("Concat needs at least one input")
        shapes = [x.shape for x in xs]
        ref = shapes[0]
        for i, s in enumerate(shapes):
            if len(s) != len(ref) or any(a != b for d, (a, b) in enumerate(zip(s, ref)) if d != self.axis):
                raise ValueError(f"Concat inputs must agree except on axis {self.axis}: input {i} has {s}, "
                                 f"input 0 has {ref}")
        y, self._sizes = concat(xs, self.axis)
        return y

    def backward(self, dout):
        return concat_backward(dout, _need_forward(self, "_sizes"), self.axis)


class Add(Module):
    """Residual add y = a + b; backward hands the same gradient to both branches."""

    def forward(self, a, b):
        if a.shape != b.shape:
            raise ValueError(f"Add needs equal shapes, got {a.shape} and {b.shape}")
        return a + b

    def backward(self, dout):
        return dout, dout
