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
# # 06 · IoU and GIoU
#
# **Goals**
# - compute the intersection, the union and their ratio, the IoU, for boxes given as corners;
# - test the bounds the seed article states (`0 ≤ I ≤ U`, `A₁ ≤ U ≤ A₁ + A₂`, `0 ≤ IoU ≤ 1`) on hundreds of
#   random boxes with hypothesis, instead of believing them;
# - see why IoU says nothing once two boxes stop touching, and how GIoU fills that gap.
#
# A detector is judged, trained and cleaned up with one number: how much two boxes overlap. The loss
# (lesson 07), the label assignment (08), NMS (09) and the AP (11) all call the functions of this lesson.

# %%
import numpy as np

from yolox_np.boxes import box_area, box_giou, box_iou, enclosing_box, intersection, union

# %% [markdown]
# ## Intersection, union, IoU
# Boxes are `(x1, y1, x2, y2)` in pixels. The overlap of two boxes is again a box: its left edge is the
# larger of the two left edges, its right edge the smaller of the two right edges, and so on; if the left
# edge ends up right of the right edge, there is no overlap. The union is what the two areas cover
# together: `U = A₁ + A₂ − I` (the overlap was counted twice).

# %%
a = np.array([[10.0, 10.0, 50.0, 40.0]])
b = np.array([[30.0, 20.0, 70.0, 60.0]])
inter = intersection(a, b)[0, 0]
uni = union(a, b)[0, 0]
print("areas:", box_area(a)[0], box_area(b)[0], "| intersection:", inter, "| union:", uni)
print("IoU = I / U =", inter / uni, "| box_iou:", box_iou(a, b)[0, 0])

# %% [markdown]
# `box_iou` works on whole sets at once: `(N, 4)` against `(M, 4)` gives an `(N, M)` matrix, which is
# how SimOTA compares every ground truth with every prediction.

# %%
preds = np.array([[10.0, 10, 50, 40], [12, 12, 48, 42], [30, 20, 70, 60], [100, 100, 120, 130]])
print(np.round(box_iou(np.vstack([a, b]), preds), 4))

# %% [markdown]
# ## The bounds, tested
# The article reasons about the extremes. The intersection can be empty but never bigger than the union:
# `0 ≤ I ≤ U`. The union is largest when the boxes are apart (`A₁ + A₂`) and smallest when one box
# swallows the other. The article writes the lower end as `A₁`; precisely it is the *larger* of the two
# areas, `max(A₁, A₂) ≤ U`, which is the same statement for both boxes at once. Hence `0 ≤ IoU ≤ 1`.
#
# Rather than prove it on paper, we let [hypothesis](https://hypothesis.readthedocs.io) throw random boxes
# at our code: `@given` draws examples from a strategy, and a failing example would be shrunk to the
# simplest one it can find. Floating-point rounding can put `U` a hair below `max(A₁, A₂)` (the sum
# `A₁ + A₂` is rounded before `I` is subtracted), so the comparisons allow a relative error of 1e-12.

# %%
from hypothesis import given, settings
from hypothesis import strategies as st

coord = st.floats(-100, 100, allow_nan=False)
side = st.floats(0, 80, allow_nan=False)


@st.composite
def boxes_xyxy(draw):
    x, y = draw(coord), draw(coord)
    return np.array([[x, y, x + draw(side), y + draw(side)]])


tested = []


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(boxes_xyxy(), boxes_xyxy())
def article_bounds(p, q):
    i, u = intersection(p, q)[0, 0], union(p, q)[0, 0]
    a1, a2 = box_area(p)[0], box_area(q)[0]
    tol = 1e-12 * (1 + a1 + a2)
    assert 0 <= i <= u + tol
    assert max(a1, a2) <= u + tol and u <= a1 + a2 + tol
    iou, giou = box_iou(p, q)[0, 0], box_giou(p, q)[0, 0]
    assert 0 <= iou <= 1
    assert -1 <= giou <= iou + 1e-12
    assert np.isclose(iou, box_iou(q, p)[0, 0]) and np.isclose(giou, box_giou(q, p)[0, 0])
    tested.append((i, u, iou, giou))


article_bounds()
t = np.array(tested)
print(f"{len(t)} random pairs: every bound held")
print(f"pairs that do not overlap: {(t[:, 0] == 0).sum()}; smallest GIoU seen: {t[:, 3].min():.3f}")

# %% [markdown]
# A property test is only worth something if it can fail. Claim something false, for instance "GIoU is
# never negative", and hypothesis's `find` returns the simplest pair of boxes that breaks the claim:

# %%
from hypothesis import find

p, q = find(st.tuples(boxes_xyxy(), boxes_xyxy()), lambda pq: box_giou(*pq)[0, 0] < 0,
            settings=settings(database=None, derandomize=True))
print("counterexample:", p[0], q[0], "GIoU =", box_giou(p, q)[0, 0])

# %% [markdown]
# Shrinking pushes every number towards 0, so the reported pair is as plain as it gets: two boxes of zero
# area (a point and a unit segment) that do not touch. Their union is 0 and their enclosing box has area 1,
# so GIoU = 0 − (1 − 0)/1 = −1, the bottom of its range.

# %% [markdown]
# ## IoU as a loss, and where it goes blind
# Training wants a number to *minimise*, so the article uses `1 − IoU`: 0 for a perfect box, 1 for a box
# that misses. The trouble is that every box that misses gets the same 1, whether it is a pixel away or
# across the image, so the loss gives no hint which way to move. That is the left half of the figure
# below: slide a copy of a 10×10 box to the right and its IoU drops to 0 at a shift of 10 and stays there.
#
# **Generalised IoU** (Rezatofighi et al., 2019) subtracts the part of the smallest enclosing box `C`
# that neither box covers: `GIoU = IoU − (C − U) / C`. When the boxes overlap well the penalty is small;
# when they drift apart `C` keeps growing and GIoU keeps falling, towards −1. So `GIoU ∈ (−1, 1]`, a range
# of 2 where IoU has a range of 1.

# %%
c = enclosing_box(a, b)[0, 0]
c_area = box_area(c)
print("enclosing box:", c, "area", c_area)
print("GIoU by hand:", inter / uni - (c_area - uni) / c_area, "| box_giou:", box_giou(a, b)[0, 0])

# %%
from yolox_np.figures import FIGURES

FIGURES["iou_giou"]()

# %% [markdown]
# The gradient tells the same story. `yolox_np.loss` has both losses on `(cx, cy, w, h)` boxes with their
# hand-written backward passes. A prediction 2 pixels right of its target gets a gradient from both. At 15
# pixels the IoU loss is flat (zero gradient), while the GIoU loss still pulls the box to the left: the
# gradient on `cx` is positive, so gradient descent decreases `cx`.

# %%
from yolox_np.loss import giou_loss, giou_loss_backward, iou_loss, iou_loss_backward

target = np.array([[20.0, 20.0, 10.0, 10.0]])
for dx in (2.0, 15.0):
    pred = target + [dx, 0, 0, 0]
    print(f"shift {dx:4}: 1-IoU^2 = {iou_loss(pred, target)[0]:.3f}, grad {np.round(iou_loss_backward(pred, target)[0], 4)}"
          f" | GIoU loss = {giou_loss(pred, target)[0]:.3f}, grad {np.round(giou_loss_backward(pred, target)[0], 4)}")

# %% [markdown]
# ## Article vs official YOLOX
# - **Regression loss.** The article trains the boxes with the GIoU loss, summed over positive predictions.
#   The official code defaults to `1 − IoU²` (`loss_type="iou"`) and offers `"giou"` as an option; the
#   package has both (`iou_loss`, `giou_loss`; `yolox_loss(..., variant="article")` picks GIoU).
#   Official YOLOX can do without GIoU because its label assignment (lesson 08) prefers, as positives,
#   predictions with a small IoU cost, i.e. boxes that usually overlap their object already.
# - **The lower bound of the union.** `max(A₁, A₂) ≤ U`, not just `A₁ ≤ U` for a fixed box 1.
# - **Objectness.** The article wants IoU (not GIoU) as the objectness target because its range is [0, 1];
#   official YOLOX uses a plain 1/0 target instead (lesson 07).
#
# ## Summary
# - `IoU = I / U` with `U = A₁ + A₂ − I`; for corner boxes the overlap is `min(x2) − max(x1)` (clipped at 0)
#   times the same in y.
# - `0 ≤ I ≤ U`, `max(A₁, A₂) ≤ U ≤ A₁ + A₂`, `0 ≤ IoU ≤ 1`, `−1 < GIoU ≤ IoU`: checked above on 300
#   random pairs.
# - IoU is 0 for every pair that does not touch, so `1 − IoU` has no gradient there; GIoU subtracts the
#   empty part of the enclosing box and keeps a slope.
#
# ## Exercises
# 1. **`box_iou`** (graded): write the body of `yolox_np.boxes.box_iou` for `(N, 4)` and `(M, 4)` boxes,
#    returning the `(N, M)` matrix, 0 where the union is 0.
# 2. **`box_giou`** (graded): write `yolox_np.boxes.box_giou` the same way.
# 3. When is GIoU equal to IoU? Find two different pairs of boxes for which it is.
# 4. Two boxes of the same size touch along one edge. What are their IoU and GIoU? What if they touch only
#    at a corner?
# 5. Change `article_bounds` so that it claims `U ≤ A₁ + A₂ − 1`. Which pair does hypothesis report?

# %%
from yolox_np.grading import check

print(check("box_iou", box_iou))
print(check("box_giou", box_giou))
