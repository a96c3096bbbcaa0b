"""Counting the convolution FLOPs of a model (2 x multiply-accumulates, as the official tools report)."""

from __future__ import annotations

import numpy as np

from ..nn import Conv2d
from .yolox import YOLOX


def conv_macs(conv: Conv2d, out_h: int, out_w: int) -> int:
    """Multiply-accumulates of one convolution producing an out_h x out_w map (one image)."""
    k = conv.kernel_size
    return out_h * out_w * conv.out_channels * (conv.in_channels // conv.groups) * k * k


def count_flops(model: YOLOX, img_size) -> int:
    """2 x the multiply-accumulates of every convolution for one image of `img_size` (int or (H, W)).

    BN, activations, pooling, upsampling and biases are not counted. The sizes must be multiples of the
    largest stride; since every feature map then scales exactly with H * W, the count is measured with one
    forward pass at the smallest such input and scaled.
    """
    if not isinstance(model, YOLOX):
        raise ValueError(f"count_flops needs a YOLOX model, got {type(model).__name__}")
    h, w = (img_size, img_size) if np.isscalar(img_size) else tuple(img_size)
    s = max(model.strides)
    for v in (h, w):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < s or v % s:
            raise ValueError(f"img_size must be positive multiples of {s}, got {img_size!r}")
    shapes = {}
    convs = [m for m in model.modules() if isinstance(m, Conv2d)]

    def recorder(conv):
        original = conv.forward

        def forward(x):
            y = original(x)
            shapes[id(conv)] = y.shape[2:]
            return y

        return forward

    was_training = model.training
    try:
        for conv in convs:
            object.__setattr__(conv, "forward", recorder(conv))
        model.eval()
        model.forward_raw(np.zeros((1, model.in_channels, s, s), dtype=model.dtype))
    finally:
        for conv in convs:
            conv.__dict__.pop("forward", None)
        model.train(was_training)
    scale = (h // s) * (w // s)
    macs = sum(conv_macs(c, *shapes[id(c)]) for c in convs if id(c) in shapes)
    return 2 * macs * scale
