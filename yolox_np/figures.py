"""Every figure of the lessons and the README, each made by one function (`make figures` runs them all).

A figure function takes no arguments and returns a matplotlib Figure; `save_figure(name, folder)` writes
`<folder>/<name>.png`. Lessons call the same functions, so the picture in a notebook is the checked-in one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FIGURES: dict[str, Callable] = {}
REPO_FIGURES = Path(__file__).resolve().parents[1] / "figures"


def figure(name: str):
    def deco(fn):
        FIGURES[name] = fn
        return fn

    return deco


def save_figure(name: str, folder: str | Path = REPO_FIGURES, dpi: int = 100) -> Path:
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; figures are: {', '.join(sorted(FIGURES))}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fig = FIGURES[name]()
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- lesson 05: the grid
@figure("bear_grid")
def bear_grid():
    """The bear at stride 32 on 256x256: the 8x8 grid, anchor point (2, 1) and the decoded article box."""
    from .boxes import anchor_points, decode, make_grid
    from .drawings import draw_bear

    img = np.asarray(draw_bear(256))
    stride = 32
    grid = make_grid(256, 256, stride)
    centres = anchor_points(grid, np.full(len(grid), stride), convention="article")
    cell = np.array([[2, 1]])
    box = decode(np.array([[20.0, 15.0, 0.2, 0.3]]), cell, np.array([stride]), convention="article")[0]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(img, extent=(0, 256, 256, 0))
    for v in range(0, 257, stride):
        ax.axhline(v, color="white", lw=0.6, alpha=0.7)
        ax.axvline(v, color="white", lw=0.6, alpha=0.7)
    ax.scatter(centres[:, 0], centres[:, 1], s=8, c="white")
    ax.scatter([80], [48], s=60, c="red", zorder=3, label="cell (2, 1): point (80, 48)")
    cx, cy, w, h = box[:4]
    ax.add_patch(plt.Rectangle((cx - w / 2, cy - h / 2), w, h, fill=False, ec="yellow", lw=2,
                               label=f"box ({cx:.0f}, {cy:.0f}, {w:.1f}, {h:.1f})"))
    ax.scatter([cx], [cy], s=30, c="yellow", zorder=3)
    ax.set_xlim(0, 256)
    ax.set_ylim(256, 0)
    ax.set_title(f"stride 32 on 256x256: {len(grid)} anchor points")
    ax.legend(loc="lower right", fontsize=8)
    return fig


# ----------------------------------------------------------------------------- lesson 01: im2col
@figure("im2col")
def im2col_figure():
    """A 1-channel 4x4 input, its 3x3 receptive fields (padding 1) and the im2col matrix they form."""
    from .nn.functional import im2col_naive

    x = np.arange(1, 17, dtype=float).reshape(1, 4, 4)
    col = im2col_naive(x, 3, 1, 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 3.2]})
    axes[0].imshow(x[0], cmap="Blues", vmin=0, vmax=17)
    for (i, j), v in np.ndenumerate(x[0]):
        axes[0].text(j, i, int(v), ha="center", va="center")
    axes[0].add_patch(plt.Rectangle((-1.5, -1.5), 3, 3, fill=False, ec="red", lw=2, clip_on=False))
    axes[0].set_xlim(-1.6, 3.5)
    axes[0].set_ylim(3.5, -1.6)
    axes[0].set_title("4x4 input; the window of output 0", fontsize=9)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    axes[1].imshow(col, cmap="Blues", vmin=0, vmax=17, aspect="auto")
    for (i, j), v in np.ndenumerate(col):
        axes[1].text(j, i, int(v), ha="center", va="center", fontsize=7)
    axes[1].add_patch(plt.Rectangle((-0.5, -0.5), 1, 9, fill=False, ec="red", lw=2))
    axes[1].set_title("im2col: 9 kernel positions x 16 output positions (0 = padding)", fontsize=9)
    axes[1].set_xlabel("output position")
    axes[1].set_ylabel("kernel position")
    fig.tight_layout()
    return fig
