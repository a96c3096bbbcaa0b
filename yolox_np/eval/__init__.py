"""Evaluation: COCO-style bbox AP/AR (``coco_eval``) and the 101-point interpolated AP of one curve."""

from yolox_np.eval.ap import RECALL_THRESHOLDS, average_precision
from yolox_np.eval.coco import AREA_RANGES, IOU_THRESHOLDS, MAX_DETS, SUMMARY_KEYS, coco_eval, format_summary

__all__ = [
    "coco_eval",
    "format_summary",
    "average_precision",
    "IOU_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "AREA_RANGES",
    "MAX_DETS",
    "SUMMARY_KEYS",
]
