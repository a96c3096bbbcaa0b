"""Backbones: Darknet-53 (YOLOX-Darknet53) and CSPDarknet (Nano ... X), official module names.

Both return a dict of the requested stage outputs, as the official code does, and their `backward` takes a
dict of gradients for (a subset of) those outputs.
"""

from __future__ import annotations

import numpy as np

from ..nn import Module, Sequential
from .blocks import BaseConv, CSPLayer, Focus, ResLayer, SPPBottleneck, conv_block

STAGES = ("stem", "dark2", "dark3", "dark4", "dark5")


def _check_out_features(out_features) -> tuple[str, ...]:
    out = tuple(out_features)
    bad = [f for f in out if f not in STAGES]
    if not out or bad:
        raise ValueError(f"out_features must be a non-empty subset of {STAGES}, got {out}")
    return out


def _backward_stages(module: Module, grads: dict, need_dx: bool):
    """Run the stages in reverse, adding each stage's output gradient from `grads` on the way."""
    unknown = [k for k in grads if k not in module.out_features]
    if unknown:
        raise ValueError(f"{type(module).__name__}.backward got gradients for {unknown}, which are not "
                         f"among its outputs {module.out_features}")
    d = None
    for name in reversed(STAGES):
        g = grads.get(name)
        if g is not None:
            d = g if d is None else d + g
        if d is None:  # nothing above this stage needs a gradient yet
            continue
        d = module._stage_backward(name, d, need_dx)
    return d


class Darknet(Module):
    """Darknet-21/53 with the YOLOv3 SPP block at the end of `dark5` (LeakyReLU 0.1 everywhere).

    Stages: `stem` = conv 3x3 (3 -> c) + conv 3x3 s2 (c -> 2c) + ResLayer x blocks[0]; `darkK` = conv 3x3 s2
    doubling the channels + ResLayer x blocks[K-1]; `dark5.5 ... dark5.9` = the SPP block (1x1, 3x3,
    SPPBottleneck, 3x3, 1x1), which brings dark5 from 32c to 16c channels. With c = 32: dark3 256, dark4 512,
    dark5 512 channels at strides 8, 16, 32. `spp=False` stops dark5 after its residual blocks (32c = 1024
    channels), the plain Darknet-53 of the YOLOv3 paper.

    `blocks` = residual blocks of (stem, dark2, dark3, dark4, dark5); default from `depth` (53: 1, 2, 8, 8, 4;
    21: 1, 1, 2, 2, 1).
    """

    depth2blocks = {21: (1, 2, 2, 1), 53: (2, 8, 8, 4)}

    def __init__(self, depth=53, in_channels=3, stem_out_channels=32, out_features=("dark3", "dark4", "dark5"),
                 blocks=None, spp=True, fused=False, rng=None):
        super().__init__()
        if blocks is None:
            if depth not in self.depth2blocks:
                raise ValueError(f"Darknet depth must be one of {sorted(self.depth2blocks)}, got {depth!r}")
            blocks = (1, *self.depth2blocks[depth])
        blocks = tuple(blocks)
        if len(blocks) != 5 or any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 0
                                   for b in blocks):
            raise ValueError(f"blocks must be 5 non-negative integers (stem, dark2, dark3, dark4, dark5), "
                             f"got {blocks}")
        if isinstance(stem_out_channels, bool) or not isinstance(stem_out_channels, (int, np.integer)) \
                or stem_out_channels < 1:
            raise ValueError(f"stem_out_channels must be a positive integer, got {stem_out_channels!r}")
        self.out_features = _check_out_features(out_features)
        self.blocks, self.spp = blocks, bool(spp)
        kw = dict(fused=fused, rng=rng)
        c = int(stem_out_channels)
        self.stem = Sequential(BaseConv(in_channels, c, 3, 1, act="lrelu", **kw),
                               *self._group(c, blocks[0], kw))
        c *= 2
        self.dark2 = Sequential(*self._group(c, blocks[1], kw))
        c *= 2
        self.dark3 = Sequential(*self._group(c, blocks[2], kw))
        c *= 2
        self.dark4 = Sequential(*self._group(c, blocks[3], kw))
        c *= 2
        layers = self._group(c, blocks[4], kw)
        if self.spp:
            layers += self._spp_block(c, kw)
        self.dark5 = Sequential(*layers)
        self.out_channels = {"stem": 2 * stem_out_channels, "dark2": 4 * stem_out_channels,
                             "dark3": 8 * stem_out_channels, "dark4": 16 * stem_out_channels,
                             "dark5": (16 if self.spp else 32) * stem_out_channels}

    @staticmethod
    def _group(c, num_blocks, kw):
        """A 3x3 stride-2 conv c -> 2c followed by `num_blocks` ResLayers of 2c channels."""
        return [BaseConv(c, 2 * c, 3, 2, act="lrelu", **kw), *[ResLayer(2 * c, **kw) for _ in range(num_blocks)]]

    @staticmethod
    def _spp_block(c, kw):
        """The YOLOv3-SPP head of dark5 (2c -> c channels), unpacked into dark5 as five children."""
        return [BaseConv(2 * c, c, 1, 1, act="lrelu", **kw),
                BaseConv(c, 2 * c, 3, 1, act="lrelu", **kw),
                SPPBottleneck(2 * c, c, activation="lrelu", **kw),
                BaseConv(c, 2 * c, 3, 1, act="lrelu", **kw),
                BaseConv(2 * c, c, 1, 1, act="lrelu", **kw)]

    def forward(self, x):
        """x (B, 3, H, W) -> {name: feature} for the names in `out_features`."""
        outputs = {}
        for name in STAGES:
            x = getattr(self, name)(x)
            if name in self.out_features:
                outputs[name] = x
        return outputs

    def _stage_backward(self, name, d, need_dx):
        stage = getattr(self, name)
        layers = list(stage)
        for layer in reversed(layers[1:]):
            d = layer.backward(d)
        return layers[0].backward(d, need_dx=need_dx or name != "stem")

    def backward(self, grads: dict, need_dx: bool = True):
        """Gradients {name: d feature} -> gradient w.r.t. the input (None if `need_dx` is False)."""
        return _backward_stages(self, grads, need_dx)


class CSPDarknet(Module):
    """The CSPDarknet backbone of YOLOX-Nano ... X (SiLU by default).

    bc = int(64 * width), bd = max(round(3 * depth), 1): `stem` Focus(3 -> bc, 3x3); `dark2` conv s2 bc -> 2bc +
    CSPLayer(n = bd); `dark3`, `dark4` conv s2 doubling + CSPLayer(n = 3 bd); `dark5` conv s2 8bc -> 16bc +
    SPPBottleneck + CSPLayer(n = bd, no shortcut). "conv" is a DWConv when `depthwise` (the Focus and SPP
    convs never are).
    """

    def __init__(self, dep_mul, wid_mul, out_features=("dark3", "dark4", "dark5"), depthwise=False, act="silu",
                 fused=False, rng=None):
        super().__init__()
        if not (np.isfinite(dep_mul) and dep_mul > 0 and np.isfinite(wid_mul) and wid_mul > 0):
            raise ValueError(f"depth and width multipliers must be positive, got {dep_mul}, {wid_mul}")
        self.out_features = _check_out_features(out_features)
        bc = int(wid_mul * 64)
        bd = max(round(dep_mul * 3), 1)
        if bc < 1:
            raise ValueError(f"width {wid_mul} gives int(64 * width) = {bc} base channels; need at least 1")
        conv = conv_block(depthwise)
        kw = dict(act=act, fused=fused, rng=rng)
        self.stem = Focus(3, bc, ksize=3, **kw)
        self.dark2 = Sequential(conv(bc, 2 * bc, 3, 2, **kw),
                                CSPLayer(2 * bc, 2 * bc, n=bd, depthwise=depthwise, **kw))
        self.dark3 = Sequential(conv(2 * bc, 4 * bc, 3, 2, **kw),
                                CSPLayer(4 * bc, 4 * bc, n=3 * bd, depthwise=depthwise, **kw))
        self.dark4 = Sequential(conv(4 * bc, 8 * bc, 3, 2, **kw),
                                CSPLayer(8 * bc, 8 * bc, n=3 * bd, depthwise=depthwise, **kw))
        self.dark5 = Sequential(conv(8 * bc, 16 * bc, 3, 2, **kw),
                                SPPBottleneck(16 * bc, 16 * bc, activation=act, fused=fused, rng=rng),
                                CSPLayer(16 * bc, 16 * bc, n=bd, shortcut=False, depthwise=depthwise, **kw))
        self.out_channels = {"stem": bc, "dark2": 2 * bc, "dark3": 4 * bc, "dark4": 8 * bc, "dark5": 16 * bc}

    def forward(self, x):
        """x (B, 3, H, W) -> {name: feature} for the names in `out_features`."""
        outputs = {}
        for name in STAGES:
            x = getattr(self, name)(x)
            if name in self.out_features:
                outputs[name] = x
        return outputs

    def _stage_backward(self, name, d, need_dx):
        if name == "stem":
            return self.stem.backward(d, need_dx=need_dx)
        return getattr(self, name).backward(d)

    def backward(self, grads: dict, need_dx: bool = True):
        """Gradients {name: d feature} -> gradient w.r.t. the input (None if `need_dx` is False)."""
        return _backward_stages(self, grads, need_dx)
