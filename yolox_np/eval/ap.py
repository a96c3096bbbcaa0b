"""COCO's 101-point interpolated average precision of one precision-recall curve."""

from __future__ import annotations

import numpy as np

__all__ = ["RECALL_THRESHOLDS", "average_precision", "sample_precision_envelope"]

# the recall points of COCOeval (params.recThrs), computed exactly as it computes them
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


def _check_curve(recall, precision):
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if recall.ndim != 1 or precision.shape != recall.shape:
        raise ValueError(
            f"recall and precision must be 1-D arrays of one length, got shapes {recall.shape}, {precision.shape}"
        )
    for arr, name in ((recall, "recall"), (precision, "precision")):
        bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}[{i}] = {arr[i]} is not in [0, 1]")
    if recall.size > 1 and (np.diff(recall) < 0).any():
        i = int(np.flatnonzero(np.diff(recall) < 0)[0]) + 1
        raise ValueError(f"recall must be non-decreasing (detections sorted by score), recall[{i}] < recall[{i - 1}]")
    return recall, precision


def sample_precision_envelope(recall, precision, recall_thresholds=RECALL_THRESHOLDS):
    """Interpolated precision at each recall threshold, as COCOeval.accumulate computes it (no validation).

    The envelope p_interp(i) = max_{j >= i} precision[j] is read at the first point whose recall is >= the
    threshold (searchsorted, side "left"); thresholds beyond the last recall get 0.
    Returns ``(values, positions)``: (R,) float64 and the (R,) int64 positions read (>= len means none).
    """
    n = recall.shape[0]
    positions = np.searchsorted(recall, recall_thresholds, side="left")
    values = np.zeros(len(recall_thresholds), dtype=np.float64)
    if n:
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        inside = positions < n
        values[inside] = envelope[positions[inside]]
    return values, positions


def average_precision(recall, precision):
    """101-point interpolated AP (COCO) of one curve: (N,) recall (non-decreasing), (N,) precision -> float.

    Make precision monotone from the right (each point takes the best precision at any higher recall),
    read it at recall = 0, 0.01, ..., 1 (first point with recall >= the threshold; 0 past the last recall),
    and average the 101 values. An empty curve has AP 0.
    """
    recall, precision = _check_curve(recall, precision)
    ### BEGIN SOLUTION
    # HINT: right-to-left running max of precision, read at searchsorted(recall, linspace(0, 1, 101)), 0 past the end
    thresholds = np.linspace(0.0, 1.0, 101)
    sampled = np.zeros(thresholds.size)
    if recall.size:
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        idx = np.searchsorted(recall, thresholds, side="left")
        inside = idx < recall.size
        sampled[inside] = envelope[idx[inside]]
    return float(sampled.mean())
    ### END SOLUTION
