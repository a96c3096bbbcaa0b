"""Pictures drawn by code for the lessons (no copied images): the bear of the grid lesson."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def draw_bear(size: int = 256, seed: int = 0) -> Image.Image:
    """A cartoon brown bear on grass under a sky, as an RGB PIL image of size x size pixels.

    Deterministic for a given seed; used for the stride-32 grid example (a 256x256 picture is an 8x8 grid).
    """
    if not isinstance(size, (int, np.integer)) or size < 32:
        raise ValueError(f"size must be an integer >= 32, got {size!r}")
    rng = np.random.default_rng(seed)
    s = size / 256.0
    img = Image.new("RGB", (size, size))
    px = np.zeros((size, size, 3), np.uint8)
    rows = np.linspace(0, 1, size)[:, None]
    px[..., 0] = (150 + 60 * rows).astype(np.uint8)
    px[..., 1] = (190 + 40 * rows).astype(np.uint8)
    px[..., 2] = 235
    horizon = int(170 * s)
    px[horizon:] = (86, 140, 60)
    px[horizon:] = np.clip(px[horizon:].astype(int) + rng.integers(-12, 12, px[horizon:].shape), 0, 255)
    img = Image.fromarray(px)
    d = ImageDraw.Draw(img)

    def ell(cx, cy, rx, ry, fill):
        d.ellipse([(cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s], fill=fill)

    brown, dark, snout = (120, 72, 40), (70, 40, 20), (190, 150, 110)
    ell(104, 150, 52, 56, brown)  # body
    ell(70, 200, 16, 12, dark)  # feet
    ell(138, 200, 16, 12, dark)
    ell(72, 66, 14, 14, brown)  # ears
    ell(128, 66, 14, 14, brown)
    ell(72, 66, 7, 7, snout)
    ell(128, 66, 7, 7, snout)
    ell(100, 92, 36, 32, brown)  # head
    ell(100, 104, 15, 11, snout)  # snout
    ell(100, 99, 6, 4, (30, 20, 15))  # nose
    ell(87, 84, 4, 4, (20, 20, 20))  # eyes
    ell(113, 84, 4, 4, (20, 20, 20))
    ell(210, 40, 18, 18, (250, 220, 90))  # sun
    return img
