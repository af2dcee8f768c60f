"""Overlays drawn from the API's JSON with PIL: masks as tinted fills with outlines, prompt
points as markers, boxes as rectangles. No kmine import: the web UI is only an API client."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# colour-blind-safe pairs (Okabe-Ito): student orange, SAM sky blue, ground truth green
STUDENT = (230, 159, 0)
SAM = (86, 180, 233)
TRUTH = (0, 200, 120)
POINT = (255, 64, 160)
BOX = (255, 255, 255)


def decode_png_mask(data: bytes | str | None) -> np.ndarray | None:
    """A PNG (bytes or base64 text) as a boolean mask (foreground >= 128)."""
    if data is None:
        return None
    if isinstance(data, str):
        data = base64.b64decode(data)
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("L")) >= 128


def mask_to_png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def as_mask(image, size: tuple[int, int] | None = None) -> np.ndarray | None:
    """A user-supplied mask (PIL or array) as boolean, resized (nearest) to ``size`` (w, h)."""
    if image is None:
        return None
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image).astype(np.uint8))
    im = im.convert("L")
    if size and im.size != size:
        im = im.resize(size, Image.Resampling.NEAREST)
    return np.asarray(im) >= 128


def dice_iou(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of two boolean masks; both empty counts as 1 (as kmine's evaluation)."""
    inter = float(np.logical_and(a, b).sum())
    total = float(a.sum() + b.sum())
    union = float(np.logical_or(a, b).sum())
    if total == 0:
        return 1.0, 1.0
    return 2 * inter / total, inter / union


def _width(size: tuple[int, int]) -> int:
    return max(2, round(min(size) / 160))


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    k = 2 * (width // 2) + 1
    grown = np.asarray(im.filter(ImageFilter.MaxFilter(k))) > 0
    shrunk = np.asarray(im.filter(ImageFilter.MinFilter(k))) > 0
    return grown & ~shrunk


def render(image: np.ndarray, layers: list[tuple[np.ndarray | None, tuple[int, int, int], float]],
           prompts: list[dict] | None = None) -> Image.Image:
    """``image`` RGB uint8; ``layers``: (mask, colour, fill alpha) drawn in order with an outline;
    ``prompts``: the API's prompt list (points with labels, box) in image pixels."""
    out = np.asarray(image, dtype=np.float32)[..., :3].copy()
    if out.ndim == 2:
        out = np.stack([out] * 3, -1)
    h, w = out.shape[:2]
    width = _width((w, h))
    for mask, colour, alpha in layers:
        if mask is None:
            continue
        if mask.shape != (h, w):
            mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)) > 0
        c = np.array(colour, np.float32)
        out[mask] = out[mask] * (1 - alpha) + c * alpha
        out[_outline(mask, width)] = c
    pil = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    if prompts:
        draw = ImageDraw.Draw(pil)
        r = max(4, width * 2)
        for p in prompts:
            if p.get("box"):
                x0, y0, x1, y1 = p["box"]
                draw.rectangle([x0, y0, x1, y1], outline=BOX, width=width)
            labels = p.get("point_labels") or []
            for i, (x, y) in enumerate(p.get("points") or []):
                fg = labels[i] if i < len(labels) else 1
                draw.ellipse([x - r, y - r, x + r, y + r], fill=POINT if fg else (40, 40, 40),
                             outline=(255, 255, 255), width=max(1, width // 2))
    return pil


def fit_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``mask`` resized to ``size`` (w, h) smoothly (bilinear, then >= 0.5), so a small image's
    mask shown large keeps round edges instead of blocks."""
    plane = Image.fromarray(mask.astype(np.float32))
    return np.asarray(plane.resize(size, Image.Resampling.BILINEAR)) >= 0.5


def scale_prompts(prompts: list[dict] | None, scale: float) -> list[dict]:
    return [{"points": [[x * scale, y * scale] for x, y in p.get("points") or []],
             "point_labels": p.get("point_labels"),
             "box": [v * scale for v in p["box"]] if p.get("box") else None} for p in prompts or []]


def render_large(image: np.ndarray, layers: list[tuple[np.ndarray | None, tuple[int, int, int], float]],
                 prompts: list[dict] | None = None, longest: int = 800) -> Image.Image:
    """:func:`render` on the image resized so its longest side is ``longest`` pixels (masks and
    prompts follow), so small images are not shown as stamps and lines stay thin on big ones."""
    h, w = np.asarray(image).shape[:2]
    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    shown = np.asarray(Image.fromarray(np.asarray(image, dtype=np.uint8)[..., :3]).resize(size, Image.Resampling.BILINEAR))
    fitted = [(None if m is None else fit_mask(m, size), c, a) for m, c, a in layers]
    return render(shown, fitted, scale_prompts(prompts, scale))
