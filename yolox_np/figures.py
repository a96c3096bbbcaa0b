"""Every figure of the lessons and the README, each made by one function (`make figures` runs them all).

A figure function takes no arguments and returns a matplotlib Figure; `save_figure(name, folder)` writes
`<folder>/<name>.png`. Lessons call the same functions, so the picture in a notebook is the checked-in one.
Figures are built on their own Agg canvas, without pyplot's global state, so they work the same in a script,
a test and a notebook (where importing this module teaches IPython to show a returned Figure as a PNG).
The small worked examples that lessons and figures share (`example_*`) live here too.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

FIGURES: dict[str, Callable] = {}
REPO_FIGURES = Path(__file__).resolve().parents[1] / "figures"


def figure(name: str):
    def deco(fn):
        FIGURES[name] = fn
        return fn

    return deco


def subplots(nrows=1, ncols=1, figsize=(6.4, 4.8), **kw):
    """Like pyplot's `subplots`, but the Figure gets its own Agg canvas and pyplot never sees it."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kw)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The PNG bytes of a figure (what `save_figure` writes and a notebook shows)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _show_figures_in_notebooks() -> None:
    """Inside IPython, display a returned Figure as a PNG, whatever the matplotlib backend."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "display_formatter"):
        shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)


_show_figures_in_notebooks()


def save_figure(name: str, folder: str | Path = REPO_FIGURES, dpi: int = 100) -> Path:
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; figures are: {', '.join(sorted(FIGURES))}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    path.write_bytes(figure_png(FIGURES[name](), dpi))
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
    fig, ax = subplots(figsize=(5, 5))
    ax.imshow(img, extent=(0, 256, 256, 0))
    for v in range(0, 257, stride):
        ax.axhline(v, color="white", lw=0.6, alpha=0.7)
        ax.axvline(v, color="white", lw=0.6, alpha=0.7)
    ax.scatter(centres[:, 0], centres[:, 1], s=8, c="white")
    ax.scatter([80], [48], s=60, c="red", zorder=3, label="cell (2, 1): point (80, 48)")
    cx, cy, w, h = box[:4]
    ax.add_patch(Rectangle((cx - w / 2, cy - h / 2), w, h, fill=False, ec="yellow", lw=2,
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
    fig, axes = subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 3.2]})
    axes[0].imshow(x[0], cmap="Blues", vmin=0, vmax=17)
    for (i, j), v in np.ndenumerate(x[0]):
        axes[0].text(j, i, int(v), ha="center", va="center")
    axes[0].add_patch(Rectangle((-1.5, -1.5), 3, 3, fill=False, ec="red", lw=2, clip_on=False))
    axes[0].set_xlim(-1.6, 3.5)
    axes[0].set_ylim(3.5, -1.6)
    axes[0].set_title("4x4 input; the window of output 0", fontsize=9)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    axes[1].imshow(col, cmap="Blues", vmin=0, vmax=17, aspect="auto")
    for (i, j), v in np.ndenumerate(col):
        axes[1].text(j, i, int(v), ha="center", va="center", fontsize=7)
    axes[1].add_patch(Rectangle((-0.5, -0.5), 1, 9, fill=False, ec="red", lw=2))
    axes[1].set_title("im2col: 9 kernel positions x 16 output positions (0 = padding)", fontsize=9)
    axes[1].set_xlabel("output position")
    axes[1].set_ylabel("kernel position")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- small worked examples
def example_simota():
    """The SimOTA worked example of lessons 07 and 08: one level of stride 8 on a 40x16 (W x H) image.

    Ten anchors (a 5x2 grid, anchor n = 5 j + i), two classes, two ground truths. Returns a dict with
    `grids` (10, 2), `strides` (10,), `pred_boxes` (10, 4) decoded (cx, cy, w, h), `obj_logits` (10,),
    `cls_logits` (10, 2), `gt_boxes` (2, 4) (cx, cy, w, h), `gt_classes` (2,), `image_size` (H, W) and `raw`
    (1, 10, 7): the head output [reg, obj, cls] whose official decoding gives `pred_boxes`.
    """
    from .boxes import make_grid

    grids = make_grid(16, 40, 8)
    strides = np.full(len(grids), 8, dtype=np.int64)
    pred_boxes = np.array([[8, 7, 12, 10], [13, 8, 16, 12], [19, 8, 14, 13], [26, 8, 10, 12], [36, 6, 8, 8],
                           [6, 10, 10, 10], [14, 9, 15, 12], [21, 9, 12, 14], [27, 10, 8, 10], [36, 12, 8, 8]],
                          dtype=np.float64)
    obj_logits = np.array([-1.0, 1.0, 1.5, 0.0, -3.0, -2.0, 0.5, 0.8, -0.5, -3.0])
    cls_logits = np.array([[0.0, -2.0], [2.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [-3.0, -3.0],
                           [-1.0, -2.0], [1.0, -1.0], [-0.5, 1.5], [-1.0, 0.5], [-3.0, -3.0]])
    s = strides[:, None].astype(np.float64)
    raw = np.concatenate([pred_boxes[:, :2] / s - grids, np.log(pred_boxes[:, 2:] / s), obj_logits[:, None],
                          cls_logits], axis=1)[None]
    return {
        "grids": grids, "strides": strides, "pred_boxes": pred_boxes, "obj_logits": obj_logits,
        "cls_logits": cls_logits, "gt_boxes": np.array([[14.0, 8, 16, 12], [22.0, 8, 12, 14]]),
        "gt_classes": np.array([0, 1]), "image_size": (16, 40), "raw": raw,
    }


def example_nms():
    """Detections for lesson 09: a person found three times, a second person and a horse overlapping them, a
    lone box. Returns `boxes` (7, 4) xyxy, `scores` (7,), `classes` (7,) and `class_names`."""
    boxes = np.array([
        [40, 20, 140, 160], [46, 28, 146, 166], [34, 26, 130, 150],  # person A, three times
        [96, 30, 186, 168],  # person B, half behind A
        [80, 80, 230, 200], [88, 86, 236, 208],  # the horse, twice
        [200, 16, 250, 66],  # a lone, weak box
    ], dtype=np.float64)
    scores = np.array([0.92, 0.81, 0.60, 0.74, 0.85, 0.66, 0.40])
    classes = np.array([0, 0, 0, 0, 1, 1, 0])
    return {"boxes": boxes, "scores": scores, "classes": classes, "class_names": ("person", "horse")}


def example_pr():
    """A small detection result for lesson 11: one class, three images, 8 ground truths, 12 detections.

    Returns `gt` (a COCO instances dict) and `detections` (a list of COCO result records, bbox [x, y, w, h]).
    """
    gt_boxes = {1: [[10, 10, 50, 60], [120, 30, 60, 60], [200, 150, 40, 40]],
                2: [[30, 40, 80, 80], [150, 100, 50, 70], [20, 180, 60, 50]],
                3: [[60, 60, 100, 90], [190, 20, 40, 40]]}
    # (image, box, score): good boxes, loose boxes, duplicates and false alarms, all with distinct scores
    dets = [(1, [12, 11, 48, 58], 0.95), (2, [32, 42, 78, 76], 0.91), (3, [58, 62, 104, 88], 0.88),
            (1, [118, 28, 62, 64], 0.84), (2, [230, 200, 40, 30], 0.80), (1, [14, 14, 44, 52], 0.74),
            (2, [155, 95, 50, 80], 0.69), (3, [20, 200, 50, 40], 0.62), (1, [205, 160, 50, 50], 0.55),
            (3, [196, 30, 40, 40], 0.43), (2, [24, 184, 58, 48], 0.35), (3, [250, 250, 30, 30], 0.21)]
    images, annotations = [], []
    for image_id, boxes in gt_boxes.items():
        images.append({"id": image_id, "width": 320, "height": 280, "file_name": f"{image_id}.png"})
        for box in boxes:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "bbox": [float(v) for v in box], "area": float(box[2] * box[3]), "iscrowd": 0})
    gt = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "shape"}]}
    detections = [{"image_id": i, "category_id": 1, "bbox": [float(v) for v in b], "score": s} for i, b, s in dets]
    return {"gt": gt, "detections": detections}


def _draw_boxes(ax, boxes_xyxy, colors, labels=None, lw=2.0, ls="-", alpha=1.0, below=False):
    """Rectangles on an image-like axis (y down); labels inside the top-left corner, or under the box."""
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes_xyxy, dtype=float)):
        color = colors[k] if isinstance(colors, (list, tuple)) else colors
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=lw, ls=ls, alpha=alpha))
        if labels is not None and labels[k]:
            y = y2 + 0.5 if below else y1 + 1
            ax.text(x1 + 1, y, labels[k], color=color, fontsize=8, va="top", ha="left", alpha=alpha)


# ----------------------------------------------------------------------------- lesson 06: IoU and GIoU
@figure("iou_giou")
def iou_giou_figure():
    """IoU and GIoU of a 10x10 box and a copy sliding along x: IoU is flat at 0 once they part, GIoU is not."""
    from .boxes import box_giou, box_iou

    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    shifts = np.linspace(-60, 60, 1201)
    moved = np.stack([shifts, np.zeros_like(shifts), shifts + 10, np.full_like(shifts, 10.0)], axis=1)
    iou = box_iou(a, moved)[0]
    giou = box_giou(a, moved)[0]
    fig, axes = subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.2, 2]})
    ax = axes[0]
    for dx, color in ((-4, "tab:green"), (14, "tab:orange")):
        _draw_boxes(ax, [[dx, 0, dx + 10, 10]], color, ls="--")
        ax.text(dx + 5, -1, f"shift {dx}", color=color, fontsize=8, ha="center")
    _draw_boxes(ax, a, "black", ["fixed"], below=True)
    ax.set_xlim(-8, 28)
    ax.set_ylim(15, -5)
    ax.set_aspect("equal")
    ax.set_title("a fixed box and a copy moved along x", fontsize=9)
    ax = axes[1]
    ax.plot(shifts, iou, label="IoU")
    ax.plot(shifts, giou, label="GIoU")
    ax.axhline(0, color="grey", lw=0.6)
    ax.axhline(-1, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("shift of the moving box (pixels)")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(loc="lower center")
    ax.set_title("IoU is 0 for every |shift| >= 10; GIoU keeps falling towards -1", fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- lesson 07: BCE and the loss
@figure("bce_logits")
def bce_logits_figure():
    """BCE with logits against the logit for targets 1, 0 and a soft 0.6, and its gradient sigmoid(z) - t."""
    from .loss import bce_with_logits, bce_with_logits_backward

    z = np.linspace(-8, 8, 401)
    fig, axes = subplots(1, 2, figsize=(10, 3.6))
    for t, color in ((1.0, "tab:blue"), (0.0, "tab:red"), (0.6, "tab:green")):
        target = np.full_like(z, t)
        axes[0].plot(z, bce_with_logits(z, target), color=color, label=f"target {t:g}")
        axes[1].plot(z, bce_with_logits_backward(z, target), color=color, label=f"target {t:g}")
    z_star = np.log(0.6 / 0.4)
    axes[0].scatter([z_star], bce_with_logits(np.array([z_star]), np.array([0.6])), color="tab:green", zorder=3)
    axes[0].annotate("minimum at logit(0.6) = 0.41,\nnot at zero loss", (z_star, 0.67), (1.5, 3.0), fontsize=8,
                     arrowprops={"arrowstyle": "->"})
    axes[0].set_xlabel("logit z")
    axes[0].set_ylabel("BCE")
    axes[0].set_title("loss", fontsize=9)
    axes[1].set_xlabel("logit z")
    axes[1].set_ylabel("d BCE / d z = sigmoid(z) - t")
    axes[1].axhline(0, color="grey", lw=0.6)
    axes[1].set_title("gradient: bounded by 1 in size, never explodes", fontsize=9)
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@figure("loss_variants")
def loss_variants_figure():
    """The loss terms of the worked example, official YOLOX against the seed article's description."""
    from .loss import yolox_loss

    ex = example_simota()
    targets = [np.column_stack([ex["gt_classes"], ex["gt_boxes"]])]
    terms = ("iou", "obj", "cls", "total")
    values = {v: yolox_loss(ex["raw"], ex["grids"], ex["strides"], targets, variant=v) for v in ("official", "article")}
    fig, ax = subplots(figsize=(6.5, 3.4))
    x = np.arange(len(terms))
    for k, (variant, out) in enumerate(values.items()):
        heights = [out[t] for t in terms]
        bars = ax.bar(x + (k - 0.5) * 0.38, heights, 0.38, label=variant)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(x, ["5 x regression", "objectness", "classification", "total"])
    ax.set_ylabel("loss / number of positives")
    ax.set_title(f"the worked example ({values['official']['num_fg']} positives)", fontsize=9)
    ax.legend()
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- lesson 08: SimOTA
_GT_COLORS = ("tab:blue", "tab:orange")


def _simota_run():
    from .assign import simota_assign

    ex = example_simota()
    a = simota_assign(ex["pred_boxes"], ex["cls_logits"], ex["obj_logits"], ex["grids"], ex["strides"],
                      ex["gt_boxes"], ex["gt_classes"])
    return ex, a


def _simota_canvas(ax, ex, title):
    from .boxes import cell_centers, cxcywh_to_xyxy

    height, width = ex["image_size"]
    ax.add_patch(Rectangle((0, 0), width, height, fc="whitesmoke", ec="grey", lw=1))
    for v in range(8, width, 8):
        ax.plot([v, v], [0, height], color="lightgrey", lw=0.8)
    for v in range(8, height, 8):
        ax.plot([0, width], [v, v], color="lightgrey", lw=0.8)
    gt_xyxy = cxcywh_to_xyxy(ex["gt_boxes"])
    _draw_boxes(ax, gt_xyxy, list(_GT_COLORS), lw=2.2)
    ax.text(gt_xyxy[0, 0], gt_xyxy[0, 3] + 1, "GT0 (class 0)", color=_GT_COLORS[0], fontsize=8, va="top",
            ha="right")
    ax.text(gt_xyxy[1, 2], gt_xyxy[1, 3] + 1, "GT1 (class 1)", color=_GT_COLORS[1], fontsize=8, va="top")
    centers = cell_centers(ex["grids"], ex["strides"])
    ax.set_xlim(-14, width + 14)
    ax.set_ylim(height + 14, -14)
    ax.set_xlabel("x (pixels)")
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    return centers


@figure("simota_candidates")
def simota_candidates_figure():
    """Step 1 of SimOTA: the squares of half-side 1.5 strides around each GT centre pick the candidates."""
    ex, a = _simota_run()
    fig, ax = subplots(figsize=(7.5, 4.2))
    centers = _simota_canvas(ax, ex, "candidates: anchor centres within 1.5 strides (12 px) of a GT centre")
    r = 1.5 * 8
    for g, (cx, cy) in enumerate(ex["gt_boxes"][:, :2]):
        ax.add_patch(Rectangle((cx - r, cy - r), 2 * r, 2 * r, fill=False, ec=_GT_COLORS[g], ls=":", lw=1.5))
    cand = a.candidate_mask
    ax.scatter(*centers[cand].T, c="black", s=30, zorder=3, label="candidate")
    ax.scatter(*centers[~cand].T, facecolors="none", edgecolors="grey", s=30, zorder=3, label="negative")
    for n, (x, y) in enumerate(centers):
        ax.text(x + 0.8, y + 0.8, f"a{n}", fontsize=8, va="top")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig


@figure("simota_cost")
def simota_cost_figure():
    """IoU and cost matrices (GT x candidate); the k cheapest per GT outlined, the doubly claimed one in red."""
    ex, a = _simota_run()
    names = [f"a{n}" for n in a.candidate_index]
    fig, axes = subplots(2, 1, figsize=(8, 4.4))
    shown_cost = np.where(a.geometry_mask, a.cost, np.nan)
    for ax, mat, title, fmt in ((axes[0], a.iou_matrix, "IoU(GT, predicted box)", "{:.3f}"),
                                (axes[1], shown_cost, "cost = class cost + 3 x (-ln IoU) + 1e6 outside the "
                                                      "geometry test", "{:.2f}")):
        cmap = matplotlib.colormaps["viridis_r" if mat is shown_cost else "viridis"].with_extremes(bad="lightgrey")
        ax.imshow(mat, cmap=cmap, aspect="auto")
        for (g, k), v in np.ndenumerate(mat):
            text = fmt.format(v) if np.isfinite(v) else f"1e6+{a.cost[g, k] - 1e6:.0f}"
            ax.text(k, g, text, ha="center", va="center", fontsize=8,
                    color="black" if not np.isfinite(v) or mat is shown_cost else "white")
        ax.set_xticks(range(len(names)), names)
        ax.set_yticks(range(len(a.dynamic_k)), [f"GT{g}" for g in range(len(a.dynamic_k))])
        ax.set_title(title, fontsize=9)
    for g, k in zip(*np.nonzero(a.initial_matching)):
        twice = a.initial_matching[:, k].sum() > 1
        axes[1].add_patch(Rectangle((k - 0.48, g - 0.45), 0.96, 0.9, fill=False,
                                        ec="red" if twice else "black", lw=2.2))
    axes[1].set_xlabel("outlined: the k cheapest candidates of each GT (k = "
                       + ", ".join(str(int(k)) for k in a.dynamic_k) + "); red: claimed by both GTs")
    fig.tight_layout()
    return fig


@figure("simota_dynamic_k")
def simota_dynamic_k_figure():
    """Dynamic k: each GT's largest IoUs stacked; the floor of their sum is its number of positives."""
    ex, a = _simota_run()
    q = min(10, a.iou_matrix.shape[1])
    fig, ax = subplots(figsize=(6.5, 3.0))
    for g, row in enumerate(a.iou_matrix):
        order = np.argsort(-row)[:q]
        left = 0.0
        for k in order:
            ax.barh(g, row[k], left=left, color=_GT_COLORS[g], ec="white", alpha=0.85)
            if row[k] > 0.15:
                ax.text(left + row[k] / 2, g, f"a{a.candidate_index[k]}", ha="center", va="center", fontsize=8,
                        color="white")
            left += row[k]
        ax.text(left + 0.05, g, f"sum {left:.4f} -> k = {a.dynamic_k[g]}", va="center", fontsize=9)
    for v in range(1, 5):
        ax.axvline(v, color="grey", lw=0.6, ls=":")
    ax.set_yticks(range(len(a.dynamic_k)), [f"GT{g}" for g in range(len(a.dynamic_k))])
    ax.set_xlim(0, 4.6)
    ax.invert_yaxis()
    ax.set_xlabel(f"sum of the {q} largest IoUs (k = max(1, floor(sum)))")
    fig.tight_layout()
    return fig


@figure("simota_assignment")
def simota_assignment_figure():
    """The result of SimOTA: each positive anchor's predicted box, coloured by its ground truth."""
    from .boxes import cxcywh_to_xyxy

    ex, a = _simota_run()
    fig, ax = subplots(figsize=(7.5, 4.2))
    centers = _simota_canvas(ax, ex, f"final assignment: {a.num_fg} positives")
    pred = cxcywh_to_xyxy(ex["pred_boxes"])
    for n in np.flatnonzero(a.fg_mask):
        g = int(a.gt_index[n])
        _draw_boxes(ax, pred[n:n + 1], _GT_COLORS[g], ls="--", lw=1.4)
        ax.scatter(*centers[n], c=_GT_COLORS[g], s=60, zorder=3, edgecolors="black")
        top_row = centers[n, 1] < ex["image_size"][0] / 2
        ax.text(centers[n, 0] + (1 if g else -1), -2.5 if top_row else ex["image_size"][0] + 2.5,
                f"a{n} -> GT{g}\nIoU {a.iou[n]:.2f}", fontsize=8, ha="left" if g else "right",
                va="bottom" if top_row else "top", color=_GT_COLORS[g])
    neg = ~a.fg_mask
    ax.scatter(*centers[neg].T, facecolors="none", edgecolors="grey", s=30, zorder=3)
    ax.set_xlabel("dashed: predicted boxes of the positives; hollow circles: negatives")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- lesson 09: NMS
_NMS_LABEL_CORNER = {1: "br", 2: "bl", 5: "br"}  # the rest: top-left; keeps duplicate labels apart


def _nms_panel(ax, ex, kept, kept_scores, title, faint_below=0.0, caption=None):
    """Kept boxes solid (dotted if their final score is below `faint_below`), removed ones thin grey."""
    ax.add_patch(Rectangle((0, 0), 300, 230, fc="whitesmoke", ec="grey"))
    kept = list(kept)
    for n, (x1, y1, x2, y2) in enumerate(ex["boxes"]):
        color = ("tab:red", "tab:blue")[ex["classes"][n]]
        if n not in kept:
            _draw_boxes(ax, [[x1, y1, x2, y2]], "grey", lw=0.8, ls=":", alpha=0.6)
            continue
        score = kept_scores[kept.index(n)]
        _draw_boxes(ax, [[x1, y1, x2, y2]], color, lw=2, ls=":" if score < faint_below else "-")
        corner = _NMS_LABEL_CORNER.get(n, "tl")
        x = x2 - 2 if corner == "br" else x1 + 2
        y = y2 - 2 if corner in ("br", "bl") else y1 + 2
        ax.text(x, y, f"{n}: {score:.2f}", color=color, fontsize=8, ha="right" if corner == "br" else "left",
                va="bottom" if corner in ("br", "bl") else "top",
                bbox={"fc": "white", "ec": "none", "alpha": 0.75, "pad": 0.6})
    ax.set_xlim(-5, 305)
    ax.set_ylim(235, -5)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(caption or "kept, in order: " + ", ".join(str(int(n)) for n in kept), fontsize=8)


@figure("nms_compare")
def nms_compare_figure():
    """The same seven detections after hard NMS (class-aware, class-agnostic), Soft-NMS and the article's variant."""
    from .boxes import xyxy_to_cxcywh
    from .postprocess import article_soft_nms, batched_nms, nms, soft_nms

    ex = example_nms()
    boxes, scores = ex["boxes"], ex["scores"]
    aware = batched_nms(boxes, scores, ex["classes"], 0.45)
    agnostic = nms(boxes, scores, 0.3)
    panels = [
        (range(len(boxes)), scores, "input (red person, blue horse)", 0.0),
        (aware, scores[aware], "hard NMS, class-aware, IoU 0.45", 0.0),
        (agnostic, scores[agnostic], "hard NMS, class-agnostic, IoU 0.3", 0.0),
        (*soft_nms(boxes, scores, "linear", iou_threshold=0.3), "Soft-NMS linear (Nt 0.3); dotted < 0.3", 0.3),
        (*soft_nms(boxes, scores, "gaussian", sigma=0.5), "Soft-NMS Gaussian (sigma 0.5); dotted < 0.3", 0.3),
        (*article_soft_nms(xyxy_to_cxcywh(boxes), scores, 0.3, 0.5), "article's variant (IoU 0.3, score 0.5)",
         0.0),
    ]
    fig, axes = subplots(2, 3, figsize=(12, 6.4))
    for k, (ax, (kept, kept_scores, title, faint)) in enumerate(zip(axes.ravel(), panels)):
        _nms_panel(ax, ex, kept, kept_scores, title, faint, caption="box index: score" if k == 0 else None)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- lesson 03: Darknet-53
def darknet_stage_shapes(spp: bool, input_size: int = 256, probe: int = 64) -> dict[str, tuple[int, int, int]]:
    """(C, H, W) of every Darknet-53 stage output for a square `input_size` image, measured by a forward pass.

    The pass runs a full-width Darknet with one residual block per stage on a `probe`-pixel input (channel
    counts and strides do not depend on the number of blocks); heights and widths are scaled to `input_size`.
    """
    from .models.darknet import STAGES, Darknet

    net = Darknet(53, blocks=(1, 1, 1, 1, 1), spp=spp, out_features=STAGES, rng=np.random.default_rng(0)).eval()
    feats = net(np.zeros((1, 3, probe, probe), np.float32))
    scale = input_size // probe
    return {name: (f.shape[1], f.shape[2] * scale, f.shape[3] * scale) for name, f in feats.items()}


@figure("darknet_shapes")
def darknet_shapes_figure():
    """Darknet-53 on a 256x256 image: each stage halves the map and doubles the channels; SPP ends dark5 at 512."""
    plain = darknet_stage_shapes(spp=False)
    with_spp = darknet_stage_shapes(spp=True)
    fig, ax = subplots(figsize=(11, 4.4))
    x = 0.0
    centres = {}
    for name, (c, h, _) in plain.items():
        width = 0.5 + 0.35 * np.log2(c / 16)
        height = 0.55 * np.log2(h) + 0.3
        color = "tab:green" if name in ("dark3", "dark4", "dark5") else "silver"
        ax.add_patch(Rectangle((x, -height / 2), width, height, fc=color, ec="black", alpha=0.6))
        ax.text(x + width / 2, height / 2 + 0.15, name, ha="center", fontsize=9, weight="bold")
        ax.text(x + width / 2, -height / 2 - 0.2, f"{c} x {h} x {h}\nstride {256 // h}", ha="center", va="top",
                fontsize=8)
        centres[name] = (x + width / 2, height / 2)
        x += width + 0.5
    c, h, _ = with_spp["dark5"]
    spp_x = x + 0.3
    ax.add_patch(Rectangle((spp_x, -0.9), 1.6, 1.8, fc="tab:orange", ec="black", alpha=0.6))
    ax.text(spp_x + 0.8, 0, "SPP block\n(dark5.5-5.9)", ha="center", va="center", fontsize=8)
    ax.annotate("", (spp_x, 0), (x - 0.5, 0), arrowprops={"arrowstyle": "->"})
    ax.text(spp_x + 0.8, -1.1, f"dark5 after SPP:\n{c} x {h} x {h}", ha="center", va="top", fontsize=8)
    for name in ("dark3", "dark4", "dark5"):
        cx, top = centres[name]
        ax.annotate("", (cx, 3.6), (cx, top + 0.45), arrowprops={"arrowstyle": "->", "color": "tab:green"})
        ax.text(cx, 3.7, f"{plain[name][0]} ch", ha="center", fontsize=8, color="tab:green")
    ax.text(centres["dark3"][0] - 1.0, 4.25, "article: heads read the plain outputs", fontsize=9, color="tab:green")
    ax.annotate("", (spp_x + 0.8, 3.6), (spp_x + 0.8, 0.95), arrowprops={"arrowstyle": "->", "color": "tab:orange"})
    ax.text(spp_x + 0.8, 3.7, f"official: {c} ch\n(with dark3, dark4 as they are)", ha="center", fontsize=8,
            color="tab:orange")
    ax.set_xlim(-0.3, spp_x + 2.2)
    ax.set_ylim(-3.6, 4.8)
    ax.axis("off")
    ax.set_title("Darknet-53 on a 256x256 image (box height ~ log of map size, width ~ log of channels)", fontsize=10)
    return fig


@figure("spp_pooling")
def spp_pooling_figure():
    """SPP's three max-pools (stride 1, padding k // 2) on a 13x13 map with three bright points."""
    from .nn import MaxPool2d

    x = np.zeros((1, 1, 13, 13), np.float32)
    x[0, 0, 2, 3], x[0, 0, 9, 9], x[0, 0, 6, 11] = 1.0, 0.6, 0.3
    panels = [("input", x[0, 0])]
    for k in (5, 9, 13):
        panels.append((f"max-pool {k}x{k}", MaxPool2d(k, stride=1, padding=k // 2)(x)[0, 0]))
    fig, axes = subplots(1, 4, figsize=(11, 3.0))
    for ax, (title, img) in zip(axes, panels):
        ax.imshow(img, cmap="magma", vmin=0, vmax=1)
        ax.set_title(f"{title}: {img.shape[0]}x{img.shape[1]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("each pool spreads a strong response over a k x k window; the map keeps its size", fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- lesson 04: neck and head
def head_output_shapes(num_classes: int = 80, input_size: int = 256):
    """The 9 per-level head outputs (cls, reg, obj at strides 8, 16, 32) of a small YOLOX-Darknet53, by level.

    Returns a list of (stride, {"cls": shape, "reg": shape, "obj": shape}) with (C, H, W) shapes, measured by
    running a width-1/8, one-block-per-stage model on a blank image (the shapes do not depend on the width).
    """
    from .models import yolox_darknet53

    model = yolox_darknet53(num_classes, width=1 / 8, blocks=(1, 1, 1, 1, 1), rng=np.random.default_rng(0)).eval()
    feats = model.backbone(np.zeros((1, 3, input_size, input_size), np.float32))
    head, out = model.head, []
    for k, (f, stride) in enumerate(zip(feats, head.strides)):
        x = head.stems[k](f)
        reg_feat = head.reg_convs[k](x)
        shapes = {"cls": head.cls_preds[k](head.cls_convs[k](x)).shape[1:],
                  "reg": head.reg_preds[k](reg_feat).shape[1:], "obj": head.obj_preds[k](reg_feat).shape[1:]}
        out.append((stride, shapes))
    return out


def _flow_box(ax, xy, text, color, width=1.9, height=0.62):
    x, y = xy
    ax.add_patch(Rectangle((x - width / 2, y - height / 2), width, height, fc=color, ec="black", alpha=0.55))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _flow_arrow(ax, start, end):
    ax.annotate("", end, start, arrowprops={"arrowstyle": "->", "lw": 1.1})


@figure("head_outputs")
def head_outputs_figure():
    """One level of the decoupled head, and the 9 output tensors of all three levels (C = 80, 256x256 input)."""
    levels = head_output_shapes()
    fig, axes = subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.5, 1]})
    ax = axes[0]
    _flow_box(ax, (0, 0), "neck output\nc_i x H x W", "lightgrey")
    _flow_box(ax, (2.3, 0), "stem\n1x1 conv -> h", "silver")
    _flow_box(ax, (4.6, 1.1), "cls_convs\n2 x (3x3 conv)", "tab:purple")
    _flow_box(ax, (4.6, -1.1), "reg_convs\n2 x (3x3 conv)", "tab:cyan")
    _flow_box(ax, (7.0, 1.1), "cls_pred 1x1\nC x H x W", "tab:purple")
    _flow_box(ax, (7.0, -0.5), "reg_pred 1x1\n4 x H x W", "tab:cyan")
    _flow_box(ax, (7.0, -1.7), "obj_pred 1x1\n1 x H x W", "tab:olive")
    for start, end in (((0.95, 0), (1.35, 0)), ((3.25, 0.1), (3.65, 1.0)), ((3.25, -0.1), (3.65, -1.0)),
                       ((5.55, 1.1), (6.05, 1.1)), ((5.55, -1.0), (6.05, -0.6)), ((5.55, -1.2), (6.05, -1.6))):
        _flow_arrow(ax, start, end)
    ax.text(3.5, 2.1, "one level of the decoupled head (BN + activation after every 3x3 and the stem)",
            ha="center", fontsize=9)
    ax.set_xlim(-1.1, 8.1)
    ax.set_ylim(-2.3, 2.4)
    ax.axis("off")
    ax = axes[1]
    ax.axis("off")
    rows = [[f"stride {s}"] + [" x ".join(str(v) for v in sh[k]) for k in ("cls", "reg", "obj")] for s, sh in levels]
    table = ax.table(cellText=rows, colLabels=["level", "cls", "reg", "obj"], loc="center", cellLoc="center")
    table.scale(1, 1.8)
    table.set_fontsize(9)
    ax.set_title(f"3 levels x 3 outputs = 9 tensors\n(80 classes, 256x256 input: "
                 f"{sum(sh['obj'][1] * sh['obj'][2] for _, sh in levels)} predictions)", fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- lesson 11: AP
def match_detections(gt, detections, iou_threshold=0.5):
    """Greedy COCO-style matching of one category: detections by descending score, each to the unmatched
    ground truth of its image with the highest IoU >= `iou_threshold`.

    Returns (scores (D,) descending, is_tp (D,) bool, num_gt). No crowd regions, area ranges or caps.
    """
    from .boxes import box_iou, xywh_to_xyxy

    order = sorted(range(len(detections)), key=lambda i: -detections[i]["score"])
    by_image: dict = {}
    for ann in gt["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    used: set = set()
    is_tp = []
    for i in order:
        det = detections[i]
        anns = [a for a in by_image.get(det["image_id"], []) if a["id"] not in used]
        best = None
        if anns:
            ious = box_iou(xywh_to_xyxy(np.array([det["bbox"]])), xywh_to_xyxy(np.array([a["bbox"] for a in anns])))[0]
            j = int(np.argmax(ious))
            if ious[j] >= iou_threshold:
                best = anns[j]["id"]
        if best is not None:
            used.add(best)
        is_tp.append(best is not None)
    scores = np.array([detections[i]["score"] for i in order])
    return scores, np.array(is_tp, dtype=bool), len(gt["annotations"])


@figure("pr_curve")
def pr_curve_figure():
    """The precision-recall points of the lesson-11 example at IoU 0.5, their envelope and COCO's 101 samples."""
    from .eval import RECALL_THRESHOLDS, average_precision
    from .eval.ap import sample_precision_envelope

    ex = example_pr()
    scores, is_tp, num_gt = match_detections(ex["gt"], ex["detections"], 0.5)
    tp = np.cumsum(is_tp)
    recall = tp / num_gt
    precision = tp / np.arange(1, len(tp) + 1)
    sampled, _ = sample_precision_envelope(recall, precision)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    ap = average_precision(recall, precision)
    fig, ax = subplots(figsize=(6.5, 4.2))
    ax.fill_between(RECALL_THRESHOLDS, sampled, step="post", alpha=0.15, color="tab:blue")
    ax.plot(recall, precision, "o", color="black", label="after each detection (by score)")
    for r, p, s, hit in zip(recall, precision, scores, is_tp):
        ax.annotate(f"{s:.2f}", (r, p), (4, -10 if hit else 4), textcoords="offset points", fontsize=7,
                    color="black" if hit else "tab:red")
    ax.step(np.r_[0.0, recall], np.r_[envelope[0], envelope], where="pre", color="tab:orange",
            label="envelope (best precision at this recall or beyond)")
    ax.plot(RECALL_THRESHOLDS, sampled, ".", ms=3, color="tab:blue", label=f"101 samples, mean = AP50 = {ap:.4f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.08)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("score labels: black = true positive, red = false positive", fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- lesson 10: training
def _boxes_on(image_bgr, boxes, classes, class_names):
    from .viz import draw_detections

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return draw_detections(image_bgr, (boxes, np.ones(len(boxes)), np.asarray(classes)), class_names,
                           show_scores=False, line_width=2, font_size=10)


@figure("augmentations")
def augmentations_figure():
    """One shapes image through each of YOLOX's augmentations (boxes follow the pixels)."""
    from .data import ShapesDataset, augment_hsv, hflip, mixup, mosaic, random_affine

    ds = ShapesDataset(8, img_size=(160, 160), seed=3, min_objects=2, max_objects=3, min_size=24, max_size=70)
    names = ds.class_names
    img, boxes, classes, _ = ds[0]
    rng = np.random.default_rng(7)
    pictures = [("original", _boxes_on(img, boxes, classes, names))]
    flipped, fboxes = hflip(img, boxes)
    pictures.append(("horizontal flip", _boxes_on(flipped, fboxes, classes, names)))
    pictures.append(("HSV jitter (strong)", _boxes_on(augment_hsv(img, rng, 40, 90, 60), boxes, classes, names)))
    canvas, mboxes, mclasses = mosaic([ds[i][:3] for i in range(4)], rng, (160, 160))
    pictures.append(("mosaic canvas (320x320)", _boxes_on(canvas, mboxes, mclasses, names)))
    warped, wboxes = random_affine(canvas, mboxes, rng, scales=(0.5, 1.5), out_size=(160, 160))
    pictures.append(("mosaic + random affine", _boxes_on(warped, wboxes, mclasses, names)))
    mixed, xboxes, xclasses = mixup(warped, wboxes, mclasses, *ds[5][:3], rng)
    pictures.append(("+ MixUp with another image", _boxes_on(mixed, xboxes, xclasses, names)))
    fig, axes = subplots(2, 3, figsize=(10, 7.2))
    for ax, (title, picture) in zip(axes.ravel(), pictures):
        ax.imshow(picture)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


@figure("lr_schedule")
def lr_schedule_figure():
    """The official learning rate of a 300-epoch run: quadratic warm-up, cosine, constant for the last 15 epochs."""
    from .train.schedule import yoloxwarmcos_lr

    ipe, epochs, base = 100, 300, 0.01
    its = np.arange(epochs * ipe)
    lr = [yoloxwarmcos_lr(int(i), base, 5 * ipe, epochs * ipe, 15 * ipe, 0.05) for i in its]
    fig, ax = subplots(figsize=(7, 3.0))
    ax.plot(its / ipe, lr)
    ax.axvspan(0, 5, color="tab:orange", alpha=0.15, label="warm-up (5 epochs)")
    ax.axvspan(285, 300, color="tab:green", alpha=0.15, label="no mosaic / MixUp, L1 on (last 15)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate (base 0.01)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- lesson 00: the tour
@figure("pipeline")
def pipeline_figure():
    """From a photo to detections: every stage of YOLOX-Darknet53 with its array shapes for a 256x256 input.

    The shapes are measured on a width-1/8 copy (one residual block per stage) and its channel counts
    multiplied by 8, which gives the full model's: only the widths differ between the two.
    """
    from .models import yolox_darknet53

    model = yolox_darknet53(80, width=1 / 8, blocks=(1, 1, 1, 1, 1), rng=np.random.default_rng(0)).eval()
    x = np.zeros((1, 3, 256, 256), np.float32)
    backbone = model.backbone.backbone(x)
    neck = model.backbone(x)
    raw, _, _ = model.forward_raw(x)

    def shapes(maps):
        return "\n".join(f"{f.shape[1] * 8} x {f.shape[2]} x {f.shape[3]}" for f in maps)

    steps = [
        ("photo\nany size, BGR", "lightgrey", ""),
        ("letterbox\n3 x 256 x 256", "lightgrey", "lesson 12"),
        ("backbone\nDarknet-53 + SPP\n" + shapes(backbone.values()), "tab:green", "lesson 03"),
        ("neck (YOLOFPN)\n" + shapes(neck), "tab:olive", "lesson 04"),
        (f"head: 9 maps\n-> raw\n{raw.shape[1]} x {raw.shape[2]}", "tab:purple", "lesson 04"),
        ("decode +\nsigmoid\ncx, cy, w, h,\nobj, p_1..p_80", "tab:blue", "lesson 05"),
        ("score filter\n+ NMS\n-> N x 7\ndetections", "tab:red", "lesson 09"),
    ]
    step = 2.4
    fig, ax = subplots(figsize=(13, 3.4))
    for k, (text, color, where) in enumerate(steps):
        _flow_box(ax, (k * step, 0), text, color, width=2.05, height=1.7)
        ax.text(k * step, -1.1, where, ha="center", fontsize=8, style="italic")
        if k:
            _flow_arrow(ax, ((k - 1) * step + 1.03, 0), (k * step - 1.03, 0))
    ax.text(3 * step, 1.3, "training instead: raw -> SimOTA (lesson 08) -> loss (lesson 07) -> backward -> SGD "
            "(lesson 10)", ha="center", fontsize=9)
    ax.set_xlim(-1.2, 6 * step + 1.2)
    ax.set_ylim(-1.3, 1.6)
    ax.axis("off")
    return fig
