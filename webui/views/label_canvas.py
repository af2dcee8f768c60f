"""The Label view's canvas, drawn in the browser by ``webui/static/label_canvas.js``: what
Python hands it (an image to open, SAM's answers) and what it hands back (the prompts to ask
SAM for, the mask to save), all as JSON text through hidden fields.

The canvas keeps the prompts, brush strokes and their history itself, so a click costs only
SAM's decoder: coordinates go to the server, a 1-bit PNG of the mask comes back."""

from __future__ import annotations

import base64
import io
import json
import secrets
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "static" / "label_canvas.js"
HOST_ID = "kmine-canvas"

KEYS = [("drag", "box (mode B)"), ("click", "object point (mode P); Shift+click or right-click: background point"),
        ("O", "background point mode"), ("A / E", "brush that adds / erases"), ("[ / ]", "brush smaller / larger"),
        ("Ctrl+Z", "undo the last click or stroke"), ("wheel, + / −, 0", "zoom, reset"),
        ("Space+drag or middle drag", "pan"), ("S", "save"), ("N / →", "skip to the next image"),
        ("←", "previous image")]

# The canvas's markup; the script finds it by id and draws into it (gr.HTML runs no script).
MARKUP = f"""
<div id="{HOST_ID}" class="kmine-canvas" tabindex="0" data-answers="0" data-history="0" data-image="" data-opened="0">
  <div class="kmine-canvas-tools" role="toolbar" aria-label="labelling tools">
    <button type="button" data-mode="box" title="B">□ Box (B)</button>
    <button type="button" data-mode="pos" title="P">+ Object point (P)</button>
    <button type="button" data-mode="neg" title="O">− Background point (O)</button>
    <button type="button" data-mode="add" title="A">Brush adds (A)</button>
    <button type="button" data-mode="erase" title="E">Brush erases (E)</button>
    <label>size <input type="range" min="2" max="80" value="16" data-brush-size></label>
    <button type="button" data-action="undo" title="Ctrl+Z">↶ Undo (Ctrl+Z)</button>
    <button type="button" data-action="zoom-in">+</button><button type="button" data-action="zoom-out">−</button>
    <button type="button" data-action="zoom-reset">1:1</button>
    <span class="kmine-canvas-status" aria-live="polite"></span>
  </div>
  <canvas width="900" height="640" aria-label="image to label"></canvas>
  <div class="kmine-canvas-keys">{" · ".join(f"<b>{k}</b> {what}" for k, what in KEYS)}</div>
</div>
"""

STYLE = """
<style>
.kmine-hidden {display:none !important}
.kmine-canvas {outline:none}
.kmine-canvas canvas {display:block; width:100%; max-width:900px; background:#111; cursor:crosshair; touch-action:none}
.kmine-canvas-tools {display:flex; flex-wrap:wrap; gap:4px; align-items:center; margin-bottom:4px}
.kmine-canvas-tools button {padding:2px 8px; border:1px solid #888; border-radius:4px; background:#f4f4f5}
.kmine-canvas-tools button.active {background:#0072b2; color:#fff; border-color:#0072b2}
.kmine-canvas-status {margin-left:8px; font-variant-numeric:tabular-nums}
.kmine-canvas-keys {font-size:0.85em; margin-top:4px; color:#444}
</style>
"""


def head() -> str:
    """What the page's <head> needs for the canvas: its style and its script."""
    return STYLE + f"<script>\n{SCRIPT.read_text()}\n</script>"


def png_data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def mask_data_url(mask: np.ndarray | None) -> str | None:
    """A mask as a 1-bit PNG data URL (None: no mask), the form the canvas reads SAM's in."""
    if mask is None:
        return None
    buf = io.BytesIO()
    Image.fromarray(mask.astype(bool)).convert("1").save(buf, format="PNG")
    return png_data_url(buf.getvalue())


def open_payload(image_id: int, image_png: bytes, mask: np.ndarray | None) -> str:
    """What the canvas needs to open an image: the image and its start mask, and a token of
    this opening (the canvas opens each once: an event that leaves the field as it was must
    not wipe what was drawn)."""
    return json.dumps({"image_id": image_id, "image": png_data_url(image_png), "mask": mask_data_url(mask),
                       "open": secrets.token_hex(8)})


def read_json(text: str | None) -> dict:
    """A JSON object the page sent, or {} when it sent nothing usable."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def saved_mask(payload: dict, shape: tuple[int, int]) -> np.ndarray | None:
    """The mask the canvas shows (a PNG data URL, white on black), as a bool (H, W) array of
    ``shape``; None when the payload has none or it does not fit the image."""
    url = payload.get("mask_png")
    if not isinstance(url, str) or not url.startswith("data:image/png;base64,"):
        return None
    try:
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
            if im.size != (shape[1], shape[0]):  # read from the header: a wrong size is never decoded
                return None
            return np.asarray(im.convert("L")) >= 128
    except (ValueError, OSError, Image.DecompressionBombError):
        return None


def sam_request(payload: dict) -> dict:
    """The canvas's prompts as the API's ``sam/mask`` body."""
    return {"boxes": payload.get("boxes") or [], "points": payload.get("points") or [],
            "point_labels": payload.get("labels") or [], "previous": payload.get("previous") or None}
