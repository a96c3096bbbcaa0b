"""Pictures for people: detections drawn on images, image grids for lessons, precision-recall curves.

Channel order: a 3-channel **array** is taken as BGR by default (what ``load_image`` and the official code
use); pass ``channel_order="rgb"`` for RGB arrays. PIL images are RGB. Every function returns a new image
or figure and leaves its inputs untouched. Figures use matplotlib's Agg canvas (no window, no pyplot state).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from yolox_np.eval.coco import AREA_RANGES, IOU_THRESHOLDS, MAX_DETS, RECALL_THRESHOLDS

__all__ = ["PALETTE", "class_color", "draw_detections", "image_grid", "plot_pr_curve"]

# 20 distinct, saturated colours (RGB); class c is drawn in PALETTE[c % 20]
PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
    (170, 110, 40),
    (128, 0, 0),
    (0, 0, 128),
    (255, 225, 25),
    (128, 128, 0),
    (250, 150, 190),
    (100, 100, 255),
    (0, 200, 140),
    (200, 80, 0),
    (90, 60, 160),
    (128, 128, 128),
)


def class_color(class_id):
    """RGB colour of a class id (fixed palette, same colour every time)."""
    if isinstance(class_id, bool) or not isinstance(class_id, (int, np.integer)) or class_id < 0:
        raise ValueError(f"class_id must be a non-negative integer, got {class_id!r}")
    return PALETTE[int(class_id) % len(PALETTE)]


def _text_color(rgb):
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _to_pil(image, channel_order):
    """PIL image or array -> RGB PIL image (a copy).

    Arrays: uint8 as is; bool x 255; other 2-D numeric arrays (maps, heatmaps) min-max scaled to 0..255;
    other 3-D numeric arrays clipped to 0..255 and rounded. (H, W), (H, W, 1), (H, W, 3), (H, W, 4).
    """
    if channel_order not in ("bgr", "rgb"):
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"an image must be a PIL image or a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or 0 in arr.shape[:2]:
        raise ValueError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise ValueError("the image array has non-finite values")
        if arr.ndim == 2:
            lo, hi = arr.min(), arr.max()
            arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return Image.fromarray(arr, mode="L").convert("RGB")
    rgb = arr[:, :, :3]
    if channel_order == "bgr":
        rgb = rgb[:, :, ::-1]
    return Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")


def _split_detections(detections):
    """(N, 7) [x1, y1, x2, y2, obj, cls_prob, class] or (boxes, scores, classes) -> three arrays."""
    if isinstance(detections, (tuple, list)) and len(detections) == 3:
        boxes, scores, classes = (np.asarray(v) for v in detections)
    else:
        dets = np.asarray(detections, dtype=np.float64)
        if dets.ndim != 2 or dets.shape[1] != 7:
            raise ValueError(
                "detections must be an (N, 7) array [x1, y1, x2, y2, obj, cls_prob, class] or a tuple "
                f"(boxes (N, 4), scores (N,), classes (N,)), got shape {dets.shape}"
            )
        boxes, scores, classes = dets[:, :4], dets[:, 4] * dets[:, 5], dets[:, 6]
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {boxes.shape}")
    n = boxes.shape[0]
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    classes = np.asarray(classes, dtype=np.float64).reshape(-1)
    if scores.shape != (n,) or classes.shape != (n,):
        raise ValueError(f"scores and classes must have shape ({n},), got {scores.shape} and {classes.shape}")
    for arr, name in ((boxes, "boxes"), (scores, "scores"), (classes, "classes")):
        if not np.isfinite(arr).all():
            i = int(np.flatnonzero(~np.isfinite(arr.reshape(n, -1)).any(axis=1))[0])
            raise ValueError(f"detection {i}: non-finite value in {name}")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"detection {i}: box {boxes[i].tolist()} has x2 < x1 or y2 < y1")
    bad = (classes < 0) | (classes != np.round(classes))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"detection {i}: class {classes[i]} is not a non-negative integer")
    return boxes, scores, classes.astype(np.int64)


def draw_detections(image, detections, class_names=None, *, score_threshold=0.0, line_width=None,
                    font_size=None, show_scores=True, channel_order="bgr"):
    """Draw boxes with class name and score; returns a new RGB PIL image.

    ``detections``: (N, 7) ``[x1, y1, x2, y2, obj, cls_prob, class]`` as ``postprocess`` returns (score =
    obj * cls_prob), or a tuple ``(boxes (N, 4) xyxy, scores (N,), classes (N,))``, in the image's pixels.
    ``class_names[c]`` labels class c (``"class c"`` without names). Boxes with score < ``score_threshold``
    are skipped; higher scores are drawn last (on top). Each class has a fixed colour (``class_color``).
    """
    canvas = _to_pil(image, channel_order)
    boxes, scores, classes = _split_detections(detections)
    if class_names is not None and len(classes) and classes.max() >= len(class_names):
        i = int(np.argmax(classes))
        raise ValueError(f"detection {i} has class {classes[i]} but class_names has {len(class_names)} names")
    width, height = canvas.size
    if line_width is None:
        line_width = max(2, round((width + height) / 600))
    if font_size is None:
        font_size = max(10, round(min(width, height) / 35))
    font = _font(font_size)
    draw = ImageDraw.Draw(canvas)
    for i in np.argsort(scores, kind="stable"):
        if scores[i] < score_threshold:
            continue
        color = class_color(int(classes[i]))
        x1, y1, x2, y2 = boxes[i]
        x1, x2 = np.clip([x1, x2], 0, width - 1)
        y1, y2 = np.clip([y1, y2], 0, height - 1)
        draw.rectangle([x1, y1, x2, y2], outline=color, width=line_width)
        name = class_names[classes[i]] if class_names is not None else f"class {classes[i]}"
        label = f"{name} {scores[i]:.2f}" if show_scores else str(name)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        text_w, text_h = right - left + 4, bottom - top + 4
        ty = y1 - text_h if y1 - text_h >= 0 else y1  # above the box, or inside it at the top edge
        tx = min(x1, max(0, width - text_w))
        draw.rectangle([tx, ty, tx + text_w, ty + text_h], fill=color)
        draw.text((tx + 2 - left, ty + 2 - top), label, fill=_text_color(color), font=font)
    return canvas


def image_grid(images, ncols, titles=None, *, pad=4, background=(255, 255, 255), font_size=14,
               channel_order="bgr"):
    """Lay images out on a grid; returns an RGB PIL image.

    Every cell is as large as the largest image (images sit at the cell's top-left); with ``titles`` each
    cell gets a text band of ``font_size + 6`` pixels above it. The result is
    ``ncols * cell_w + (ncols + 1) * pad`` wide and ``nrows * (cell_h + band) + (nrows + 1) * pad`` high,
    with ``ncols`` capped at the number of images.
    """
    images = list(images)
    if not images:
        raise ValueError("image_grid needs at least one image")
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ValueError(f"pad must be a non-negative integer, got {pad!r}")
    pictures = [_to_pil(im, channel_order) for im in images]
    ncols = min(int(ncols), len(pictures))
    nrows = -(-len(pictures) // ncols)
    cell_w = max(p.size[0] for p in pictures)
    cell_h = max(p.size[1] for p in pictures)
    band = font_size + 6 if titles is not None else 0
    grid = Image.new(
        "RGB", (ncols * cell_w + (ncols + 1) * pad, nrows * (cell_h + band) + (nrows + 1) * pad), tuple(background)
    )
    draw = ImageDraw.Draw(grid)
    font = _font(font_size) if titles is not None else None
    for i, picture in enumerate(pictures):
        row, col = divmod(i, ncols)
        x = pad + col * (cell_w + pad)
        y = pad + row * (cell_h + band + pad)
        if titles is not None:
            draw.text((x, y + 1), str(titles[i]), fill=(0, 0, 0), font=font)
        grid.paste(picture, (x, y + band))
    return grid


def _precision_from(result_or_precision):
    if isinstance(result_or_precision, dict):
        if "precision" not in result_or_precision:
            raise ValueError("expected a coco_eval result (a dict with 'precision') or a (T, R, K, A, M) array")
        res = result_or_precision
        return (np.asarray(res["precision"], dtype=np.float64), np.asarray(res["recall_thresholds"]),
                np.asarray(res["iou_thresholds"]), list(res["category_ids"]), list(res["area_ranges"]),
                list(res["max_dets"]))
    precision = np.asarray(result_or_precision, dtype=np.float64)
    if precision.ndim != 5 or precision.shape[:2] != (len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)):
        raise ValueError(f"precision must have COCOeval's shape (10, 101, K, 4, 3), got {precision.shape}")
    return (precision, RECALL_THRESHOLDS, IOU_THRESHOLDS, list(range(precision.shape[2])), list(AREA_RANGES),
            list(MAX_DETS))


def plot_pr_curve(result_or_precision, *, iou_thresholds=(0.5, 0.75), include_mean=True, category_id=None,
                  area="all", max_dets=100, title=None, figsize=(5.0, 4.0)):
    """Precision-recall curves from a ``coco_eval`` result (or its (T, R, K, A, M) ``precision`` array).

    One curve per IoU threshold in ``iou_thresholds`` (plus, with ``include_mean``, the mean over all ten
    thresholds, labelled 0.50:0.95); each curve is the interpolated precision at the 101 recall points,
    averaged over the categories that have ground truth (or for ``category_id`` only). The legend gives
    each curve's AP. Returns a ``matplotlib.figure.Figure`` on an Agg canvas.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    precision, rec_thrs, iou_thrs, cat_ids, areas, max_dets_list = _precision_from(result_or_precision)
    if area not in areas:
        raise ValueError(f"area must be one of {areas}, got {area!r}")
    if max_dets not in max_dets_list:
        raise ValueError(f"max_dets must be one of {max_dets_list}, got {max_dets!r}")
    p = precision[:, :, :, areas.index(area), max_dets_list.index(max_dets)]  # (T, R, K)
    if category_id is not None:
        if category_id not in cat_ids:
            raise ValueError(f"category_id {category_id!r} is not among the evaluated categories")
        p = p[:, :, [cat_ids.index(category_id)]]
    valid = (p > -1).all(axis=1)  # (T, K): categories with ground truth
    if not valid.any():
        raise ValueError("no category has ground truth in this area range: nothing to plot")
    curves = []
    for iou in iou_thresholds:
        match = np.flatnonzero(np.isclose(iou_thrs, iou))
        if match.size == 0:
            raise ValueError(f"IoU threshold {iou} is not one of {np.round(iou_thrs, 2).tolist()}")
        t = int(match[0])
        curves.append((f"IoU={iou_thrs[t]:.2f}", p[t][:, valid[t]].mean(axis=1)))
    if include_mean:
        mean_curve = np.stack([p[t][:, valid[t]].mean(axis=1) for t in range(len(iou_thrs))]).mean(axis=0)
        curves.append(("IoU=0.50:0.95", mean_curve))
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, curve in curves:
        ax.plot(rec_thrs, curve, label=f"{label} (AP {curve.mean():.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (interpolated)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    what = "all categories" if category_id is None else f"category {category_id}"
    ax.set_title(title if title is not None else f"Precision-recall, {what}, area={area}, maxDets={max_dets}")
    fig.tight_layout()
    return fig
