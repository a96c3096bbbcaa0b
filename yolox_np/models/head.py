"""The decoupled YOLOX head: per level a stem, a classification branch and a regression branch."""

from __future__ import annotations

import math

import numpy as np

from ..nn import Conv2d, Module, ModuleList, Sequential
from .blocks import BaseConv, conv_block


class YOLOXHead(Module):
    """Per level i: `stems.i` 1x1 (c_i -> h), `cls_convs.i` and `reg_convs.i` (two 3x3 convs each),
    `cls_preds.i` (h -> C), `reg_preds.i` (h -> 4) and `obj_preds.i` (h -> 1, on the regression features).

    c_i = int(in_channels[i] * width), h = int(256 * width). `forward(features)` returns the raw logits
    (B, A, 5 + C) in the order [reg (4), obj (1), cls (C)], levels in the order of `strides`, row-major
    (x fastest) within a level. Decoding and sigmoids are left to `YOLOX`.
    """

    def __init__(self, num_classes, width=1.0, strides=(8, 16, 32), in_channels=(256, 512, 1024), act="silu",
                 depthwise=False, fused=False, rng=None, prior_prob=0.01):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if len(strides) != len(in_channels):
            raise ValueError(f"need one stride per level: strides {tuple(strides)}, in_channels "
                             f"{tuple(in_channels)}")
        self.num_classes = int(num_classes)
        self.strides = tuple(int(s) for s in strides)
        self.decode_in_inference = True
        hidden = int(256 * width)
        if hidden < 1:
            raise ValueError(f"width {width} gives int(256 * width) = {hidden} head channels; need at least 1")
        conv = conv_block(depthwise)
        kw = dict(act=act, fused=fused, rng=rng)
        self.cls_convs = ModuleList()
        self.reg_convs = ModuleList()
        self.cls_preds = ModuleList()
        self.reg_preds = ModuleList()
        self.obj_preds = ModuleList()
        self.stems = ModuleList()
        for c in in_channels:
            self.stems.append(BaseConv(int(c * width), hidden, 1, 1, **kw))
            self.cls_convs.append(Sequential(conv(hidden, hidden, 3, 1, **kw), conv(hidden, hidden, 3, 1, **kw)))
            self.reg_convs.append(Sequential(conv(hidden, hidden, 3, 1, **kw), conv(hidden, hidden, 3, 1, **kw)))
            self.cls_preds.append(Conv2d(hidden, self.num_classes, 1, 1, 0, rng=rng))
            self.reg_preds.append(Conv2d(hidden, 4, 1, 1, 0, rng=rng))
            self.obj_preds.append(Conv2d(hidden, 1, 1, 1, 0, rng=rng))
        self.in_channels = tuple(int(c * width) for c in in_channels)
        self.initialize_biases(prior_prob)

    def initialize_biases(self, prior_prob: float) -> None:
        """Set every cls/obj prediction bias to -log((1 - p) / p), so that sigmoid(bias) = p."""
        if not 0 < prior_prob < 1:
            raise ValueError(f"prior_prob must be in (0, 1), got {prior_prob}")
        b = -math.log((1 - prior_prob) / prior_prob)
        for conv in (*self.cls_preds, *self.obj_preds):
            conv.bias.data[...] = b

    def forward(self, features):
        """features: one (B, c_i, H_i, W_i) map per level -> raw (B, sum H_i W_i, 5 + C)."""
        if len(features) != len(self.stems):
            raise ValueError(f"YOLOXHead expects {len(self.stems)} feature maps, got {len(features)}")
        batch = features[0].shape[0]
        self._hw = [(f.shape[2], f.shape[3]) for f in features]
        total = sum(h * w for h, w in self._hw)
        out = np.empty((batch, total, 5 + self.num_classes), dtype=features[0].dtype)
        start = 0
        for k, x in enumerate(features):
            x = self.stems[k](x)
            cls_out = self.cls_preds[k](self.cls_convs[k](x))
            reg_feat = self.reg_convs[k](x)
            reg_out = self.reg_preds[k](reg_feat)
            obj_out = self.obj_preds[k](reg_feat)
            hw = x.shape[2] * x.shape[3]
            level = out[:, start:start + hw]
            level[..., :4] = reg_out.reshape(batch, 4, hw).transpose(0, 2, 1)
            level[..., 4:5] = obj_out.reshape(batch, 1, hw).transpose(0, 2, 1)
            level[..., 5:] = cls_out.reshape(batch, self.num_classes, hw).transpose(0, 2, 1)
            start += hw
        return out

    def backward(self, grad):
        """grad (B, A, 5 + C) of the raw output -> tuple of gradients of the input feature maps."""
        hws = self.__dict__.get("_hw")
        if hws is None:
            raise RuntimeError("YOLOXHead.backward called before forward")
        grads, start = [], 0
        for k, (h, w) in enumerate(hws):
            hw = h * w
            g = grad[:, start:start + hw]
            start += hw

            d_reg = self.reg_preds[k].backward(_to_map(g[..., :4], h, w))
            d_reg += self.obj_preds[k].backward(_to_map(g[..., 4:5], h, w))
            d_cls = self.cls_preds[k].backward(_to_map(g[..., 5:], h, w))
            d_x = self.cls_convs[k].backward(d_cls)
            d_x += self.reg_convs[k].backward(d_reg)
            grads.append(self.stems[k].backward(d_x))
        return tuple(grads)


def _to_map(cols, h, w):
    """(B, H*W, K) columns of the raw output -> (B, K, H, W) contiguous map."""
    return np.ascontiguousarray(cols.transpose(0, 2, 1)).reshape(cols.shape[0], -1, h, w)
