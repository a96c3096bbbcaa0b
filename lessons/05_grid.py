# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · The grid: from a cell to a box
#
# **Goals**
# - count the anchor points a stride puts on an image;
# - turn a raw prediction of one cell into a box, with the seed article's convention and with the official one;
# - see that the two conventions describe the same box with different numbers.
#
# YOLOX has no anchor *boxes*. Each output cell of a level with stride `s` owns one *anchor point*, and the
# network predicts a box relative to that point. Everything below is computed by `yolox_np.boxes`.

# %%
import numpy as np

from yolox_np.boxes import anchor_points, decode, make_grid, make_grids

# %% [markdown]
# ## How many points?
# A 256×256 picture at stride 32 has 256/32 = 8 points per axis. Over the three strides 8, 16, 32 the
# model makes one prediction per point. For contrast, the article counts every pixel of a 1024×1024 image as
# a possible location.

# %%
grid32 = make_grid(256, 256, 32)
grids, strides = make_grids(256, 256, (8, 16, 32))
per_level = {int(s): int((strides == s).sum()) for s in (8, 16, 32)}
print("stride 32:", len(grid32), "points; per level:", per_level, "total:", len(strides))
print("pixel locations of a 1024x1024 image:", f"{1024 * 1024:,}")
assert len(grid32) == 64

# %% [markdown]
# ## The bear at stride 32
# The article's example: cell (i, j) = (2, 1) — third column, second row, counting from 0 at the top left.
# In the article's convention the anchor point is the cell centre, `x = s/2 + s·i`, `y = s/2 + s·j`.

# %%
cell = np.array([[2, 1]])
stride = np.array([32])
print("anchor point (article):", anchor_points(cell, stride, convention="article")[0])
print("anchor point (official):", anchor_points(cell, stride, convention="official")[0])

# %% [markdown]
# The model predicts `(p_x, p_y, p_w, p_h) = (20, 15, 0.2, 0.3)` there. The article adds the x/y offsets in
# pixels to the point and scales the size by the stride: `l_w = s·e^{p_w}`.

# %%
article_box = decode(np.array([[20.0, 15.0, 0.2, 0.3]]), cell, stride, convention="article")[0]
print("article decode (cx, cy, w, h):", np.round(article_box, 2))

# %%
from yolox_np.figures import FIGURES

FIGURES["bear_grid"]()

# %% [markdown]
# ## Article vs official YOLOX
# The official code uses the cell's **top-left** corner as the reference and measures the x/y offsets in
# **stride units**: `cx = (t_x + i)·s`. The same box therefore needs `t_x = p_x/s + 0.5`,
# `t_y = p_y/s + 0.5` — here (1.125, 0.96875). Sizes follow the same rule in both.

# %%
t = np.array([[20 / 32 + 0.5, 15 / 32 + 0.5, 0.2, 0.3]])
official_box = decode(t, cell, stride, convention="official")[0]
print("official t:", t[0], "-> box", np.round(official_box, 2))
assert np.allclose(official_box, article_box)
print("raw (20, 15) fed to the official decoder lands at", decode(np.array([[20.0, 15, 0.2, 0.3]]), cell, stride)[0][:2])

# %% [markdown]
# ## Summary
# - A stride `s` puts `(H/s)·(W/s)` anchor points on an `H×W` image: 64 at stride 32 on 256×256, 1344 over
#   strides 8/16/32.
# - The article decodes `(20, 15, 0.2, 0.3)` at cell (2, 1) to the box (100, 63, 39.1, 43.2).
# - The official decoder reads offsets in stride units from the top-left corner; both conventions are
#   available through `decode(..., convention=...)`.
#
# ## Exercises
# 1. **`decode`** (graded): write the body of `yolox_np.boxes.decode` for both conventions, then run the cell
#    below. Its report shows the smallest input where your answer differs.
# 2. What box does the article's prediction `(0, 0, 0, 0)` give at cell (7, 7)? And the official one?
# 3. How many predictions does YOLOX make for a 640×640 image? For 416×416?

# %%
from yolox_np.grading import check

print(check("decode", decode))
