"""Building blocks shared by every YOLOX model, with the official attribute names.

`BaseConv` (conv -> BN -> activation) is the unit everything else is made of. Each block implements
`forward(x)` and `backward(dout)`; blocks with branches (residual adds, concatenations) add or split the
gradients themselves. A layer object caches its own forward, so no layer object is used twice in a pass.
"""

from __future__ import annotations

import numba
import numpy as np

from ..nn import (
    BatchNorm2d,
    Conv2d,
    Identity,
    LeakyReLU,
    MaxPool2d,
    Module,
    ModuleList,
    ReLU,
    Sequential,
    SiLU,
    concat,
    concat_backward,
)
from .fused import ACT_CODES, affine_act_forward, bn_act_backward, channel_mean_var

# Every official experiment sets these on every BatchNorm2d after building the model.
BN_EPS = 1e-3
BN_MOMENTUM = 0.03
ACTIVATIONS = ("silu", "lrelu", "relu")
_IDENTITY_BN: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # (zeros, ones) per channel count, read-only use


def get_activation(name: str) -> Module:
    """The activation module for an official `act` name: "silu", "lrelu" (slope 0.1) or "relu"."""
    if name == "silu":
        return SiLU()
    if name == "lrelu":
        return LeakyReLU(0.1)
    if name == "relu":
        return ReLU()
    raise ValueError(f"act must be one of {ACTIVATIONS}, got {name!r}")


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class BaseConv(Module):
    """Conv2d (k x k, stride s, padding (k-1)//2, no bias) -> BatchNorm2d(eps 1e-3, momentum 0.03) -> act.

    `fused=True` builds the inference form whose BN was folded into the conv: the conv has a bias and
    `bn` is an `Identity` (state-dict keys `conv.weight`, `conv.bias`).

    BN and activation run as one pass (`yolox_np.models.fused`) unless `BaseConv.fuse_bn_act` is False, in
    which case the `bn` and `act` modules run one after the other (same results up to rounding). With
    NUMBA_DISABLE_JIT=1 the modules' vectorised NumPy path is the default, as the one-pass kernels would run
    as element-by-element Python loops.
    """

    fuse_bn_act = not numba.config.DISABLE_JIT

    def __init__(self, in_channels, out_channels, ksize, stride=1, groups=1, bias=False, act="silu",
                 fused=False, rng=None):
        super().__init__()
        ksize = _check_positive("ksize", ksize)
        self.conv = Conv2d(in_channels, out_channels, ksize, stride, (ksize - 1) // 2, groups,
                           bias=bool(bias or fused), rng=rng)
        self.bn = Identity() if fused else BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = get_activation(act)
        self._fused_cache = None

    def forward(self, x):
        y = self.conv(x)
        if not self.fuse_bn_act or self._act_code() is None or type(self.bn) not in (BatchNorm2d, Identity):
            self._fused_cache = None
            return self.act(self.bn(y))
        return self._bn_act_forward(y)

    def backward(self, dout, need_dx: bool = True):
        if self._fused_cache is None:
            d = self.bn.backward(self.act.backward(dout))
        else:
            d = self._bn_act_backward(dout)
        return self.conv.backward(d, need_dx=need_dx)

    # ---------------------------------------------------------------- one-pass BN + activation
    def _act_code(self):
        if isinstance(self.act, LeakyReLU):
            return ACT_CODES["lrelu"], self.act.negative_slope
        if isinstance(self.act, SiLU):
            return ACT_CODES["silu"], 0.0
        if isinstance(self.act, ReLU):
            return ACT_CODES["relu"], 0.0
        return None  # any other activation module runs on its own

    def _bn_params(self, y3):
        """(center, inv_std, gamma, beta, batch_stats) as float64 per-channel arrays for the kernels."""
        c = y3.shape[1]
        bn = self.bn
        if not isinstance(bn, BatchNorm2d):
            zero, one = _IDENTITY_BN.get(c) or _IDENTITY_BN.setdefault(c, (np.zeros(c), np.ones(c)))
            return zero, one, one, zero, False
        gamma = np.asarray(bn.weight.data, dtype=np.float64)
        beta = np.asarray(bn.bias.data, dtype=np.float64)
        if not self.training:
            inv_std = 1.0 / np.sqrt(np.asarray(bn.running_var, dtype=np.float64) + bn.eps)
            return np.asarray(bn.running_mean, dtype=np.float64), inv_std, gamma, beta, False
        count = y3.shape[0] * y3.shape[2]
        if count < 2:
            raise ValueError(f"BatchNorm2d({c}) in train mode needs more than one value per channel, got an "
                             f"input of {y3.shape[0]} image(s) of {y3.shape[2]} pixel(s)")
        mean, var = np.empty(c), np.empty(c)
        channel_mean_var(y3, mean, var)
        m = bn.momentum
        bn.running_mean[...] = (1 - m) * bn.running_mean + m * mean
        bn.running_var[...] = (1 - m) * bn.running_var + (m * count / (count - 1)) * var
        return mean, 1.0 / np.sqrt(var + bn.eps), gamma, beta, True

    def _bn_act_forward(self, y):
        code, slope = self._act_code()
        n, c, h, w = y.shape
        y3 = y.reshape(n, c, h * w)
        center, inv_std, gamma, beta, batch_stats = self._bn_params(y3)
        # the element-wise arithmetic runs in the data's dtype (float32 exp is twice as fast)
        dt = y.dtype
        center, inv_std, gamma, beta = (np.asarray(a, dtype=dt) for a in (center, inv_std, gamma, beta))
        consts = np.array([1.0, slope], dtype=dt)
        out = np.empty_like(y3)
        affine_act_forward(y3, center, gamma * inv_std, beta, code, consts, out)
        self._fused_cache = (y3, center, inv_std, gamma, beta, batch_stats, code, consts)
        return out.reshape(n, c, h, w)

    def _bn_act_backward(self, dout):
        y3, center, inv_std, gamma, beta, batch_stats, code, consts = self._fused_cache
        n, c, hw = y3.shape
        d3 = np.ascontiguousarray(dout, dtype=y3.dtype).reshape(n, c, hw)
        dx = np.empty_like(y3)
        dgamma, dbeta = np.empty(c), np.empty(c)
        bn_act_backward(y3, d3, center, inv_std, gamma, beta, code, consts, batch_stats, dx, dgamma, dbeta)
        if isinstance(self.bn, BatchNorm2d):
            self.bn.weight.grad += dgamma
            self.bn.bias.grad += dbeta
        return dx.reshape(dout.shape)


class DWConv(Module):
    """Depthwise-separable conv: `dconv` (k x k, groups = in_channels) then `pconv` (1 x 1), both BaseConv."""

    def __init__(self, in_channels, out_channels, ksize, stride=1, act="silu", fused=False, rng=None):
        super().__init__()
        self.dconv = BaseConv(in_channels, in_channels, ksize, stride, groups=in_channels, act=act,
                              fused=fused, rng=rng)
        self.pconv = BaseConv(in_channels, out_channels, 1, 1, act=act, fused=fused, rng=rng)

    def forward(self, x):
        return self.pconv(self.dconv(x))

    def backward(self, dout, need_dx: bool = True):
        return self.dconv.backward(self.pconv.backward(dout), need_dx=need_dx)


def conv_block(depthwise: bool):
    """The class used for the 3x3 "Conv" slots: `DWConv` when depthwise (YOLOX-Nano), else `BaseConv`."""
    return DWConv if depthwise else BaseConv


class ResLayer(Module):
    """Darknet residual block: x + layer2(layer1(x)), layer1 1x1 c -> c/2, layer2 3x3 c/2 -> c (LeakyReLU)."""

    def __init__(self, in_channels, fused=False, rng=None):
        super().__init__()
        mid = _check_positive("in_channels", in_channels) // 2
        if mid < 1:
            raise ValueError(f"ResLayer needs at least 2 channels, got {in_channels}")
        self.layer1 = BaseConv(in_channels, mid, 1, 1, act="lrelu", fused=fused, rng=rng)
        self.layer2 = BaseConv(mid, in_channels, 3, 1, act="lrelu", fused=fused, rng=rng)

    def forward(self, x):
        return x + self.layer2(self.layer1(x))

    def backward(self, dout):
        return dout + self.layer1.backward(self.layer2.backward(dout))


class SPPBottleneck(Module):
    """Spatial pyramid pooling: conv1 (c -> c/2), concat [x, pool5(x), pool9(x), pool13(x)], conv2 -> out.

    The max-pools have stride 1 and padding k//2, so the spatial size is kept.
    """

    def __init__(self, in_channels, out_channels, kernel_sizes=(5, 9, 13), activation="silu", fused=False,
                 rng=None):
        super().__init__()
        hidden = _check_positive("in_channels", in_channels) // 2
        if hidden < 1:
            raise ValueError(f"SPPBottleneck needs at least 2 input channels, got {in_channels}")
        self.conv1 = BaseConv(in_channels, hidden, 1, 1, act=activation, fused=fused, rng=rng)
        self.m = ModuleList([MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes])
        self.conv2 = BaseConv(hidden * (len(kernel_sizes) + 1), out_channels, 1, 1, act=activation,
                              fused=fused, rng=rng)

    def forward(self, x):
        x = self.conv1(x)
        y, self._sizes = concat([x] + [pool(x) for pool in self.m], axis=1)
        return self.conv2(y)

    def backward(self, dout):
        parts = concat_backward(self.conv2.backward(dout), self._sizes, axis=1)
        dx = np.array(parts[0])
        for pool, d in zip(self.m, parts[1:]):
            dx += pool.backward(d)
        return self.conv1.backward(dx)


class Bottleneck(Module):
    """conv1 (1x1, c_in -> hidden) then conv2 (3x3, hidden -> c_out; DWConv if depthwise), plus the input
    when `shortcut` and c_in == c_out."""

    def __init__(self, in_channels, out_channels, shortcut=True, expansion=0.5, depthwise=False, act="silu",
                 fused=False, rng=None):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = BaseConv(in_channels, hidden, 1, 1, act=act, fused=fused, rng=rng)
        self.conv2 = conv_block(depthwise)(hidden, out_channels, 3, 1, act=act, fused=fused, rng=rng)
        self.use_add = bool(shortcut and in_channels == out_channels)

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y

    def backward(self, dout):
        dx = self.conv1.backward(self.conv2.backward(dout))
        return dx + dout if self.use_add else dx


class CSPLayer(Module):
    """Cross-stage partial layer: conv3(concat[m(conv1(x)), conv2(x)]) with n Bottlenecks in `m`.

    hidden = int(c_out * expansion); the Bottlenecks use expansion 1.0.
    """

    def __init__(self, in_channels, out_channels, n=1, shortcut=True, expansion=0.5, depthwise=False,
                 act="silu", fused=False, rng=None):
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"CSPLayer n must be a non-negative integer, got {n!r}")
        hidden = int(out_channels * expansion)
        self.conv1 = BaseConv(in_channels, hidden, 1, 1, act=act, fused=fused, rng=rng)
        self.conv2 = BaseConv(in_channels, hidden, 1, 1, act=act, fused=fused, rng=rng)
        self.conv3 = BaseConv(2 * hidden, out_channels, 1, 1, act=act, fused=fused, rng=rng)
        self.m = Sequential(*[Bottleneck(hidden, hidden, shortcut, 1.0, depthwise, act=act, fused=fused, rng=rng)
                              for _ in range(n)])

    def forward(self, x):
        # official call order (conv1, conv2, then m): ONNX exports list their convs in this order
        x1 = self.conv1(x)
        side = self.conv2(x)
        main = self.m(x1)
        y, self._sizes = concat([main, side], axis=1)
        return self.conv3(y)

    def backward(self, dout):
        d_main, d_side = concat_backward(self.conv3.backward(dout), self._sizes, axis=1)
        dx = self.conv1.backward(self.m.backward(d_main))
        dx += self.conv2.backward(d_side)
        return dx


def space_to_depth(x):
    """(N, C, H, W) -> (N, 4C, H/2, W/2) in the official Focus order: [rows even / cols even,
    rows odd / cols even, rows even / cols odd, rows odd / cols odd], each block with all C channels."""
    if x.ndim != 4 or x.shape[2] % 2 or x.shape[3] % 2:
        raise ValueError(f"space_to_depth needs (N, C, H, W) with even H and W, got shape {x.shape}")
    return np.concatenate([x[:, :, ::2, ::2], x[:, :, 1::2, ::2], x[:, :, ::2, 1::2], x[:, :, 1::2, 1::2]],
                          axis=1)


def space_to_depth_backward(dout):
    """Adjoint of `space_to_depth`: (N, 4C, H/2, W/2) -> (N, C, H, W)."""
    n, c4, h, w = dout.shape
    c = c4 // 4
    dx = np.empty((n, c, 2 * h, 2 * w), dtype=dout.dtype)
    dx[:, :, ::2, ::2] = dout[:, :c]
    dx[:, :, 1::2, ::2] = dout[:, c:2 * c]
    dx[:, :, ::2, 1::2] = dout[:, 2 * c:3 * c]
    dx[:, :, 1::2, 1::2] = dout[:, 3 * c:]
    return dx


class Focus(Module):
    """Space-to-depth (2x2 pixels -> channels) followed by `conv` = BaseConv(4 * c_in -> c_out)."""

    def __init__(self, in_channels, out_channels, ksize=1, stride=1, act="silu", fused=False, rng=None):
        super().__init__()
        self.conv = BaseConv(in_channels * 4, out_channels, ksize, stride, act=act, fused=fused, rng=rng)

    def forward(self, x):
        return self.conv(space_to_depth(x))

    def backward(self, dout, need_dx: bool = True):
        d = self.conv.backward(dout, need_dx=need_dx)
        return space_to_depth_backward(d) if need_dx else None
