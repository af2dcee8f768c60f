"""The Label view's pure parts: the clicks sent to SAM, and the mask editor's value.

The editor shows the mask burned into its background (green); two brushes mark pixels to add
(green) or remove (red) and the eraser takes strokes back. Gradio's ImageEditor does not show
layers handed to it from Python, so the mask cannot be an erasable layer of its own."""

from __future__ import annotations

import numpy as np
from PIL import Image

from webui import overlay

ADD, REMOVE = "#00c878", "#ff2d55"
CANVAS = 800  # the editor's canvas; images are shown with their longest side this long


def no_prompts() -> dict:
    """No clicks: points with their labels (1 object, 0 background), a box, a pending corner."""
    return {"points": [], "labels": [], "box": None, "corner": None}


def copy_prompts(prompts: dict) -> dict:
    """A copy to change: Gradio hands a state's value back to the next event as it was returned."""
    return {k: (list(v) if isinstance(v, list) else v) for k, v in prompts.items()}


def add_click(prompts: dict, kind: str, x: float, y: float) -> dict:
    """``prompts`` with a click at image pixel (x, y): an object (``fg``) or background (``bg``)
    point, or a box corner; the second corner completes the box."""
    prompts = copy_prompts(prompts)
    if kind == "box" and prompts["corner"] is None:
        prompts["corner"] = [x, y]
    elif kind == "box":
        prompts["box"], prompts["corner"] = [*prompts["corner"], x, y], None
    else:
        prompts["points"].append([x, y])
        prompts["labels"].append(1 if kind == "fg" else 0)
    return prompts


def undo_click(prompts: dict) -> dict:
    """``prompts`` without the last click: a pending corner first, then the last point, then the box."""
    prompts = copy_prompts(prompts)
    if prompts["corner"]:
        prompts["corner"] = None
    elif prompts["points"]:
        prompts["points"].pop()
        prompts["labels"].pop()
    else:
        prompts["box"] = None
    return prompts


def prompt_list(prompts: dict) -> list[dict]:
    """The user's prompts in the API's shape (a pending box corner shows as a point until the
    second corner is clicked)."""
    points = prompts["points"] + ([prompts["corner"]] if prompts["corner"] else [])
    labels = prompts["labels"] + ([1] if prompts["corner"] else [])
    if not points and not prompts["box"]:
        return []
    return [{"points": points, "point_labels": labels, "box": prompts["box"]}]


def render_prompts(current: dict, prompts: dict):
    """The image with its mask and the clicks so far, at the editor's size."""
    return overlay.render_large(current["rgb"], [(current["mask"], overlay.TRUTH, 0.4)], prompt_list(prompts),
                                longest=CANVAS)


def editor_value(current: dict) -> dict:
    """The editor's value: the image with its mask as the background, no strokes yet."""
    shown = np.asarray(overlay.render_large(current["rgb"], [(current["mask"], overlay.TRUTH, 0.4)], longest=CANVAS))
    return {"background": shown, "layers": [], "composite": shown}


def edited_mask(value: dict | None, mask: np.ndarray) -> np.ndarray:
    """``mask`` with the green strokes added and the red ones removed, at the mask's size."""
    strokes = _strokes(value)
    if strokes is None:
        return mask
    h, w = mask.shape
    add, remove = (np.asarray(Image.fromarray(m).resize((w, h), Image.Resampling.NEAREST)) > 0 for m in strokes)
    return (mask | add) & ~remove


def _strokes(value: dict | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(add, remove) uint8 masks of the brush strokes at display size; green strokes add, red
    ones remove (told apart by hue, which survives the brush's transparency)."""
    if not value:
        return None
    layers = [np.asarray(layer) for layer in value.get("layers") or [] if layer is not None]
    painted = [layer for layer in layers if layer.ndim == 3 and layer.shape[2] == 4]
    if not painted:
        return None
    rgba = np.stack(painted).astype(np.int16)
    touched = rgba[..., 3] > 0
    greener = rgba[..., 1] > rgba[..., 0]
    # (H, W) each; np.asarray because numpy types a reduction as "scalar or array"
    add = np.asarray((touched & greener).any(0))
    remove = np.asarray((touched & ~greener).any(0))
    return add.astype(np.uint8), remove.astype(np.uint8)
