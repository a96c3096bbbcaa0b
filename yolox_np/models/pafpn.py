"""YOLOPAFPN: CSPDarknet plus the top-down and bottom-up path aggregation neck of YOLOX-Nano ... X."""

from __future__ import annotations

from ..nn import Module, Upsample, concat, concat_backward
from .blocks import BaseConv, CSPLayer, conv_block
from .darknet import CSPDarknet


class YOLOPAFPN(Module):
    """CSPDarknet (`self.backbone`) and a PAN neck; outputs (256, 512, 1024) * width channels at 8, 16, 32.

    Top-down: `lateral_conv0` (W2 -> W1) on dark5, upsample, concat [up, dark4], `C3_p4`; `reduce_conv1`
    (W1 -> W0), upsample, concat [up, dark3], `C3_p3` = output at stride 8. Bottom-up: `bu_conv2` (3x3 s2),
    concat with the reduce_conv1 output, `C3_n3` = output at stride 16; `bu_conv1`, concat with the
    lateral_conv0 output, `C3_n4` = output at stride 32. Every CSPLayer has n = round(3 * depth) blocks and no
    shortcut.
    """

    def __init__(self, depth=1.0, width=1.0, in_features=("dark3", "dark4", "dark5"), in_channels=(256, 512, 1024),
                 depthwise=False, act="silu", fused=False, rng=None):
        super().__init__()
        self.backbone = CSPDarknet(depth, width, out_features=in_features, depthwise=depthwise, act=act,
                                   fused=fused, rng=rng)
        self.in_features = tuple(in_features)
        w0, w1, w2 = (int(c * width) for c in in_channels)
        have = tuple(self.backbone.out_channels[f] for f in self.in_features)
        if have != (w0, w1, w2):
            raise ValueError(f"in_channels * width = {(w0, w1, w2)} do not match the backbone outputs {have}")
        n = round(3 * depth)
        conv = conv_block(depthwise)
        kw = dict(act=act, fused=fused, rng=rng)
        csp = dict(shortcut=False, depthwise=depthwise, **kw)
        self.upsample = Upsample(scale_factor=2, mode="nearest")
        self.upsample2 = Upsample(scale_factor=2, mode="nearest")  # second use needs its own object
        self.lateral_conv0 = BaseConv(w2, w1, 1, 1, **kw)
        self.C3_p4 = CSPLayer(2 * w1, w1, n, **csp)
        self.reduce_conv1 = BaseConv(w1, w0, 1, 1, **kw)
        self.C3_p3 = CSPLayer(2 * w0, w0, n, **csp)
        self.bu_conv2 = conv(w0, w0, 3, 2, **kw)
        self.C3_n3 = CSPLayer(2 * w0, w1, n, **csp)
        self.bu_conv1 = conv(w1, w1, 3, 2, **kw)
        self.C3_n4 = CSPLayer(2 * w1, w2, n, **csp)
        self.out_channels = (w0, w1, w2)

    def forward(self, x):
        """x (B, 3, H, W) -> (pan_out2 @ stride 8, pan_out1 @ 16, pan_out0 @ 32)."""
        feats = self.backbone(x)
        x2, x1, x0 = (feats[f] for f in self.in_features)
        fpn_out0 = self.lateral_conv0(x0)
        cat, self._s_p4 = concat([self.upsample(fpn_out0), x1], axis=1)
        f_out0 = self.C3_p4(cat)
        fpn_out1 = self.reduce_conv1(f_out0)
        cat, self._s_p3 = concat([self.upsample2(fpn_out1), x2], axis=1)
        pan_out2 = self.C3_p3(cat)
        cat, self._s_n3 = concat([self.bu_conv2(pan_out2), fpn_out1], axis=1)
        pan_out1 = self.C3_n3(cat)
        cat, self._s_n4 = concat([self.bu_conv1(pan_out1), fpn_out0], axis=1)
        pan_out0 = self.C3_n4(cat)
        return pan_out2, pan_out1, pan_out0

    def backward(self, grads, need_dx: bool = True):
        """Gradients of the three outputs -> gradient w.r.t. the input image (None if not `need_dx`)."""
        g2, g1, g0 = grads
        d_bu1, d_fpn0 = concat_backward(self.C3_n4.backward(g0), self._s_n4, axis=1)
        d_pan1 = g1 + self.bu_conv1.backward(d_bu1)
        d_bu2, d_fpn1 = concat_backward(self.C3_n3.backward(d_pan1), self._s_n3, axis=1)
        d_pan2 = g2 + self.bu_conv2.backward(d_bu2)
        d_up, d_x2 = concat_backward(self.C3_p3.backward(d_pan2), self._s_p3, axis=1)
        d_f0 = self.reduce_conv1.backward(d_fpn1 + self.upsample2.backward(d_up))
        d_up, d_x1 = concat_backward(self.C3_p4.backward(d_f0), self._s_p4, axis=1)
        d_x0 = self.lateral_conv0.backward(d_fpn0 + self.upsample.backward(d_up))
        f2, f1, f0 = self.in_features
        return self.backbone.backward({f2: d_x2, f1: d_x1, f0: d_x0}, need_dx=need_dx)
