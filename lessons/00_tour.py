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
# # 00 · A tour of YOLOX, and how these lessons work
#
# **Goals**
# - know what YOLOX is and what happens between a photo and its detections;
# - find your way around the lessons and the `yolox_np` package;
# - run a small model once, see the official weights detect objects in a photo, and try the exercise grader.
#
# **YOLOX** (Ge et al., Megvii, 2021) is a one-stage object detector: one network pass turns an image into
# boxes, class scores and an "is there an object" score for every cell of three grids. It took YOLOv3 and
# changed four things: no anchor boxes (each grid cell predicts one box directly), a *decoupled* head with
# separate class and box branches, a label assignment that adapts to the network's own predictions
# (SimOTA), and strong data augmentation.
#
# These lessons rebuild it in NumPy. Every layer has a hand-written backward pass, the slow loops run through
# Numba, and the finished detector loads the official weights and reproduces the official outputs (lesson 12).
# Along the way we follow a popular explanation of YOLOX, "YOLOX Explanation — How Does YOLOX Work?" by
# Gabriel Mongaras (the *seed article*): its worked numbers are recomputed by our code, and each lesson notes
# where the article and the official code part ways.

# %%
from pathlib import Path

import numpy as np

import yolox_np
from yolox_np.figures import FIGURES

FIGURES["pipeline"]()

# %% [markdown]
# ## The lessons
# Each lesson is a Python file in `lessons/` that Jupyter opens as a notebook (through jupytext; `make lessons`
# also writes `.ipynb` copies). Run them top to bottom; each takes well under two minutes.

# %%
repo = Path(yolox_np.__file__).resolve().parents[1]
for path in sorted((repo / "lessons").glob("[0-9][0-9]_*.py")):
    title = next(line for line in path.read_text().splitlines() if line.startswith("# ") and "·" in line)
    print(f"{path.name:24} {title[2:]}")

# %% [markdown]
# ## The package
# `yolox_np` is organised so that each module holds one idea, and dependencies point one way: `nn` knows
# nothing about detection, `models` nothing about losses, `boxes` is plain array maths. The first line of
# each module's docstring:

# %%
import importlib
import pkgutil

for info in pkgutil.iter_modules(yolox_np.__path__):
    module = importlib.import_module(f"yolox_np.{info.name}")
    first_paragraph = " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())
    print(f"{info.name + ('/' if info.ispkg else ''):14} {first_paragraph}")

# %% [markdown]
# ## One forward pass
# A YOLOX-Darknet53 at 1/8 of the real width, untrained, on a bear drawn by code (lesson 05 puts a grid on
# it). The raw output has one row per grid cell of the three levels: `32² + 16² + 8² = 1344` rows of
# `4 + 1 + 80` numbers. In evaluation mode the rows are decoded boxes and probabilities. Untrained, the model
# says "1 % chance of an object" everywhere (lesson 04 explains why), so nothing passes a 0.3 threshold.

# %%
from yolox_np.drawings import draw_bear
from yolox_np.models import yolox_darknet53
from yolox_np.postprocess import postprocess

model = yolox_darknet53(num_classes=80, width=1 / 8, blocks=(1, 1, 1, 1, 1), seed=0)
bear = np.asarray(draw_bear(256))
images = bear[None, :, :, ::-1].transpose(0, 3, 1, 2).astype(np.float32)  # (1, 3, 256, 256), BGR like OpenCV
raw, grids, strides = model.forward_raw(images)
print("input", images.shape, "-> raw", raw.shape, "| cells per stride:", {int(s): int((strides == s).sum()) for s in (8, 16, 32)})
decoded = model.eval()(images)
print("first row, decoded (cx, cy, w, h, obj, p_0, p_1):", decoded[0, 0, :7].round(3))
print("detections at 0.3:", len(postprocess(decoded, 80, conf_thre=0.3, nms_thre=0.45)[0]))

# %% [markdown]
# ## The real thing
# With the official YOLOX-Nano weights (in `../shared/assets` next to the repository) the same pipeline finds
# real objects. Lesson 12 checks every step of this against the official export.

# %%
assets = repo.parent / "shared" / "assets"
if assets.is_dir():
    from yolox_np.coco_classes import COCO_CLASSES
    from yolox_np.data import load_image
    from yolox_np.detector import Detector
    from yolox_np.models import yolox_nano
    from yolox_np.viz import draw_detections
    from yolox_np.weights import load_weights

    nano = load_weights(yolox_nano(), assets / "yolox_nano" / "yolox_nano_from_onnx.pth")
    detector = Detector(nano, img_size=416, conf=0.3, nms=0.45, class_names=COCO_CLASSES)
    photo = load_image(assets / "images" / "astronaut.jpg")
    found = detector(photo)
    for box, score, cls in zip(found.boxes, found.scores, found.classes):
        print(f"{COCO_CLASSES[cls]} {score:.3f} at {np.round(box, 1)}")
    display(draw_detections(photo, found.as_array(), COCO_CLASSES))  # noqa: F821 (a notebook built-in)
else:
    print(f"No reference assets at {assets}: skipping the detection on a real photo.")

# %% [markdown]
# ## Exercises and the grader
# Many lessons end with exercises in which you write the body of a package function. `make student` writes a
# copy of the repository in which those bodies are replaced by `raise NotImplementedError(...)` with a hint;
# you fill them in, and `check(task, your_function)` grades the result against a reference on hand-made
# cases, random cases and properties, reporting the smallest input on which your answer goes wrong.
# Here is what a wrong IoU looks like to the grader:

# %%
from yolox_np.grading import check, tasks


def wrong_iou(a, b):  # divides by the sum of the areas instead of the union
    a, b = np.asarray(a, float), np.asarray(b, float)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    total = area(a)[:, None] + area(b)[None, :]
    return np.where(total > 0, w * h / np.where(total > 0, total, 1), 0)


print(check("box_iou", wrong_iou))
print(f"\n{len(tasks())} graded exercises:", ", ".join(f"{t.id} ({t.lesson[:2]})" for t in tasks().values()))

# %% [markdown]
# ## Article vs official YOLOX
# The seed article explains the ideas well, and simplifies in places. The differences, and where each is
# shown:
#
# | topic | seed article | official YOLOX | lesson |
# |---|---|---|---|
# | what feeds the head | raw Darknet-53 outputs, 256/512/1024 channels | Darknet-53 + SPP + YOLOFPN neck, 128/256/512 | 03, 04 |
# | backbone | Darknet-53 for YOLOX | only YOLOX-Darknet53; Nano … X use CSPDarknet | 03 |
# | box decoding | cell centre + offsets in pixels | cell corner + offsets in strides | 05 |
# | box loss | GIoU | 1 − IoU² | 06, 07 |
# | objectness / class targets | IoU-valued / one-hot | 1-or-0 / one-hot × IoU | 07 |
# | label assignment | "positives", details deferred | SimOTA | 08 |
# | inference | objectness ≥ 0.5, own Soft-NMS | obj × class score, hard NMS | 09, 12 |
#
# The package follows the official code by default; the article's choices are options
# (`convention="article"`, `variant="article"`, `neck="none"`, `article_soft_nms`), never a fork.
#
# ## Summary
# - YOLOX = backbone → neck → decoupled head → decode → score filter and NMS, trained with SimOTA and the
#   three-term loss.
# - The lessons build each piece with `yolox_np` and recompute the seed article's numbers; `check` grades
#   the exercises.
# - The finished NumPy model runs the official weights (YOLOX-Nano finds the astronaut above).
#
# ## Exercises
# 1. Open `yolox_np/boxes.py` and find `decode`. Which lines will you write yourself in lesson 05?
# 2. How many rows does the raw output have for a 320×320 image? Check with `model.forward_raw`.
# 3. Fix `wrong_iou` and run `check("box_iou", ...)` until it passes.
