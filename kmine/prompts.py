"""Prompt extraction from the student's probability map (paper §2.3).

Coordinates are pixel indices of the image the probability map covers: ``x`` is the
column, ``y`` the row; a box is ``(x0, y0, x1, y1)`` with inclusive maxima, the
convention of SAM's own ``batched_mask_to_box``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PromptSet:
    """Prompts for one object in one image.

    points: (K, 2) float32 ``(x, y)``, or None.
    point_labels: (K,) int64, 1 = foreground, 0 = background; None when no points.
    box: (4,) float32 ``(x0, y0, x1, y1)``, or None.
    mask_logits: (H, W) float32 student logits in the image frame, or None; the teacher
        maps them into its own low-resolution mask-prompt frame.
    """

    points: np.ndarray | None = None
    point_labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask_logits: np.ndarray | None = None
