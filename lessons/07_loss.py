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
# # 07 · Binary cross-entropy and the YOLOX loss
#
# **Goals**
# - compute binary cross-entropy (BCE) for the seed article's one-hot example and see what it rewards;
# - write BCE on logits in a form that never overflows, and know its gradient `sigmoid(z) − t`;
# - assemble the three YOLOX loss terms (box, objectness, class) on a small example by hand, match
#   `yolox_np.loss.yolox_loss`, and compare the official loss with the article's description of it.

# %%
import numpy as np

from yolox_np.loss import bce_with_logits, bce_with_logits_backward

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## BCE on the article's example
# Each class is its own yes/no question, so the class output of one prediction is C independent
# probabilities, and the loss of each is the binary cross-entropy
# `BCE(p, t) = −t·ln p − (1 − t)·ln(1 − p)`. The article's example has four classes, the second one correct,
# and three predictions. The network outputs *logits* `z` and the probability is `p = sigmoid(z)`, so we
# turn each probability back into its logit, `z = ln(p / (1 − p))`, and hand that to `bce_with_logits`.

# %%
labels = np.array([0.0, 1.0, 0.0, 0.0])
preds = {
    "pred1": np.array([0.45, 0.25, 0.05, 0.25]),  # most confident in the first class
    "pred2": np.array([0.25, 0.25, 0.25, 0.25]),  # no preference
    "pred3": np.array([0.10, 0.70, 0.10, 0.10]),  # confident in the right class
}
bce = {}
for name, p in preds.items():
    z = np.log(p / (1 - p))
    bce[name] = bce_with_logits(z, labels)
    by_formula = -labels * np.log(p) - (1 - labels) * np.log(1 - p)
    assert np.allclose(bce[name], by_formula)
    print(f"{name}: BCE per class {bce[name]}  sum {bce[name].sum():.4f}  mean {bce[name].mean():.4f}")

# the ranking the article hopes for: the confident right answer is cheapest
assert np.allclose([bce[n].sum() for n in preds], [2.3231, 2.2493, 0.6728], atol=1e-4)

# %% [markdown]
# pred3 wins by far. More interesting is pred1 against pred2: both give the correct class 0.25, so a
# loss that only looked at the correct class (softmax cross-entropy, `−ln p_correct`) could not tell them
# apart. BCE also charges pred1 for its confident *wrong* answer, 0.45 on the first class, and so ranks the
# undecided pred2 above it.

# %%
for name, p in preds.items():
    print(f"{name}: -ln p(correct) = {-np.log(p[1]):.4f}   BCE sum = {bce[name].sum():.4f}")

# %% [markdown]
# ## BCE on logits, without overflow
# Writing `BCE(sigmoid(z), t)` literally breaks for large logits: `sigmoid(40)` rounds to exactly 1 in
# float64, so `ln(1 − 1) = −inf`, and `exp(−z)` overflows for `z = −1000` (the result is `0·∞ = nan`).
# Substituting `p = 1/(1 + e^{−z})`
# and simplifying gives a form with no such trap:
# `BCE(z, t) = max(z, 0) − z·t + ln(1 + e^{−|z|})`. The exponent is never positive, so nothing overflows.

# %%
z = np.array([-1000.0, -40.0, -5.0, 0.0, 5.0, 40.0, 1000.0])
t = np.zeros_like(z)
with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
    naive = -t * np.log(1 / (1 + np.exp(-z))) - (1 - t) * np.log(1 - 1 / (1 + np.exp(-z)))
print("logits:        ", z)
print("naive formula: ", naive)
print("stable form:   ", bce_with_logits(z, t))

# %% [markdown]
# Its derivative is simply `sigmoid(z) − t`: never larger than 1 in size, zero when the prediction equals the
# target. A central difference confirms it. The figure shows both for three targets; the third, 0.6, is a
# *soft* target like the ones official YOLOX uses for classes (below). Its loss is smallest at
# `z = logit(0.6)`, where it is not zero.

# %%
zs = np.array([-3.0, 0.5, 2.0])
ts = np.array([1.0, 0.0, 0.6])
h = 1e-6
numeric = (bce_with_logits(zs + h, ts) - bce_with_logits(zs - h, ts)) / (2 * h)
print("sigmoid(z) - t:", bce_with_logits_backward(zs, ts), "| central difference:", numeric)

# %%
from yolox_np.figures import FIGURES, example_simota

FIGURES["bce_logits"]()

# %% [markdown]
# ## The YOLOX loss on a small example
# The head outputs, for every anchor, `[t_x, t_y, t_w, t_h, obj, cls_1 … cls_C]` (raw logits; lesson 04).
# Our example has one level of stride 8 on a 40×16 image (ten anchors), two classes and two ground truths.
# The loss needs to know which anchors are **positives** and which object each one should predict: that
# is label assignment, SimOTA, the subject of lesson 08. Here we just take its answer.

# %%
from yolox_np.assign import simota_assign
from yolox_np.boxes import decode

ex = example_simota()
raw, grids, strides = ex["raw"], ex["grids"], ex["strides"]
targets = [np.column_stack([ex["gt_classes"], ex["gt_boxes"]])]  # one image: rows [class, cx, cy, w, h]
boxes = decode(raw[0, :, :4], grids, strides)  # (cx, cy, w, h) in pixels
obj_logits, cls_logits = raw[0, :, 4], raw[0, :, 5:]
a = simota_assign(boxes, cls_logits, obj_logits, grids, strides, ex["gt_boxes"], ex["gt_classes"])
fg = np.flatnonzero(a.fg_mask)
print("ground truths [class, cx, cy, w, h]:\n", targets[0])
print("positives:", [f"a{n} -> GT{a.gt_index[n]}" for n in fg], "| IoU with their GT:", a.iou[fg])

# %% [markdown]
# Official YOLOX sums each term over its predictions and divides by the number of positives, `num_fg`:
# - **box**: `1 − IoU²` between each positive's decoded box and its ground truth, weighted by 5;
# - **objectness**: BCE on *every* anchor, target 1 for positives and 0 for the rest;
# - **class**: BCE on the positives only, target `one_hot(class) × IoU`, so a box that fits badly is not
#   asked to be sure of its class.

# %%
from yolox_np.loss import iou_loss

num_fg = len(fg)
gt = targets[0][a.gt_index[fg]]
box_terms = iou_loss(boxes[fg], gt[:, 1:])
l_iou = 5.0 * box_terms.sum() / num_fg
obj_target = a.fg_mask.astype(float)
l_obj = bce_with_logits(obj_logits, obj_target).sum() / num_fg
cls_target = np.zeros((num_fg, 2))
cls_target[np.arange(num_fg), gt[:, 0].astype(int)] = a.iou[fg]
l_cls = bce_with_logits(cls_logits[fg], cls_target).sum() / num_fg
print("1 - IoU^2 per positive:", box_terms)
print("class targets:\n", cls_target)
print(f"by hand: 5 x box {l_iou:.4f} + obj {l_obj:.4f} + cls {l_cls:.4f} = {l_iou + l_obj + l_cls:.4f}")

# %%
from yolox_np.loss import yolox_loss

out = yolox_loss(raw, grids, strides, targets)
print({k: round(out[k], 4) for k in ("iou", "obj", "cls", "l1", "total", "num_fg")})
assert np.isclose(out["total"], l_iou + l_obj + l_cls)
assert np.isclose(out["total"], 4.0272, atol=1e-4)

# %% [markdown]
# `yolox_loss` also returns the gradient with respect to the raw output, ready for `model.backward`. A
# negative anchor only receives an objectness gradient; a positive one gets all seven. With the
# assignment held fixed (it is a discrete choice and carries no gradient), a central difference agrees.

# %%
grad = out["grad"][0]
print("gradient of a4 (negative):", grad[4])
print("gradient of a1 (positive):", grad[1])
fixed = out["assignments"]
bumped = [raw.copy(), raw.copy()]
bumped[0][0, 1, 2] += 1e-6
bumped[1][0, 1, 2] -= 1e-6
f_plus, f_minus = (yolox_loss(r, grids, strides, targets, assignments=fixed)["total"] for r in bumped)
print("d total / d t_w of a1:", grad[1, 2], "| central difference:", (f_plus - f_minus) / 2e-6)

# %% [markdown]
# In the last 15 epochs of training (no strong augmentation), official YOLOX adds a fourth term: an L1 loss
# between the raw box outputs of the positives and the raw values that would decode exactly to their
# ground truth.

# %%
print("with the L1 term:", {k: round(v, 4) for k, v in yolox_loss(raw, grids, strides, targets, use_l1=True).items()
                            if k in ("iou", "obj", "cls", "l1", "total")})

# %% [markdown]
# ## Article vs official YOLOX
# The article describes the same three terms and the same division by the number of positives with weight
# 5 on the box term, but three of its choices differ from the official code. `variant="article"` follows
# the article and keeps everything else (decoding, SimOTA, weights) official:
#
# | term | article | official |
# |---|---|---|
# | box | GIoU loss `1 − GIoU` | `1 − IoU²` |
# | objectness target | IoU with its GT for positives; best IoU with any GT for the others | 1 for positives, 0 otherwise |
# | class target | one-hot | one-hot × IoU |
# | L1 | not mentioned | added for the last epochs |

# %%
from yolox_np.boxes import box_iou, cxcywh_to_xyxy

article = yolox_loss(raw, grids, strides, targets, variant="article")
best_iou = box_iou(cxcywh_to_xyxy(boxes), cxcywh_to_xyxy(ex["gt_boxes"])).max(axis=1)
article_obj_target = np.where(a.fg_mask, a.iou, best_iou)
print("objectness targets, official:", obj_target)
print("objectness targets, article: ", article_obj_target)
print("article:", {k: round(article[k], 4) for k in ("iou", "obj", "cls", "total")})
assert np.isclose(article["obj"], bce_with_logits(obj_logits, article_obj_target).sum() / num_fg)
assert np.isclose(article["total"], 3.3542, atol=1e-4)

# %%
FIGURES["loss_variants"]()

# %% [markdown]
# ## Summary
# - BCE scores every class separately; on the article's example it ranks pred3 (0.673) < pred2 (2.249) <
#   pred1 (2.323), charging pred1 for its confident wrong class.
# - `max(z, 0) − z·t + ln(1 + e^{−|z|})` is BCE on logits without overflow; its gradient is `sigmoid(z) − t`.
# - Official YOLOX loss = (5·Σ(1 − IoU²) + Σ BCE_obj over all anchors + Σ BCE_cls with IoU-scaled targets) /
#   num_fg, plus L1 at the end of training: 4.0272 on our example. The article's variant gives 3.3542.
#
# ## Exercises
# 1. **`bce_with_logits`** (graded): write the body of `yolox_np.loss.bce_with_logits` in the stable form.
# 2. With the official class target `one_hot × IoU`, which logit minimises the class loss of a positive
#    whose box has IoU 0.5? What does that mean for the scores the trained model outputs?
# 3. In the article's variant a negative anchor whose box overlaps a ground truth by 0.4 gets objectness
#    target 0.4. Argue for and against that choice.
# 4. Double the weight of the box term. Which of the example's gradients change, and by how much?

# %%
from yolox_np.grading import check

print(check("bce_with_logits", bce_with_logits))
