"""`Detector`: a model plus the official pre- and post-processing, for images a person can look at.

image (path, PIL image or HxWx3 array) -> letterbox (BGR, 114 pad, top-left) -> model (eval, decoded)
-> postprocess (score = obj x class prob, NMS) -> boxes divided by the letterbox ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data.preprocess import letterbox, load_image
from .postprocess import postprocess


@dataclass
class Detections:
    """Detections of one image, in original-image pixels.

    boxes (N, 4) xyxy, scores (N,) = obj x class prob, classes (N,) int, obj (N,), cls_prob (N,).
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    obj: np.ndarray
    cls_prob: np.ndarray
    image_size: tuple[int, int]  # (H, W) of the original image

    def __len__(self) -> int:
        return len(self.scores)

    def as_array(self) -> np.ndarray:
        """(N, 7) [x1, y1, x2, y2, obj, cls_prob, class], the row layout of `postprocess`."""
        return np.column_stack([self.boxes, self.obj, self.cls_prob, self.classes]).astype(np.float32)

    def to_coco(self, image_id, class_names=None, category_ids=None) -> list[dict]:
        """COCO-results records: bbox [x, y, w, h], score unrounded."""
        out = []
        for box, score, cls in zip(self.boxes, self.scores, self.classes):
            x1, y1, x2, y2 = (float(v) for v in box)
            cls = int(cls)
            rec = {
                "image_id": image_id,
                "category_id": int(category_ids[cls]) if category_ids is not None else cls,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": float(score),
            }
            if class_names is not None:
                rec["category_name"] = class_names[cls]
            out.append(rec)
        return out


class Detector:
    """Wraps a model with letterbox pre-processing and NMS post-processing.

    >>> det = Detector(model, img_size=416, conf=0.3, nms=0.45)      # doctest: +SKIP
    >>> d = det("cat.png"); d.boxes, d.scores, d.classes                # doctest: +SKIP
    """

    def __init__(self, model, img_size=416, conf: float = 0.3, nms: float = 0.45, class_agnostic: bool = False,
                 class_names=None):
        size = (img_size, img_size) if np.isscalar(img_size) else tuple(img_size)
        if len(size) != 2 or any(int(s) != s or s <= 0 or s % 32 for s in size):
            raise ValueError(f"img_size must be a positive multiple of 32 (or a pair of them), got {img_size!r}")
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f"conf must be in [0, 1], got {conf}")
        if not 0.0 <= nms <= 1.0:
            raise ValueError(f"nms must be in [0, 1], got {nms}")
        self.model = model
        self.img_size = (int(size[0]), int(size[1]))
        self.conf, self.nms, self.class_agnostic = float(conf), float(nms), bool(class_agnostic)
        self.num_classes = int(model.num_classes)
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in
                                                                               range(self.num_classes)]

    def preprocess(self, image) -> tuple[np.ndarray, float, tuple[int, int]]:
        """Returns the (1, 3, H, W) float32 network input, the letterbox ratio and the original (H, W)."""
        img = load_image(image)
        chw, ratio = letterbox(img, self.img_size)
        return chw[None].astype(self.model.dtype, copy=False), float(ratio), img.shape[:2]

    def __call__(self, image) -> Detections:
        x, ratio, hw = self.preprocess(image)
        self.model.eval()
        decoded = self.model(x)
        rows = postprocess(decoded, self.num_classes, self.conf, self.nms, self.class_agnostic)[0]
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
        return Detections(
            boxes=rows[:, :4] / ratio,
            scores=rows[:, 4] * rows[:, 5],
            classes=rows[:, 6].astype(np.int64),
            obj=rows[:, 4],
            cls_prob=rows[:, 5],
            image_size=(int(hw[0]), int(hw[1])),
        )
