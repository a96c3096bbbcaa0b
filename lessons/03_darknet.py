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
# # 03 · Darknet-53 and the SPP block
#
# **Goals**
# - build Darknet-53 from its two pieces, the `BaseConv` (conv → batch norm → LeakyReLU) and the residual
#   block, and count its 52 convolutions;
# - follow the shapes through the five stages: each halves the map and doubles the channels, giving
#   256/512/1024 channels at strides 8/16/32;
# - see what the SPP block adds at the end of the last stage, and count the 63,724,767 parameters of the
#   whole YOLOX-Darknet53.
#
# The *backbone* turns an image into feature maps at several scales; the neck and the head (lesson 04) turn
# those into boxes. YOLOX-Darknet53 uses the backbone of YOLOv3, as the seed article says.

# %%
import numpy as np

from yolox_np.models import BaseConv, Darknet, ResLayer, SPPBottleneck, yolox_darknet53
from yolox_np.nn import Conv2d

rng = np.random.default_rng(0)

# %% [markdown]
# ## The pieces
# Every convolution of Darknet is a `BaseConv`: a convolution without bias (the batch norm that follows has
# its own shift), batch normalisation, and LeakyReLU with slope 0.1 for negative inputs. Padding `(k − 1)/2`
# keeps the size for stride 1, and a 3×3 stride-2 convolution maps `H` to `⌊(H − 1)/2⌋ + 1 = ⌈H/2⌉`.
#
# A residual block (`ResLayer`) squeezes the channels with a 1×1 convolution, restores them with a 3×3 one,
# and adds its input: `y = x + layer2(layer1(x))`. The addition lets a block start out close to the identity
# and gives gradients a direct path back, which is what keeps 52 layers trainable.

# %%
block = ResLayer(64, rng=rng)
x = rng.standard_normal((1, 64, 16, 16)).astype(np.float32)
print(block)
print("shape in", x.shape, "-> out", block(x).shape)
by_hand = (64 * 32 * 1 * 1 + 2 * 32) + (32 * 64 * 3 * 3 + 2 * 64)  # conv weights + BN scale and shift
print("parameters by hand:", by_hand, "| counted:", block.num_parameters())

# %%
down = BaseConv(64, 128, 3, 2, act="lrelu", rng=rng)
for size in (256, 255, 13):
    print(f"3x3 stride-2 conv: {size} -> {down(np.zeros((1, 64, size, size), np.float32)).shape[2]}")

# %% [markdown]
# ## Five stages
# The stem is a 3×3 convolution (3 → 32 channels), then five stages, each a 3×3 stride-2 convolution that
# doubles the channels followed by 1, 2, 8, 8 and 4 residual blocks. That is
# `1 + (1 + 2·1) + (1 + 2·2) + (1 + 2·8) + (1 + 2·8) + (1 + 2·4) = 52` convolutions; the fully connected
# classifier of the YOLOv3 paper makes 53. YOLOX has no classifier: it takes the outputs of the last three
# stages, `dark3`, `dark4`, `dark5`.
#
# We build the full-width network and send a small 64×64 image through it, which is quick; the strides
# follow from the map sizes.

# %%
plain = Darknet(53, spp=False, out_features=("stem", "dark2", "dark3", "dark4", "dark5"), rng=rng).eval()
print("convolutions:", sum(isinstance(m, Conv2d) for m in plain.modules()), "| parameters:", f"{plain.num_parameters():,}")
feats = plain(np.zeros((1, 3, 64, 64), np.float32))
for name, f in feats.items():
    print(f"{name:6} {f.shape[1]:5} channels, {f.shape[2]:2}x{f.shape[3]:<2} -> stride {64 // f.shape[2]:2}; "
          f"on a 256x256 image: {256 * f.shape[2] // 64}x{256 * f.shape[3] // 64}")
assert [feats[k].shape[1] for k in ("dark3", "dark4", "dark5")] == [256, 512, 1024]

# %%
from yolox_np.figures import FIGURES

FIGURES["darknet_shapes"]()

# %% [markdown]
# ## The SPP block
# YOLOX-Darknet53 does not stop there. It appends the "SPP block" of YOLOv3-SPP to `dark5`: a 1×1 and a 3×3
# convolution, an `SPPBottleneck`, another 3×3 and 1×1. The bottleneck halves the channels (1024 → 512), max-pools
# that map with windows 5, 9 and 13 (stride 1, padding `k//2`, so the size is kept), concatenates the map and
# its three pooled copies (4 × 512 = 2048 channels) and mixes them with a 1×1 convolution. A cell of the
# stride-32 map now also sees the strongest responses up to 6 cells away, which is 192 pixels of the
# image, at the cost of a few cheap convolutions.

# %%
spp = SPPBottleneck(64, 32, activation="lrelu", rng=rng)
y = spp(rng.standard_normal((1, 64, 13, 13)).astype(np.float32))
print("conv1:", spp.conv1.conv.weight.shape, "| pools:", [p.kernel_size for p in spp.m],
      "| conv2:", spp.conv2.conv.weight.shape, "| out:", y.shape)

# %%
FIGURES["spp_pooling"]()

# %% [markdown]
# With the SPP block the backbone has 58 convolutions and `dark5` leaves with 512 channels instead of 1024:

# %%
with_spp = Darknet(53, rng=rng).eval()
feats_spp = with_spp(np.zeros((1, 3, 64, 64), np.float32))
print("convolutions:", sum(isinstance(m, Conv2d) for m in with_spp.modules()))
print({k: f.shape[1:] for k, f in feats_spp.items()})
assert feats_spp["dark5"].shape[1] == 512

# %% [markdown]
# ## The whole model
# YOLOX-Darknet53 = this backbone + the YOLOFPN neck + the decoupled head (lesson 04). Its parameter count,
# 63,724,767 for the 80 COCO classes, is the 63.7 M of the official README.

# %%
full = yolox_darknet53(num_classes=80)
backbone = full.backbone.backbone.num_parameters()
neck = full.backbone.num_parameters() - backbone
head = full.head.num_parameters()
print(f"backbone {backbone:,} + neck {neck:,} + head {head:,} = {full.num_parameters():,}")
assert full.num_parameters() == 63_724_767
del full, plain, with_spp

# %% [markdown]
# For the lessons we shrink the same architecture: `width` scales every channel count and `blocks` sets the
# residual blocks per stage. A width of 1/8 with one block per stage has 4 channels in the stem and runs in
# milliseconds, with exactly the same structure.

# %%
small = yolox_darknet53(num_classes=3, width=1 / 8, blocks=(1, 1, 1, 1, 1), neck="none")
print(f"parameters: {small.num_parameters():,}")
from yolox_np.drawings import draw_bear

bear = np.asarray(draw_bear(256))[None, :, :, ::-1].transpose(0, 3, 1, 2).astype(np.float32)  # (1, 3, H, W) BGR
small_feats = small.backbone.backbone.eval()(bear)
print({k: f.shape for k, f in small_feats.items()})

# %% [markdown]
# ## Article vs official YOLOX
# - **What the heads read.** The article feeds the three plain stage outputs, 256/512/1024 channels, to the
#   heads. In YOLOX-Darknet53 `dark5` passes through the SPP block (512 channels) and all three go through
#   the YOLOFPN neck, which hands 128/256/512 channels to the head (lesson 04). `neck="none"` builds the
#   article's picture: plain Darknet-53, no SPP, no neck.
# - **The article's stride order** "32, 16, 8" lists the levels coarse to fine next to channels listed fine to
#   coarse; the 256-channel map is the stride-8 one. YOLOX orders everything finest first.
# - **Only one YOLOX is built on Darknet-53.** YOLOX-Nano … X use CSPDarknet (a Focus stem, cross-stage
#   partial blocks, SiLU) with a PAFPN neck.

# %%
from yolox_np.models import yolox_nano, yolox_s

article_view = yolox_darknet53(num_classes=80, neck="none")
print(f"article's picture (plain Darknet-53 + heads): {article_view.num_parameters():,} parameters")
print("its head reads", article_view.head.in_channels, "channels")
del article_view
print(f"YOLOX-Nano {yolox_nano().num_parameters():,}, YOLOX-S {yolox_s().num_parameters():,} parameters (CSPDarknet)")

# %% [markdown]
# ## Summary
# - Darknet-53 = stem + 5 stages (stride-2 3×3 conv + 1, 2, 8, 8, 4 residual blocks) = 52 convolutions,
#   each conv → BN → LeakyReLU(0.1).
# - Outputs: 256, 512, 1024 channels at strides 8, 16, 32 (32×32, 16×16, 8×8 on a 256×256 image).
# - The SPP block (pools 5/9/13, stride 1) widens what a stride-32 cell sees and brings `dark5` to 512 channels.
# - YOLOX-Darknet53: 52,651,744 (backbone) + 3,692,544 (neck) + 7,380,479 (head) = 63,724,767 parameters.
#
# ## Exercises
# 1. Count by hand the parameters of `ResLayer(256)` and of the stride-2 convolution 256 → 512 (with its batch
#    norm), then check with `num_parameters()`.
# 2. How many multiply-adds does the first 3×3 convolution of `dark3` (128 → 256, stride 2) cost on a
#    640×640 image? Which stage costs the most?
# 3. Max-pooling with a 13×13 window and stride 1: why is `padding = 6` right, and why must padded cells be
#    −∞ rather than 0?
# 4. Build `yolox_darknet53(num_classes=80, depth=21)`. How many parameters does the shallower backbone save?
