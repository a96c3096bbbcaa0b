"""The whole detector (`YOLOX` = neck-with-backbone + head) and the factories of the official sizes."""

from __future__ import annotations

import numpy as np

from .. import boxes
from ..nn import Module
from ..nn import functional as F
from .configs import canonical_name, get_config
from .fpn import YOLOFPN, PlainFeatures
from .head import YOLOXHead
from .pafpn import YOLOPAFPN

NECKS = ("yolofpn", "none")


class YOLOX(Module):
    """`backbone` (the neck object, which owns the feature extractor as `backbone.backbone`) and `head`.

    Train mode: `model(images)` returns `(raw, grids, strides)` with raw logits (B, A, 5 + C) in the order
    [reg (4), obj (1), cls (C)], integer cells `grids` (A, 2) as (x, y) and `strides` (A,); levels by
    increasing stride, row-major within a level.
    Eval mode: `model(images)` returns (B, A, 5 + C) with sigmoid on obj and cls and, when
    `decode_in_inference` is True (the default), boxes decoded to (cx, cy, w, h) input pixels:
    cx = (t_x + i) * s, w = exp(t_w) * s. With `decode_in_inference = False` the box columns stay raw,
    which is what the official ONNX export returns. `forward_raw(images)` gives `(raw, grids, strides)` in
    either mode.
    `backward(grad)` takes the gradient of whatever the last forward returned (raw logits or the eval output)
    and returns the gradient w.r.t. the images; every parameter's `.grad` is accumulated.
    """

    def __init__(self, backbone: Module, head: YOLOXHead, in_channels: int = 3, convention: str = "official"):
        super().__init__()
        if tuple(backbone.out_channels) != tuple(head.in_channels):
            raise ValueError(f"neck outputs {tuple(backbone.out_channels)} channels but the head expects "
                             f"{tuple(head.in_channels)}")
        self.backbone = backbone
        self.head = head
        self.in_channels = int(in_channels)
        self.convention = convention
        self._grid_cache = {}
        self._last = None

    # ------------------------------------------------------------------ properties
    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def strides(self) -> tuple[int, ...]:
        return self.head.strides

    @property
    def decode_in_inference(self) -> bool:
        return self.head.decode_in_inference

    @decode_in_inference.setter
    def decode_in_inference(self, value: bool) -> None:
        self.head.decode_in_inference = bool(value)

    # ------------------------------------------------------------------ inputs and grids
    def check_input(self, x) -> None:
        """Raise a ValueError unless x is a finite (B, 3, H, W) array of the model's dtype, H and W
        multiples of the largest stride."""
        if not isinstance(x, np.ndarray):
            raise ValueError(f"YOLOX expects a NumPy array of shape (B, {self.in_channels}, H, W), "
                             f"got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[0] < 1:
            raise ValueError(f"YOLOX expects images of shape (B, {self.in_channels}, H, W), got shape {x.shape}")
        s = max(self.strides)
        h, w = x.shape[2:]
        if h < s or w < s or h % s or w % s:
            raise ValueError(f"image height and width must be positive multiples of {s}, got {h}x{w}")
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"YOLOX expects floating-point images, got dtype {x.dtype} "
                             f"(cast with images.astype(np.{self.dtype}))")
        if x.dtype != self.dtype:
            raise ValueError(f"the model is {self.dtype} but the images are {x.dtype}; cast one of them "
                             "(images.astype(...) or model.astype(...))")
        if not np.isfinite(x).all():
            bad = np.unravel_index(np.flatnonzero(~np.isfinite(x))[0], x.shape)
            raise ValueError(f"images contain non-finite values (first at index {tuple(int(i) for i in bad)})")

    def grids(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(grids (A, 2) int64 cells (x, y), strides (A,) int64) for an image of height x width pixels."""
        key = (int(height), int(width))
        if key not in self._grid_cache:
            self._grid_cache[key] = boxes.make_grids(key[0], key[1], self.strides)
        g, s = self._grid_cache[key]
        return g.copy(), s.copy()

    # ------------------------------------------------------------------ forward / backward
    def forward_raw(self, x):
        """images (B, 3, H, W) -> (raw (B, A, 5 + C) logits, grids (A, 2), strides (A,)), in either mode."""
        self.check_input(x)
        raw = self.head(self.backbone(x))
        grids, strides = self.grids(x.shape[2], x.shape[3])
        self._last = ("raw", None)
        self._out_shape = raw.shape
        return raw, grids, strides

    def forward(self, x):
        raw, grids, strides = self.forward_raw(x)
        if self.training:
            return raw, grids, strides
        return self._inference_output(raw, grids, strides)

    def _inference_output(self, raw, grids, strides):
        decode = self.head.decode_in_inference
        out = boxes.decode(raw, grids, strides, self.convention) if decode else raw.copy()
        scores = F.sigmoid(raw[..., 4:])
        out[..., 4:] = scores
        # keep our own arrays: the caller may edit `out` in place
        self._last = ("decoded" if decode else "scores", (raw, grids, strides, scores))
        return out

    def backward(self, grad, need_input_grad: bool = True):
        """Gradient of the last forward's output (B, A, 5 + C) -> gradient w.r.t. the images (B, 3, H, W).

        With `need_input_grad=False` the image gradient is not computed (training) and None is returned.
        """
        if self._last is None:
            raise RuntimeError("YOLOX.backward called before forward")
        kind, saved = self._last
        if not isinstance(grad, np.ndarray) or grad.shape != self._out_shape:
            raise ValueError(f"YOLOX.backward expects a gradient array of shape {self._out_shape} (the last "
                             f"output's), got {getattr(grad, 'shape', type(grad).__name__)}")
        if not np.issubdtype(grad.dtype, np.floating) or not np.isfinite(grad).all():
            raise ValueError("YOLOX.backward needs a finite floating-point gradient")
        grad = grad.astype(self.dtype, copy=False)
        if kind != "raw":
            raw, grids, strides, scores = saved
            g = boxes.decode_backward(raw, grids, strides, grad, self.convention) if kind == "decoded" \
                else grad.copy()
            g[..., 4:] = grad[..., 4:] * scores * (1 - scores)
            grad = g
        return self.backbone.backward(self.head.backward(grad), need_dx=need_input_grad)


# ---------------------------------------------------------------------------------------------------- factories
def _make_rng(rng, seed) -> np.random.Generator:
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng
    return np.random.default_rng(seed)


def yolox_darknet53(num_classes=80, width=1.0, depth=53, blocks=None, neck="yolofpn", fused=False, rng=None,
                    seed=0, prior_prob=0.01) -> YOLOX:
    """YOLOX-Darknet53: Darknet-53 + SPP, YOLOFPN (128/256/512 channels), decoupled head, LeakyReLU 0.1.

    `width` scales every channel count (32 * width must be a whole number: 1/32, 1/16, ..., 1);
    `depth` 53 or 21, or `blocks` = residual blocks of (stem, dark2, dark3, dark4, dark5), e.g.
    (1, 1, 1, 1, 1) for a small model. `neck="none"` is the seed article's picture: the heads read the
    plain Darknet features of 256/512/1024 (* width) channels, without the SPP block or any neck.
    Initialisation is deterministic for a given `seed` (or `rng`, a numpy Generator).
    """
    if not (isinstance(width, (int, float, np.floating)) and np.isfinite(width) and width > 0):
        raise ValueError(f"width must be a positive number, got {width!r}")
    stem = 32 * float(width)
    if abs(stem - round(stem)) > 1e-9 or round(stem) < 1:
        raise ValueError(f"32 * width must be a positive whole number (the stem channels), got 32 * {width} = {stem}")
    rng = _make_rng(rng, seed)
    kw = dict(stem_out_channels=int(round(stem)), blocks=blocks, fused=fused, rng=rng)
    if neck == "yolofpn":
        body, head_in = YOLOFPN(depth, **kw), (128, 256, 512)
    elif neck in ("none", None):
        body, head_in = PlainFeatures(depth, **kw), (256, 512, 1024)
    else:
        raise ValueError(f"neck must be one of {NECKS}, got {neck!r}")
    head = YOLOXHead(num_classes, width, in_channels=head_in, act="lrelu", fused=fused, rng=rng,
                     prior_prob=prior_prob)
    return YOLOX(body, head)


def yolox_csp(num_classes=80, depth=1.0, width=1.0, depthwise=False, act="silu", fused=False, rng=None, seed=0,
              prior_prob=0.01) -> YOLOX:
    """A CSPDarknet + YOLOPAFPN + head model with any depth/width multipliers (the official sizes below)."""
    rng = _make_rng(rng, seed)
    body = YOLOPAFPN(depth, width, depthwise=depthwise, act=act, fused=fused, rng=rng)
    head = YOLOXHead(num_classes, width, in_channels=(256, 512, 1024), act=act, depthwise=depthwise, fused=fused,
                     rng=rng, prior_prob=prior_prob)
    return YOLOX(body, head)


def _official_csp(name, num_classes, fused, rng, seed) -> YOLOX:
    cfg = get_config(name)
    return yolox_csp(num_classes, cfg.depth, cfg.width, cfg.depthwise, fused=fused, rng=rng, seed=seed)


def yolox_nano(num_classes=80, fused=False, rng=None, seed=0) -> YOLOX:
    """YOLOX-Nano: depth 0.33, width 0.25, depthwise 3x3 convs (912,159 parameters at 80 classes)."""
    return _official_csp("nano", num_classes, fused, rng, seed)


def yolox_tiny(num_classes=80, fused=False, rng=None, seed=0) -> YOLOX:
    """YOLOX-Tiny: depth 0.33, width 0.375."""
    return _official_csp("tiny", num_classes, fused, rng, seed)


def yolox_s(num_classes=80, fused=False, rng=None, seed=0) -> YOLOX:
    """YOLOX-S: depth 0.33, width 0.5."""
    return _official_csp("s", num_classes, fused, rng, seed)


def yolox_m(num_classes=80, fused=False, rng=None, seed=0) -> YOLOX:
    """YOLOX-M: depth 0.67, width 0.75."""
    return _official_csp("m", num_classes, fused, rng, seed)


def yolox_l(num_classes=80, fused=False, rng=None, seed=0) -> YOLOX:
    """YOLOX-L: depth 1.0, width 1.0."""
    return _official_csp("l", num_classes, fused, rng, seed)


def yolox_x(num_classes=80, fused=False, rng=None, seed=0) -> YOLOX:
    """YOLOX-X: depth 1.33, width 1.25."""
    return _official_csp("x", num_classes, fused, rng, seed)


FACTORIES = {"darknet53": yolox_darknet53, "nano": yolox_nano, "tiny": yolox_tiny, "s": yolox_s, "m": yolox_m,
             "l": yolox_l, "x": yolox_x}


def get_model(name: str, num_classes: int = 80, **kw) -> YOLOX:
    """Build a model by name: "darknet53", "nano", "tiny", "s", "m", "l", "x" (or "yolox_nano", "yolox-s", ...).

    Extra keywords go to the factory (`fused`, `rng`, `seed`; for darknet53 also `width`, `blocks`, `neck`).
    """
    return FACTORIES[canonical_name(name)](num_classes=num_classes, **kw)
