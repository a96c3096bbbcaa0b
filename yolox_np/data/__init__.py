"""Datasets, augmentation and batching for training and evaluating YOLOX.

Both datasets share one interface: ``len(ds)``, ``ds[i] -> (image BGR uint8 (H, W, 3), boxes (G, 4) xyxy
float32, classes (G,) int64, image_id)``, ``ds.class_names`` and ``ds.coco_gt()`` (a COCO instances dict).
"""

from yolox_np.data.augment import (
    YoloxAugment,
    affine_boxes,
    affine_matrix,
    augment_hsv,
    bgr_to_hsv,
    bgr_to_hsv_numpy,
    hflip,
    hsv_to_bgr,
    hsv_to_bgr_numpy,
    invert_affine,
    mixup,
    mosaic,
    random_affine,
    train_transform,
    val_transform,
    warp_affine,
    warp_affine_numpy,
    xyxy_to_cxcywh,
)
from yolox_np.data.coco import CocoDataset
from yolox_np.data.loader import DataLoader
from yolox_np.data.preprocess import letterbox, load_image, resize_bilinear
from yolox_np.data.shapes import CLASS_NAMES, ShapesDataset, ShapesSample

__all__ = [
    "CLASS_NAMES",
    "CocoDataset",
    "DataLoader",
    "ShapesDataset",
    "ShapesSample",
    "YoloxAugment",
    "affine_boxes",
    "affine_matrix",
    "augment_hsv",
    "bgr_to_hsv",
    "bgr_to_hsv_numpy",
    "hflip",
    "hsv_to_bgr",
    "hsv_to_bgr_numpy",
    "invert_affine",
    "letterbox",
    "load_image",
    "mixup",
    "mosaic",
    "random_affine",
    "resize_bilinear",
    "train_transform",
    "val_transform",
    "warp_affine",
    "warp_affine_numpy",
    "xyxy_to_cxcywh",
]
