"""A reader for detection datasets in COCO format (instances JSON + a folder of images)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np

from yolox_np.data.preprocess import load_image


def _is_positive_whole(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value > 0 and float(value).is_integer())


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {path}")
    try:
        with path.open("r", encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"COCO annotation file {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"COCO annotation file {path} must hold a JSON object, got {type(data).__name__}")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"COCO annotation file {path} has no list {key!r}")
    if not isinstance(data.get("annotations", []), list):
        raise ValueError(f"COCO annotation file {path}: 'annotations' must be a list")
    return data


class CocoDataset:
    """Images and boxes of a COCO-format dataset.

    ``__getitem__(i) -> (image BGR uint8 (H, W, 3), boxes (G, 4) xyxy float32 in original pixels,
    classes (G,) int64 in 0..C-1, image_id)``. Images without annotations are kept (G = 0). Crowd
    annotations are skipped, as in official YOLOX training. Boxes are clipped to the image; a box with no
    area left after clipping (or an ``area`` field <= 0) is dropped. Unlike the official reader, which
    clips x1 first and then adds the full width (shifting boxes that start left of the image), the right
    edge here is clipped from the original ``x + w``.

    ``cat_ids`` are the category ids sorted ascending; class index c <-> ``cat_ids[c]``; ``class_names``
    are their names. Images follow the order of the JSON ``images`` list.
    """

    def __init__(self, images_dir, ann_json):
        self.images_dir = Path(images_dir)
        self.ann_path = Path(ann_json)
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"COCO images directory not found: {self.images_dir}")
        self._coco = _load_json(self.ann_path)

        for k, cat in enumerate(self._coco["categories"]):
            if not isinstance(cat, dict) or isinstance(cat.get("id"), bool) or not isinstance(cat.get("id"), int):
                raise ValueError(f"{self.ann_path}: category entry {k} has no integer 'id': {cat!r}")
        categories = sorted(self._coco["categories"], key=lambda c: c["id"])
        self.cat_ids = [int(c["id"]) for c in categories]
        if len(set(self.cat_ids)) != len(self.cat_ids):
            raise ValueError(f"{self.ann_path}: duplicate category ids in {self.cat_ids}")
        self.class_names = tuple(str(c.get("name", c["id"])) for c in categories)
        self._class_of_cat = {cat_id: c for c, cat_id in enumerate(self.cat_ids)}

        self._images = []
        position = {}
        for k, info in enumerate(self._coco["images"]):
            if not isinstance(info, dict) or not {"id", "file_name", "height", "width"} <= info.keys():
                raise ValueError(
                    f"{self.ann_path}: image entry {k} needs 'id', 'file_name', 'height' and 'width', got {info!r}"
                )
            if info["id"] in position:
                raise ValueError(f"{self.ann_path}: duplicate image id {info['id']}")
            if not all(_is_positive_whole(info[key]) for key in ("height", "width")):
                raise ValueError(
                    f"{self.ann_path}: image {info['id']} needs positive integer height and width, "
                    f"got {info['height']!r} x {info['width']!r}"
                )
            position[info["id"]] = k
            self._images.append(info)
        self.image_ids = [info["id"] for info in self._images]

        per_image: list[list] = [[] for _ in self._images]
        for k, ann in enumerate(self._coco.get("annotations", [])):
            self._add_annotation(k, ann, position, per_image)
        self._boxes = [np.asarray([b for b, _ in anns], dtype=np.float32).reshape(-1, 4) for anns in per_image]
        self._classes = [np.asarray([c for _, c in anns], dtype=np.int64) for anns in per_image]

    def _add_annotation(self, k: int, ann, position: dict, per_image: list) -> None:
        where = f"{self.ann_path}: annotation {k} (id {ann.get('id') if isinstance(ann, dict) else '?'})"
        if not isinstance(ann, dict) or "image_id" not in ann or "bbox" not in ann or "category_id" not in ann:
            raise ValueError(f"{where} needs 'image_id', 'bbox' and 'category_id'")
        if ann["image_id"] not in position:
            raise ValueError(f"{where} refers to unknown image id {ann['image_id']}")
        if ann["category_id"] not in self._class_of_cat:
            raise ValueError(f"{where} refers to unknown category id {ann['category_id']}")
        bbox = ann["bbox"]
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise ValueError(f"{where}: bbox must be [x, y, w, h], got {bbox!r}")
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: bbox must hold four numbers, got {bbox!r}") from err
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            raise ValueError(f"{where}: bbox has a non-finite value {bbox!r}")
        if ann.get("iscrowd", 0):
            return
        if "area" in ann and not float(ann["area"]) > 0:
            return
        info = self._images[position[ann["image_id"]]]
        width, height = float(info["width"]), float(info["height"])
        x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
        x2, y2 = min(max(x + max(w, 0.0), 0.0), width), min(max(y + max(h, 0.0), 0.0), height)
        if x2 > x1 and y2 > y1:
            per_image[position[ann["image_id"]]].append(((x1, y1, x2, y2), self._class_of_cat[ann["category_id"]]))

    def __len__(self) -> int:
        return len(self._images)

    def _check_index(self, index) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        if not 0 <= index < len(self._images):
            raise IndexError(f"index {index} out of range for a dataset of {len(self._images)} images")
        return int(index)

    def image_path(self, index) -> Path:
        return self.images_dir / self._images[self._check_index(index)]["file_name"]

    def annotation(self, index):
        """(boxes (G, 4) xyxy float32, classes (G,) int64) of image ``index`` without reading the image."""
        index = self._check_index(index)
        return self._boxes[index].copy(), self._classes[index].copy()

    def __getitem__(self, index):
        index = self._check_index(index)
        info = self._images[index]
        path = self.images_dir / info["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"image file of image id {info['id']} not found: {path}")
        image = load_image(path)
        if image.shape[:2] != (int(info["height"]), int(info["width"])):
            raise ValueError(
                f"image {path} is {image.shape[1]}x{image.shape[0]} (WxH) but {self.ann_path} says "
                f"{info['width']}x{info['height']}"
            )
        return image, self._boxes[index].copy(), self._classes[index].copy(), info["id"]

    def coco_gt(self) -> dict:
        """The annotation JSON as loaded (a deep copy), for the COCO evaluator."""
        return copy.deepcopy(self._coco)
