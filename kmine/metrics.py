"""Dice and IoU of binary masks.

Convention for empty masks: prediction and truth both empty → Dice = IoU = 1 (nothing
to find, nothing found); exactly one empty → 0.
"""

from __future__ import annotations

import numpy as np


def dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of two (H, W) boolean masks of the same shape."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    pred, truth = pred.astype(bool), truth.astype(bool)
    inter = np.logical_and(pred, truth).sum(dtype=np.int64)
    total = pred.sum(dtype=np.int64) + truth.sum(dtype=np.int64)
    if total == 0:
        return 1.0, 1.0
    union = total - inter
    return float(2 * inter / total), float(inter / union)


def mean_std(values) -> tuple[float, float]:
    """Mean and population standard deviation; (nan, nan) for no values."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std())
