"""Overlays that show a prediction: masks tinted, prompts drawn."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from kmine.prompts import PromptSet

STUDENT_COLOUR = (255, 196, 0)  # amber
TEACHER_COLOUR = (0, 200, 255)  # cyan
BOX_COLOUR = (255, 64, 64)
POINT_COLOUR = (64, 255, 64)


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, iterations=max(1, width))


def render_overlay(
    image: np.ndarray,
    student_mask: np.ndarray | None = None,
    refined_mask: np.ndarray | None = None,
    prompts: list[PromptSet] | None = None,
    alpha: float = 0.35,
) -> np.ndarray:
    """(H, W, 3) uint8 picture: the student's mask tinted amber, SAM's cyan (outlined),
    boxes as red rectangles, points as green discs."""
    h, w = image.shape[:2]
    out = np.repeat(image[:, :, None], 3, 2) if image.ndim == 2 else image.copy()
    out = out.astype(np.float32)
    line = max(1, round(min(h, w) / 200))
    for mask, colour in ((student_mask, STUDENT_COLOUR), (refined_mask, TEACHER_COLOUR)):
        if mask is None or not mask.any():
            continue
        out[mask] = (1 - alpha) * out[mask] + alpha * np.array(colour, np.float32)
        out[_outline(mask, line)] = colour
    picture = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    radius = max(3, round(min(h, w) / 80))
    for s in prompts or []:
        if s.box is not None:
            draw.rectangle([float(v) for v in s.box], outline=BOX_COLOUR, width=line + 1)
        if s.points is not None:
            labels = s.point_labels if s.point_labels is not None else np.ones(len(s.points))  # unlabelled: foreground
            for (x, y), label in zip(s.points, labels):
                colour = POINT_COLOUR if label == 1 else BOX_COLOUR
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour, outline=(0, 0, 0))
    return np.asarray(picture)
