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
# # 08 · SimOTA: which predictions learn which object
#
# **Goals**
# - follow SimOTA, YOLOX's label assignment, one step at a time on a ten-anchor example: geometry test,
#   IoU and class costs, the cost matrix, dynamic k, selection and conflicts;
# - see each intermediate array, computed by our own code and by `yolox_np.assign.simota_assign`;
# - know how the current official code differs from the release the published weights were trained with.
#
# Before the loss of lesson 07 can be computed, every anchor must be labelled: *positive*, with the ground
# truth (GT) it should predict, or *negative*. Anchor-based YOLOs did this with fixed IoU rules on anchor
# boxes. SimOTA instead asks, image by image, which predictions would be *cheapest* to train towards each
# object, given what the network currently outputs. The assignment therefore changes during training.

# %%
import numpy as np

from yolox_np.boxes import box_iou, cell_centers, cxcywh_to_xyxy
from yolox_np.figures import FIGURES, example_simota

np.set_printoptions(precision=4, suppress=True, linewidth=120)
ex = example_simota()
grids, strides = ex["grids"], ex["strides"]
pred, obj, cls = ex["pred_boxes"], ex["obj_logits"], ex["cls_logits"]
gt_boxes, gt_classes = ex["gt_boxes"], ex["gt_classes"]

# %% [markdown]
# ## The example
# One level of stride 8 on a 40×16 image gives a 5×2 grid, so ten anchors, numbered row by row
# (`a0 … a4` on top). Each anchor has a decoded predicted box `(cx, cy, w, h)`, an objectness logit and two
# class logits. There are two ground truths: GT0 of class 0 and GT1 of class 1.

# %%
centers = cell_centers(grids, strides)
print("anchor  cell    centre    predicted box (cx, cy, w, h)   obj   cls logits")
for n in range(len(grids)):
    (i, j), (x, y) = grids[n].tolist(), centers[n].tolist()
    print(f"  a{n}   ({i}, {j})  ({x:2.0f}, {y:2.0f})   {pred[n]}   {obj[n]:5.1f}   {cls[n]}")
print("GT boxes (cx, cy, w, h):", gt_boxes.tolist(), "classes:", gt_classes.tolist())

# %% [markdown]
# ## Step 1: geometry
# Only anchors near an object may learn it. An anchor passes the test for a GT when its cell centre lies
# strictly within 1.5 strides (here 12 pixels) of the GT centre, in x and in y. Anchors that pass for at least
# one GT are the **candidates**; all others are negatives straight away.

# %%
from yolox_np.assign import geometry_constraint

radius = 1.5 * strides
near = (np.abs(centers[None, :, 0] - gt_boxes[:, None, 0]) < radius) & (
    np.abs(centers[None, :, 1] - gt_boxes[:, None, 1]) < radius
)
candidate_mask, pair_ok = geometry_constraint(centers, strides, gt_boxes)
assert (near == pair_ok).all()
cand = np.flatnonzero(candidate_mask)
print("passes the test (rows GT0, GT1):\n", near.astype(int))
print("candidates:", [f"a{n}" for n in cand])

# %%
FIGURES["simota_candidates"]()

# %% [markdown]
# ## Step 2: IoU cost
# How well does each candidate's predicted box already fit each GT? IoU in [0, 1] becomes a cost with
# `−ln(IoU + 1e-8)`: 0 for a perfect fit, about 18 for no overlap at all.

# %%
iou = box_iou(cxcywh_to_xyxy(gt_boxes), cxcywh_to_xyxy(pred[cand]))
iou_cost = -np.log(iou + 1e-8)
print("IoU (GT x candidate):\n", iou)
print("IoU cost:\n", iou_cost)

# %% [markdown]
# ## Step 3: class cost
# How much would the class loss be if the candidate predicted that GT? SimOTA scores a candidate's class
# with the geometric mean of class and objectness probabilities, `p = sqrt(sigmoid(cls) · sigmoid(obj))`,
# and sums the BCE against the GT's one-hot class over all classes. For a1 and GT0 (class 0):
# `−ln p₀ − ln(1 − p₁)`.

# %%
from yolox_np.assign import class_cost
from yolox_np.loss import sigmoid

p = np.sqrt(sigmoid(cls[cand]) * sigmoid(obj[cand])[:, None])
onehot = np.eye(2)[gt_classes]  # (G, C)
by_hand = -(onehot[:, None, :] * np.log(p[None]) + (1 - onehot[:, None, :]) * np.log(1 - p[None])).sum(axis=2)
cls_cost = class_cost(cls[cand], obj[cand], gt_classes)
assert np.allclose(by_hand, cls_cost)
print("p (candidate x class):\n", p)
print("a1 / GT0:", -np.log(p[1, 0]), "+", -np.log(1 - p[1, 1]), "=", cls_cost[0, 1])
print("class cost (GT x candidate):\n", cls_cost)

# %% [markdown]
# ## Step 4: the cost matrix
# `cost = class cost + 3 · IoU cost + 10⁶ · (pair fails the geometry test)`. The last term is a penalty, not
# an exclusion: a GT may still pick a far candidate if it runs out of near ones, but it never prefers one.

# %%
cost = cls_cost + 3.0 * iou_cost + 1e6 * ~pair_ok[:, cand]
print("cost (GT x candidate):\n", cost)

# %% [markdown]
# ## Step 5: dynamic k
# How many positives should a GT get? A large, well-predicted object deserves several, a tiny one perhaps one.
# SimOTA estimates it from the IoUs: take each GT's `min(10, candidates)` largest IoUs, sum them and round
# down, with at least 1. Well-fitting predictions make the sum, and so k, grow.

# %%
from yolox_np.assign import dynamic_k

q = min(10, len(cand))
top = -np.sort(-iou, axis=1)[:, :q]
print(f"sums of the {q} largest IoUs:", top.sum(axis=1))
k = dynamic_k(iou)
print("dynamic k:", k)
assert k.tolist() == [3, 2]

# %%
FIGURES["simota_dynamic_k"]()

# %% [markdown]
# ## Step 6: the k cheapest, and conflicts
# Each GT takes its k cheapest candidates. One candidate can end up taken by both GTs; it then goes to the GT
# for which its cost is lowest, and the other GT simply has one positive fewer.

# %%
initial = np.zeros_like(cost, dtype=bool)
for g in range(len(gt_boxes)):
    initial[g, np.argsort(cost[g])[: k[g]]] = True
print("chosen (GT x candidate):\n", initial.astype(int))
twice = np.flatnonzero(initial.sum(axis=0) > 1)
for j in twice:
    print(f"a{cand[j]} is claimed by both: costs {cost[:, j]} -> goes to GT{np.argmin(cost[:, j])}")
matching = initial.copy()
matching[:, twice] = False
matching[np.argmin(cost[:, twice], axis=0), twice] = True

# %%
FIGURES["simota_cost"]()

# %% [markdown]
# ## The result, and the package function
# `simota_assign` runs all the steps and keeps every intermediate array in the `Assignment` it returns.
# Ours agree with it. GT0 asked for 3 positives but keeps 2 after losing a2 to GT1.

# %%
from yolox_np.assign import simota_assign

a = simota_assign(pred, cls, obj, grids, strides, gt_boxes, gt_classes)
assert np.allclose(a.cost, cost) and (a.initial_matching == initial).all() and (a.matching == matching).all()
for n in np.flatnonzero(a.fg_mask):
    print(f"a{n} -> GT{a.gt_index[n]} (IoU {a.iou[n]:.4f})")
print("num_fg:", a.num_fg, "| negatives:", [f"a{n}" for n in np.flatnonzero(~a.fg_mask)])

# %%
FIGURES["simota_assignment"]()

# %% [markdown]
# These positives, their GTs and their IoUs are exactly what the loss of lesson 07 used: box and class
# terms on a1, a2, a6, a7, objectness target 1 there and 0 on the six others.
#
# ## Article vs official YOLOX
# The seed article leaves label assignment to a later article: for the loss it only needs to know that
# "good" predictions are positive and carry a GT. The official code has two versions of SimOTA:
#
# - **current `main`** (since January 2023, used above): the geometry test is the 1.5-stride square around
#   the GT centre, penalty 10⁶;
# - **releases up to 0.3.0**, with which the published weights were trained: candidates are anchors whose
#   centre is inside a GT box *or* within 2.5 strides of its centre; a pair avoids the penalty (10⁵) only if
#   both hold. `variant="v0.3.0"` selects it. On our example every anchor becomes a candidate, yet the
#   assignment is the same.
#
# The YOLOX paper describes the cost as `L_cls + λ·L_reg` without fixing λ; the code uses λ = 3.

# %%
old = simota_assign(pred, cls, obj, grids, strides, gt_boxes, gt_classes, variant="v0.3.0")
print("v0.3.0 candidates:", [f"a{n}" for n in old.candidate_index], "| dynamic k:", old.dynamic_k)
print("same positives and GTs:", (old.fg_mask == a.fg_mask).all() and (old.gt_index == a.gt_index).all())

# %% [markdown]
# ## Summary
# - SimOTA labels anchors per image: geometry test → candidates → cost = class cost + 3·(−ln IoU) (+10⁶
#   outside the test) → k = ⌊sum of the top-10 IoUs⌋ per GT → the k cheapest → conflicts to the cheapest GT.
# - On the example: candidates a0–a3, a5–a8; k = (3, 2); a2 is claimed twice and goes to GT1 (3.32 < 3.99);
#   positives a1, a6 → GT0 and a2, a7 → GT1.
# - The assignment follows the network's own predictions, so it changes as the network learns; it carries
#   no gradient.
#
# ## Exercises
# 1. **`dynamic_k`** (graded): write the body of `yolox_np.assign.dynamic_k`.
# 2. **`simota_assign`** (graded): write the body of `yolox_np.assign.simota_assign` from the pieces in
#    this lesson (`geometry_constraint`, `box_iou`, `class_cost`, `dynamic_k`).
# 3. Raise a7's objectness logit to 3. Which costs change, and does the assignment?
# 4. Move GT1 to `cx = 34`. Which anchors are candidates now, and what happens to a4 and a9?
# 5. Why is the geometry term a large cost instead of removing the pair? Build a case where it matters
#    (hint: a GT with more positives than candidates near it).

# %%
from yolox_np.grading import check

print(check("dynamic_k", dynamic_k))
print(check("simota_assign", simota_assign))
