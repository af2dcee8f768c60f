"""Helpers for the teacher tests: locations of the real data, synthetic images, metrics."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from kmine.prompts import PromptSet
from shared_data import COVID, SHARED, WEIGHTS  # noqa: F401  (re-exported to the teacher tests)

# One image per class of the sample: normal, COVID-19, non-COVID pneumonia.
COVID_NAMES = ["Normal (1).png", "covid_1579.png", "non_COVID (11905).png"]


def disc_image(shape: tuple[int, int], centre: tuple[int, int], radius: int) -> tuple[np.ndarray, np.ndarray]:
    """A bright disc on a dark background: (H, W, 3) uint8 image and (H, W) bool disc mask."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    disc = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2
    image = np.full((*shape, 3), 20, np.uint8)
    image[disc] = (230, 210, 190)
    return image, disc


def mask_box(mask: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) inclusive bounds of a non-empty bool mask, float32."""
    rows, cols = np.nonzero(mask)
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], np.float32)


def component_prompts(mask: np.ndarray) -> list[PromptSet]:
    """One box PromptSet per connected component of ``mask``."""
    labels, _ = ndimage.label(mask)
    return [PromptSet(box=mask_box(labels == i + 1)) for i in range(labels.max())]


def dice(pred: np.ndarray, target: np.ndarray) -> float:
    pred, target = np.asarray(pred, bool), np.asarray(target, bool)
    return float(2 * (pred & target).sum() / max(pred.sum() + target.sum(), 1))
