"""YOLOFPN, the YOLOv3-style neck of YOLOX-Darknet53, and `PlainFeatures`, the seed article's "no neck"."""

from __future__ import annotations

from ..nn import Module, Sequential, Upsample, concat, concat_backward
from .blocks import BaseConv
from .darknet import Darknet


def _cbl(cin, cout, k, kw):
    """BaseConv (conv, BN, LeakyReLU 0.1), stride 1."""
    return BaseConv(cin, cout, k, 1, act="lrelu", **kw)


def _embedding(filters, in_filters, kw):
    """Five BaseConvs 1x1, 3x3, 1x1, 3x3, 1x1 alternating between filters[0] and filters[1] channels."""
    f0, f1 = filters
    return Sequential(_cbl(in_filters, f0, 1, kw), _cbl(f0, f1, 3, kw), _cbl(f1, f0, 1, kw),
                      _cbl(f0, f1, 3, kw), _cbl(f1, f0, 1, kw))


class YOLOFPN(Module):
    """Darknet backbone (`self.backbone`) plus the top-down FPN of YOLOv3 (LeakyReLU 0.1).

    With the Darknet stem width c (32 by default): dark5 (16c) -> `out1_cbl` 1x1 -> 8c, upsample x2, concat
    [upsampled, dark4 (16c)] -> `out1` -> 8c at stride 16; `out2_cbl` 1x1 -> 4c, upsample, concat
    [upsampled, dark3 (8c)] -> `out2` -> 4c at stride 8. Outputs (out2, out1, dark5): 128, 256, 512 channels
    for c = 32, at strides 8, 16, 32.
    """

    def __init__(self, depth=53, in_features=("dark3", "dark4", "dark5"), stem_out_channels=32, blocks=None,
                 fused=False, rng=None):
        super().__init__()
        kw = dict(fused=fused, rng=rng)
        self.backbone = Darknet(depth, stem_out_channels=stem_out_channels, out_features=in_features,
                                blocks=blocks, spp=True, **kw)
        self.in_features = tuple(in_features)
        if len(self.in_features) != 3:
            raise ValueError(f"YOLOFPN needs three in_features, got {self.in_features}")
        c2, c1, c0 = (self.backbone.out_channels[f] for f in self.in_features)
        half0 = c0 // 2
        self.out1_cbl = _cbl(c0, half0, 1, kw)
        self.out1 = _embedding((half0, c0), c1 + half0, kw)
        quarter = half0 // 2
        self.out2_cbl = _cbl(half0, quarter, 1, kw)
        self.out2 = _embedding((quarter, half0), c2 + quarter, kw)
        self.upsample = Upsample(scale_factor=2, mode="nearest")
        self.upsample2 = Upsample(scale_factor=2, mode="nearest")  # second use needs its own object
        self.out_channels = (quarter, half0, c0)

    def forward(self, x):
        """x (B, 3, H, W) -> (P3 (B, 4c, H/8, W/8), P4 (B, 8c, H/16, W/16), P5 (B, 16c, H/32, W/32))."""
        feats = self.backbone(x)
        x2, x1, x0 = (feats[f] for f in self.in_features)
        up1, self._sizes1 = concat([self.upsample(self.out1_cbl(x0)), x1], axis=1)
        out_dark4 = self.out1(up1)
        up2, self._sizes2 = concat([self.upsample2(self.out2_cbl(out_dark4)), x2], axis=1)
        out_dark3 = self.out2(up2)
        return out_dark3, out_dark4, x0

    def backward(self, grads, need_dx: bool = True):
        """Gradients of the three outputs -> gradient w.r.t. the input image (None if not `need_dx`)."""
        g3, g4, g5 = grads
        d_up2, d_x2 = concat_backward(self.out2.backward(g3), self._sizes2, axis=1)
        d_dark4 = g4 + self.out2_cbl.backward(self.upsample2.backward(d_up2))
        d_up1, d_x1 = concat_backward(self.out1.backward(d_dark4), self._sizes1, axis=1)
        d_x0 = g5 + self.out1_cbl.backward(self.upsample.backward(d_up1))
        f2, f1, f0 = self.in_features
        return self.backbone.backward({f2: d_x2, f1: d_x1, f0: d_x0}, need_dx=need_dx)


class PlainFeatures(Module):
    """No neck (the seed article's picture): the heads read the plain Darknet stage outputs.

    `self.backbone` is a Darknet without the SPP block, so the outputs have 8c, 16c, 32c channels
    (256, 512, 1024 for c = 32) at strides 8, 16, 32.
    """

    def __init__(self, depth=53, in_features=("dark3", "dark4", "dark5"), stem_out_channels=32, blocks=None,
                 fused=False, rng=None):
        super().__init__()
        self.backbone = Darknet(depth, stem_out_channels=stem_out_channels, out_features=in_features,
                                blocks=blocks, spp=False, fused=fused, rng=rng)
        self.in_features = tuple(in_features)
        self.out_channels = tuple(self.backbone.out_channels[f] for f in self.in_features)

    def forward(self, x):
        feats = self.backbone(x)
        return tuple(feats[f] for f in self.in_features)

    def backward(self, grads, need_dx: bool = True):
        return self.backbone.backward(dict(zip(self.in_features, grads)), need_dx=need_dx)
