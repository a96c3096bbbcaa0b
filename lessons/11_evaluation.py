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
# # 11 · Evaluation: precision, recall and COCO's AP
#
# **Goals**
# - decide which detections are true positives by matching them to ground truth at an IoU threshold;
# - build the precision–recall curve by walking down the score-sorted detections;
# - compute COCO's 101-point interpolated average precision by hand, then AP@[.5:.95], and check both against
#   `yolox_np.eval.coco_eval` and pycocotools.
#
# "47.7 AP" in the YOLOX README is this number, computed on the 5000 images of COCO val2017. We use a small
# example: one class, three images, 8 ground-truth boxes and 12 detections.

# %%
import numpy as np

from yolox_np.boxes import box_iou, xywh_to_xyxy
from yolox_np.figures import FIGURES, example_pr

np.set_printoptions(precision=3, suppress=True, linewidth=120)
ex = example_pr()
gt, dets = ex["gt"], ex["detections"]
print(len(gt["images"]), "images,", len(gt["annotations"]), "ground-truth boxes,", len(dets), "detections")
print("a detection:", dets[0])

# %% [markdown]
# ## Matching
# Go through the detections from the highest score down. Each one claims the ground truth of its image with
# which it has the highest IoU, provided that IoU is at least the threshold and nobody claimed it before.
# Then it is a **true positive** (TP); otherwise, including a second box on an object already found, a
# **false positive** (FP). COCO boxes are `[x, y, w, h]` with `(x, y)` the top-left corner.

# %%
order = sorted(range(len(dets)), key=lambda i: -dets[i]["score"])
claimed, is_tp = set(), []
for i in order:
    d = dets[i]
    anns = [a for a in gt["annotations"] if a["image_id"] == d["image_id"] and a["id"] not in claimed]
    ious = box_iou(xywh_to_xyxy(np.array([d["bbox"]])), xywh_to_xyxy(np.array([a["bbox"] for a in anns])))[0]
    j = int(np.argmax(ious))
    hit = ious[j] >= 0.5
    if hit:
        claimed.add(anns[j]["id"])
    is_tp.append(hit)
    print(f"score {d['score']:.2f} image {d['image_id']}: best IoU {ious[j]:.3f} -> {'TP' if hit else 'FP'}")
is_tp = np.array(is_tp)

# %% [markdown]
# ## Precision and recall
# After the first `n` detections: **precision** = TP / n (how many of what we reported are right) and
# **recall** = TP / number of ground truths (how many objects we found). Lowering the score threshold walks
# along this list: recall can only grow, precision goes up and down.

# %%
tp = np.cumsum(is_tp)
precision = tp / np.arange(1, len(tp) + 1)
recall = tp / len(gt["annotations"])
print("recall:   ", recall)
print("precision:", precision)

# %% [markdown]
# ## Average precision, the COCO way
# AP summarises the curve in one number. COCO first replaces each precision by the best precision at that
# recall *or beyond* (the envelope: nobody would choose a threshold with both lower precision and lower
# recall), then reads the envelope at the 101 recalls 0, 0.01, …, 1 — at each, the first point whose recall
# reaches it, 0 past the last — and averages the 101 values.

# %%
envelope = np.maximum.accumulate(precision[::-1])[::-1]
thresholds = np.linspace(0, 1, 101)
idx = np.searchsorted(recall, thresholds, side="left")
sampled = np.where(idx < len(recall), envelope[np.minimum(idx, len(recall) - 1)], 0.0)
ap50_by_hand = sampled.mean()

from yolox_np.eval import average_precision, coco_eval

print("envelope:", envelope)
print(f"AP at IoU 0.5: by hand {ap50_by_hand:.6f} | average_precision {average_precision(recall, precision):.6f}")
assert np.isclose(ap50_by_hand, average_precision(recall, precision)) and round(ap50_by_hand, 2) == 0.66

# %%
FIGURES["pr_curve"]()

# %% [markdown]
# The recall never reaches 1 (two objects were never found), so the samples past recall 0.75 are 0 and cap
# the AP. The false positives at scores 0.80 and 0.74 pull precision down in the middle.
#
# ## AP@[.5:.95] and the rest of COCO's table
# An IoU of 0.5 is a forgiving definition of "found". COCO's headline AP averages the AP over the ten IoU
# thresholds 0.50, 0.55, …, 0.95, which rewards boxes that are *tight*. `coco_eval` also splits by object
# size (small < 32², medium < 96², large) and reports recall with 1, 10 or 100 detections per image. A −1
# means "nothing to measure": our example has no small or large objects.

# %%
result = coco_eval(gt, dets)
assert np.isclose(result["AP50"], ap50_by_hand)
from yolox_np.figures import match_detections  # the matching loop above, as a function

per_iou = []
for t in result["iou_thresholds"]:
    _, hits, n_gt = match_detections(gt, dets, t)
    c = np.cumsum(hits)
    per_iou.append(average_precision(c / n_gt, c / np.arange(1, len(c) + 1)))
print("AP per IoU threshold:", ", ".join(f"{t:.2f}: {a:.3f}" for t, a in zip(result["iou_thresholds"], per_iou)))
print(f"their mean {np.mean(per_iou):.4f} = AP {result['AP']:.4f}")
from yolox_np.eval import format_summary

print(format_summary(result))

# %% [markdown]
# pycocotools, the reference implementation everybody reports with, gives the same twelve numbers:

# %%
import contextlib
import io

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

with contextlib.redirect_stdout(io.StringIO()):
    coco_gt = COCO()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    ev = COCOeval(coco_gt, coco_gt.loadRes(dets), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
print("pycocotools:", np.round(ev.stats, 4))
print("yolox_np:   ", np.round([result[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100",
                                                      "ARs", "ARm", "ARl")], 4))

# %%
from yolox_np.viz import plot_pr_curve

plot_pr_curve(result)

# %% [markdown]
# ## Article vs official YOLOX
# The seed article does not describe evaluation. One of its choices still matters here: at inference it drops
# every prediction with objectness below 0.5. Official YOLOX evaluates with a score threshold of 0.01,
# because low-scoring detections can only *add* to the curve: they sit at its high-recall end, and AP never
# charges for them. Cutting at 0.5 on our example:

# %%
kept = [d for d in dets if d["score"] >= 0.5]
cut = coco_eval(gt, kept)
print(f"threshold 0.01: AP50 {result['AP50']:.4f}, AP {result['AP']:.4f}, AR100 {result['AR100']:.3f}")
print(f"threshold 0.5:  AP50 {cut['AP50']:.4f}, AP {cut['AP']:.4f}, AR100 {cut['AR100']:.3f}")

# %% [markdown]
# ## Summary
# - A detection is a TP if it claims a not-yet-claimed ground truth of its image with IoU ≥ threshold,
#   taking detections by descending score.
# - Precision = TP/n and recall = TP/#GT along the sorted list; COCO's AP is the mean of the precision
#   envelope read at 101 recall points: 0.66 at IoU 0.5 on our example.
# - AP@[.5:.95] averages ten IoU thresholds; `coco_eval` matches pycocotools number for number.
# - A high score threshold cuts recall and so AP; evaluate with a low one (0.01).
#
# ## Exercises
# 1. **`average_precision`** (graded): write the body of `yolox_np.eval.average_precision`.
# 2. Add a detection with score 0.99 that hits nothing. How much AP50 does it cost? And with score 0.01?
# 3. Why must a second detection of an already found object count as a false positive? What would happen to
#    AP if it counted as a true positive?
# 4. The older PASCAL VOC AP used 11 recall points. Compute it for our example and compare.

# %%
from yolox_np.grading import check

print(check("average_precision", average_precision))
