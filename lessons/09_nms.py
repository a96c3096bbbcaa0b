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
# # 09 · Non-maximum suppression: hard, soft, and the article's
#
# **Goals**
# - remove duplicate detections with greedy hard NMS, step by step, class-agnostic and class-aware;
# - lower scores instead of deleting boxes with Soft-NMS (Bodla et al., 2017), linear and Gaussian;
# - run the seed article's own Soft-NMS on the same boxes and see where it departs from Bodla's.
#
# Neighbouring anchors look at the same object and all predict it, so a trained YOLOX returns several
# near-identical boxes per object. NMS keeps the best one of each group. Boxes are `(x1, y1, x2, y2)`.

# %%
import numpy as np

from yolox_np.boxes import box_iou
from yolox_np.figures import FIGURES, example_nms

np.set_printoptions(precision=3, suppress=True, linewidth=120)
ex = example_nms()
boxes, scores, classes = ex["boxes"], ex["scores"], ex["classes"]
for n in range(len(boxes)):
    print(f"box {n}: {boxes[n]}  score {scores[n]:.2f}  {ex['class_names'][classes[n]]}")
print("IoU matrix:\n", box_iou(boxes, boxes))

# %% [markdown]
# Person A was found three times (boxes 0, 1, 2, IoU 0.66–0.81 with each other). Person B (3) stands half
# behind A (IoU 0.28) and in front of the horse (4, IoU 0.35); the horse was found twice (4, 5), and box 6 is
# a weak, lonely detection.
#
# ## Greedy hard NMS
# Sort by score. Keep the best box, delete every remaining box whose IoU with it exceeds a threshold, and
# repeat with what is left. Here is the loop written out, class-agnostic, threshold 0.45:

# %%
def greedy_nms(boxes, scores, threshold, verbose=False):
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        best, rest = order[0], order[1:]
        keep.append(best)
        iou = box_iou(boxes[best][None], boxes[rest])[0] if rest else np.zeros(0)
        removed = [int(r) for r, v in zip(rest, iou) if v > threshold]
        if verbose:
            print(f"keep {best} ({scores[best]:.2f}); remove {removed}")
        order = [r for r, v in zip(rest, iou) if v <= threshold]
    return np.array(keep)


from yolox_np.postprocess import batched_nms, nms

mine = greedy_nms(boxes, scores, 0.45, verbose=True)
assert (mine == nms(boxes, scores, 0.45)).all()
print("nms at 0.45:", nms(boxes, scores, 0.45))

# %% [markdown]
# The threshold matters. At 0.3, the value of the official demo script (`tools/demo.py`, class-agnostic),
# the horse deletes person B: their boxes overlap by 0.35, although they are different objects of
# different classes. **Class-aware** NMS (`batched_nms`) runs the loop separately per class, so a horse never
# suppresses a person. Official COCO evaluation uses class-aware NMS at 0.65.

# %%
print("class-agnostic, 0.3:", nms(boxes, scores, 0.3))
print("class-aware,    0.3:", batched_nms(boxes, scores, classes, 0.3))
print("class-aware,   0.65:", batched_nms(boxes, scores, classes, 0.65))
assert 3 not in nms(boxes, scores, 0.3) and 3 in batched_nms(boxes, scores, classes, 0.3)

# %% [markdown]
# ## Soft-NMS
# Hard NMS makes a yes/no decision on one threshold: two real objects that overlap more than it lose one of
# their boxes for good. Soft-NMS (Bodla et al., ICCV 2017) keeps the greedy loop but, instead of deleting,
# multiplies each remaining score by a decay `f(IoU)` with the box just selected, re-sorts, and only drops
# boxes whose score falls below a small threshold:
#
# - **linear**: `f = 1 − IoU` if `IoU > N_t`, else 1;
# - **Gaussian**: `f = exp(−IoU² / σ)` for *every* remaining box (no threshold), σ = 0.5 by default;
# - **hard**: `f = 0` if `IoU > N_t`, else 1, which is plain NMS again.
#
# A duplicate (IoU 0.8) is hit hard, a neighbour (IoU 0.3) only a little, a separate box not at all.

# %%
from yolox_np.postprocess import soft_nms

for method in ("linear", "gaussian"):
    keep, final = soft_nms(boxes, scores, method=method, sigma=0.5, iou_threshold=0.3)
    print(f"{method:8}: order {keep}, scores {final}")
print("Gaussian decay at IoU 0.8 / 0.3 / 0:", np.exp(-np.array([0.8, 0.3, 0.0]) ** 2 / 0.5))
keep_g, final_g = soft_nms(boxes, scores, method="gaussian", sigma=0.5)
assert set(keep_g[final_g < 0.2]) == {1, 2, 5}  # the three duplicates end last, below 0.2
keep_hard, _ = soft_nms(boxes, scores, method="hard", iou_threshold=0.45)
assert (keep_hard == nms(boxes, scores, 0.45)).all()

# %% [markdown]
# All seven boxes survive, but in a telling order: the four real objects first (person B drops from 0.74 to
# about 0.5, the weak box 6 keeps its 0.40), the three duplicates last with scores below 0.2. For AP
# (lesson 11) that is often better than deleting: a real object hidden behind another is ranked low, not lost.

# %%
FIGURES["nms_compare"]()

# %% [markdown]
# ## The article's Soft-NMS
# The article prunes every prediction with objectness below 0.5, then runs its own version of Soft-NMS,
# with boxes as `(x, y, w, h)` (we read `(x, y)` as the centre, which is what its decoding produces). Per
# round: take the best box M; compute the mean μ of the *remaining* scores; for remaining boxes with
# `IoU(M, b) > IoU_thresh` only, `s ← s·exp(−IoU²/μ)`; drop boxes with `s < score_thresh`. Its pseudocode
# never adds M to the output list; `article_soft_nms` does, and stops cleanly when no box is left.

# %%
from yolox_np.boxes import xyxy_to_cxcywh
from yolox_np.postprocess import article_soft_nms

keep_a, final_a = article_soft_nms(xyxy_to_cxcywh(boxes), scores, iou_threshold=0.3, score_threshold=0.5)
print("article (IoU 0.3, score 0.5):", keep_a, final_a)

# %% [markdown]
# Where it departs from Bodla's Gaussian:
# 1. σ is the mean of the remaining scores, so it changes every round and depends on how the scores are
#    scaled. Halve every score (and the threshold): Bodla's result is simply halved, the article's is not.
# 2. Only boxes above the IoU threshold decay; Bodla's Gaussian decays every box.
# 3. Classes are ignored, and the score is objectness alone (official YOLOX uses objectness × class).

# %%
k_full, s_full = soft_nms(boxes, scores, "gaussian", sigma=0.5, score_threshold=0.2)
k_half, s_half = soft_nms(boxes, scores / 2, "gaussian", sigma=0.5, score_threshold=0.1)
print("Bodla Gaussian, halved scores / full scores:", s_half / s_full, "(same boxes:", (k_half == k_full).all(), ")")
k_ah, s_ah = article_soft_nms(xyxy_to_cxcywh(boxes), scores / 2, iou_threshold=0.3, score_threshold=0.25)
print("article, halved / full:", s_ah / final_a)

# %% [markdown]
# ## Article vs official YOLOX
# | | article | official |
# |---|---|---|
# | score | objectness, pruned below 0.5 | objectness × best class probability, pruned below 0.01 (evaluation) or 0.3 (demo) |
# | suppression | its Soft-NMS variant, class-agnostic | hard NMS; class-aware at 0.65 (evaluation), class-agnostic at 0.3 (demo) |
# | box format | `(x, y, w, h)` | converted to `(x1, y1, x2, y2)` first |
#
# `yolox_np.postprocess.postprocess` reproduces the official function; lesson 12 runs it on the real
# YOLOX-Nano output.
#
# ## Summary
# - Greedy NMS keeps the best box and deletes the ones overlapping it by more than a threshold; on the example
#   at 0.45 it keeps 0, 4, 3, 6.
# - Class-agnostic NMS can delete a different object of another class (the horse removes person B at 0.3);
#   class-aware NMS cannot.
# - Soft-NMS decays scores by `f(IoU)` instead: duplicates sink below 0.2 while overlapping real objects keep
#   most of their score. The article's variant ties its σ to the mean score, so it is not scale-invariant.
#
# ## Exercises
# 1. **`nms`** (graded): write the body of `yolox_np.postprocess.nms`.
# 2. **`batched_nms`** (graded): write class-aware NMS (hint: one `nms` per class, then sort what is kept).
# 3. **`soft_nms`** (graded): write `yolox_np.postprocess.soft_nms` with its three methods.
# 4. Which threshold of class-agnostic hard NMS keeps all four real objects on the example, and which
#    thresholds also keep a duplicate?
# 5. A trick for class-aware NMS in one call: shift every box by `class × (a large number)` before plain NMS.
#    Why does that work, and how large must the number be?

# %%
from yolox_np.grading import check

print(check("nms", nms))
print(check("batched_nms", batched_nms))
print(check("soft_nms", soft_nms))
