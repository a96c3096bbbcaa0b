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
# # 04 · The YOLOFPN neck and the decoupled head
#
# **Goals**
# - run the YOLOFPN neck step by step: reduce, upsample, concatenate, mix, so that the fine maps also get
#   what the coarse map has seen;
# - take the decoupled head apart into its 9 outputs (3 levels × class, box, objectness) and check their
#   shapes;
# - reassemble them into the model's `(B, A, 5 + C)` output and count the predictions.
#
# We use YOLOX-Darknet53 at 1/8 of its width with one residual block per stage: identical structure, every
# channel count divided by 8, fast enough to run on a 256×256 picture in a moment.

# %%
import numpy as np

from yolox_np.drawings import draw_bear
from yolox_np.models import yolox_darknet53

model = yolox_darknet53(num_classes=80, width=1 / 8, blocks=(1, 1, 1, 1, 1), seed=0).eval()
image = np.asarray(draw_bear(256))[None, :, :, ::-1].transpose(0, 3, 1, 2).astype(np.float32)  # (1, 3, 256, 256) BGR
full_width = yolox_darknet53(num_classes=80, blocks=(1, 1, 1, 1, 1))  # for the real channel counts only
print("neck outputs, full width:", full_width.backbone.out_channels, "| this model:", model.backbone.out_channels)
del full_width

# %% [markdown]
# ## The neck: YOLOFPN
# The backbone's stride-8 map is sharp but has seen little of the image; the stride-32 map has seen a lot but
# is coarse. A feature pyramid network passes information *down* from coarse to fine. YOLOFPN (from YOLOv3)
# does it twice:
#
# 1. `out1_cbl`: a 1×1 conv halves `dark5` (512 → 256 at full width); nearest-neighbour upsampling doubles
#    its size to stride 16; it is concatenated, upsampled map first, with `dark4` (256 + 512 = 768);
#    `out1` (five convs: 1×1, 3×3, 1×1, 3×3, 1×1) mixes that into 256 channels.
# 2. `out2_cbl` halves that to 128, upsample to stride 8, concatenate with `dark3` (128 + 256 = 384), `out2`
#    mixes it into 128 channels.
#
# The neck returns (stride 8, stride 16, stride 32) = (128, 256, 512) channels; the stride-32 one is
# `dark5` itself. Here are the same steps, one line each, checked against the neck's own forward:

# %%
from yolox_np.nn import Upsample, concat

neck = model.backbone
feats = neck.backbone(image)  # Darknet + SPP
dark3, dark4, dark5 = feats["dark3"], feats["dark4"], feats["dark5"]
up1, _ = concat([Upsample(2)(neck.out1_cbl(dark5)), dark4], axis=1)
p4 = neck.out1(up1)
up2, _ = concat([Upsample(2)(neck.out2_cbl(p4)), dark3], axis=1)
p3 = neck.out2(up2)
for name, t in (("dark5", dark5), ("upsampled + dark4", up1), ("P4", p4), ("upsampled + dark3", up2), ("P3", p3)):
    print(f"{name:18} {t.shape}")
outs = neck(image)
assert all(np.allclose(a, b) for a, b in zip(outs, (p3, p4, dark5)))

# %% [markdown]
# Nearest-neighbour upsampling just repeats each value in a 2×2 block, so it has no parameters and its
# backward pass sums each 2×2 block of the gradient:

# %%
small = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
print(Upsample(2)(small)[0, 0])

# %% [markdown]
# ## The head: decoupled branches
# YOLOv3 predicts everything about a box from one convolution (a *coupled* head). YOLOX gives classification
# and localisation their own branches, because the two tasks want different features; the YOLOX paper
# reports faster convergence and better AP for it. Per level:
#
# - `stems[i]`: 1×1 conv to `h = 256·width` channels;
# - `cls_convs[i]`: two 3×3 convs, then `cls_preds[i]` (1×1) → C class logits;
# - `reg_convs[i]`: two 3×3 convs, then `reg_preds[i]` (1×1) → 4 box values and `obj_preds[i]` (1×1) → 1
#   objectness logit. Objectness sits on the box branch: "is there an object here" is a question about
#   location.
#
# So 3 levels × 3 outputs = 9 tensors, as the seed article counts:

# %%
head = model.head
nine = []
for k, (f, stride) in enumerate(zip(outs, head.strides)):
    x = head.stems[k](f)
    reg_feat = head.reg_convs[k](x)
    cls_out = head.cls_preds[k](head.cls_convs[k](x))
    reg_out, obj_out = head.reg_preds[k](reg_feat), head.obj_preds[k](reg_feat)
    nine.append((reg_out, obj_out, cls_out))
    print(f"stride {stride:2}: cls {cls_out.shape}, reg {reg_out.shape}, obj {obj_out.shape}")

# %%
from yolox_np.figures import FIGURES

FIGURES["head_outputs"]()

# %% [markdown]
# ## One output array
# The model flattens each level row by row (x fastest), puts the channels last in the order
# `[reg (4), obj (1), cls (C)]`, and stacks the levels finest first. Each row of the result is one
# prediction: `A = 32² + 16² + 8² = 1344` rows for a 256×256 image, 8400 for 640×640.

# %%
rebuilt = np.concatenate([np.concatenate(level, axis=1).reshape(1, 85, -1).transpose(0, 2, 1) for level in nine], axis=1)
raw, grids, strides = model.forward_raw(image)
print("raw:", raw.shape, "| rebuilt from the 9 tensors:", rebuilt.shape, "| equal:", np.allclose(raw, rebuilt))
from yolox_np.boxes import make_grids

counts = {size: len(make_grids(size, size)[1]) for size in (256, 416, 640)}
for size, n in counts.items():
    print(f"{size}x{size}: {n} predictions")
assert counts[256] == 1344 and counts[640] == 8400

# %% [markdown]
# In evaluation mode the model also applies the sigmoid to objectness and classes and decodes the boxes
# (lesson 05), so each row reads `(cx, cy, w, h, objectness, p_1 … p_C)` in pixels and probabilities.
#
# ## A starting point of 1 %
# Almost every anchor is background. If objectness started at 0.5 everywhere, the first updates would be
# spent pushing thousands of anchors towards 0. YOLOX sets the bias of every `cls_preds` and `obj_preds`
# convolution to `−ln((1 − p)/p)` with `p = 0.01`, so that an untrained model already says "probably
# nothing" everywhere.

# %%
print("obj bias:", head.obj_preds[0].bias.data, "= -ln(99) =", -np.log(99))
out = model(image)  # eval mode: decoded boxes, probabilities
print("eval output:", out.shape, "| mean objectness:", out[0, :, 4].mean().round(4), "| first row:", out[0, 0, :6].round(3))

# %% [markdown]
# ## Article vs official YOLOX
# - **Inputs to the head.** The article connects the heads straight to Darknet's 256/512/1024-channel
#   outputs. YOLOX-Darknet53 puts the SPP block and the YOLOFPN neck in between, so its head reads
#   128/256/512 channels; the CSPDarknet models (Nano … X) use a PAFPN neck, which also passes information
#   back up from fine to coarse. `yolox_darknet53(neck="none")` builds the article's version.
# - **The third output** is called "IoU (Obj)" in the article. In the official code it is an objectness
#   logit computed from the box branch, trained against a 1/0 target (lesson 07); the YOLOX paper calls that
#   branch the IoU branch.
# - **The output layout** is one `(B, A, 5 + C)` array in the official code, not nine tensors; the nine exist
#   inside the head.

# %%
article = yolox_darknet53(num_classes=80, width=1 / 8, blocks=(1, 1, 1, 1, 1), neck="none", seed=0).eval()
print("article's head reads:", article.head.in_channels, "channels = (256, 512, 1024) / 8 | output:", article(image).shape)

# %% [markdown]
# ## Summary
# - YOLOFPN: 1×1 reduce, ×2 nearest upsample, concatenate with the finer backbone map, five convs; twice.
#   It outputs 128/256/512 channels (full width) at strides 8/16/32.
# - The decoupled head has, per level, a stem and separate class and box branches; objectness hangs off the
#   box branch: 9 output tensors, C×H×W, 4×H×W and 1×H×W per level.
# - The model returns them as one `(B, A, 5 + C)` array, levels finest first, rows row-major: 1344 rows at
#   256×256, 8400 at 640×640. Class and objectness biases start at `−ln 99`.
#
# ## Exercises
# 1. How many parameters does one level of the full-width head have? Which part dominates?
# 2. Why is the upsampled map concatenated rather than added to the backbone map? What would adding require?
# 3. A coupled head would predict all `5 + C` values with one 1×1 conv on the stem output. How many parameters
#    would that save at full width, per level?
# 4. Set every objectness bias to 0 and run the model again: what is the mean objectness, and what would the
#    objectness loss of lesson 07 be for an image with 4 positives out of 1344 anchors?
