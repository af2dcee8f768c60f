"""Resizing images and masks to the student's square input, and mapping back.

Two framings:

* training: :func:`resize_shortest_center_crop` (paper: "re-scaled the images such that
  the shortest side was 224 pixels and used center cropping"); what the crop cuts off is
  never seen.
* prediction on whole images: :func:`letterbox` scales the longest side to ``size`` and
  pads the bottom and right with zeros, so the whole image is seen; :func:`unletterbox`
  and :func:`unletterbox_points` map a prediction and prompt coordinates back to the
  original pixels.

Coordinates are pixel indices, ``x`` the column and ``y`` the row; pixel ``i`` covers the
continuous interval ``[i, i + 1)``, so its centre is ``i + 0.5``.

All resizing is PIL's bilinear filter, which widens its support when shrinking (i.e. is
antialiased), so a 1920x1072 image shrunk 5x does not alias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


def _check_hw(array: np.ndarray, name: str) -> None:
    if array.ndim not in (2, 3) or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{name} must be (H, W) or (H, W, C) with H, W >= 1; got shape "
                         f"{tuple(array.shape)}")


def resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear (antialiased) resize of (H, W) or (H, W, C) to (height, width[, C]).

    uint8 stays uint8; bool is resized as float and thresholded at 0.5 (smooth edges, no
    blocky nearest-neighbour steps, area kept on strong shrinking); other dtypes become
    float32.
    """
    _check_hw(array, "array")
    if array.dtype == np.bool_:
        return resize(array.astype(np.float32), height, width) >= 0.5
    if array.shape[:2] == (height, width):
        return array.copy() if array.dtype == np.uint8 else array.astype(np.float32)
    # RGB or L through PIL directly; RGBA would be resized alpha-premultiplied, so not here.
    if array.dtype == np.uint8 and (array.ndim == 2 or array.shape[2] == 3):
        return np.array(Image.fromarray(array).resize((width, height), Image.BILINEAR))
    if array.ndim == 3:  # other channel counts / dtypes: one float plane at a time
        return np.stack([resize(array[..., c], height, width) for c in range(array.shape[2])], 2)
    plane = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    return np.array(plane.resize((width, height), Image.BILINEAR))


def _shortest_side_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """Shape after scaling the shortest side to ``size`` (the longest side is rounded)."""
    scale = size / min(height, width)
    return max(size, round(height * scale)), max(size, round(width * scale))


def _center_crop(array: np.ndarray, size: int) -> np.ndarray:
    top = (array.shape[0] - size) // 2
    left = (array.shape[1] - size) // 2
    return np.ascontiguousarray(array[top:top + size, left:left + size])


def resize_shortest_center_crop(image: np.ndarray, size: int = 224) -> np.ndarray:
    """Scale so the shortest side is ``size``, then take the centre ``size`` x ``size``.

    image: (H, W, C) or (H, W) uint8 (or float). Returns (size, size[, C]) of the same kind.
    """
    _check_hw(image, "image")
    height, width = _shortest_side_shape(image.shape[0], image.shape[1], size)
    return _center_crop(resize(image, height, width), size)


def resize_mask_shortest_center_crop(mask: np.ndarray, size: int = 224) -> np.ndarray:
    """:func:`resize_shortest_center_crop` for a mask: (H, W) bool -> (size, size) bool.

    The mask is resized as a float in {0, 1} with the antialiased bilinear filter and
    thresholded at 0.5: edges stay smooth and a shrunk mask keeps its area, where
    nearest-neighbour would pick one arbitrary source pixel per output pixel.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W); got shape {tuple(mask.shape)}")
    return resize_shortest_center_crop(mask.astype(bool), size)


@dataclass(frozen=True)
class LetterboxMeta:
    """How :func:`letterbox` placed an (height, width) image in a size x size square.

    The image occupies rows ``[0, new_height)`` and columns ``[0, new_width)``; the rest is
    zero padding (bottom and right).
    """

    height: int
    width: int
    size: int
    new_height: int
    new_width: int

    @property
    def scale_x(self) -> float:
        """Letterbox pixels per original pixel along x (exact, after rounding)."""
        return self.new_width / self.width

    @property
    def scale_y(self) -> float:
        return self.new_height / self.height


def letterbox_meta(height: int, width: int, size: int) -> LetterboxMeta:
    """The placement :func:`letterbox` uses for an image of (height, width)."""
    scale = size / max(height, width)
    new_h = min(size, max(1, round(height * scale)))
    new_w = min(size, max(1, round(width * scale)))
    return LetterboxMeta(height, width, size, new_h, new_w)


def letterbox(image: np.ndarray, size: int = 224) -> tuple[np.ndarray, LetterboxMeta]:
    """Scale the longest side to ``size`` (aspect kept), pad bottom/right with zeros.

    image: (H, W, C) or (H, W); uint8, bool or float. Returns ((size, size[, C]) array of
    the same kind as :func:`resize` gives, meta). Padding at the bottom/right (not centred)
    keeps the origin fixed, so mapping coordinates back is a pure scaling.
    """
    _check_hw(image, "image")
    meta = letterbox_meta(image.shape[0], image.shape[1], size)
    resized = resize(image, meta.new_height, meta.new_width)
    out = np.zeros((size, size) + resized.shape[2:], dtype=resized.dtype)
    out[:meta.new_height, :meta.new_width] = resized
    return out, meta


def unletterbox(prob_map: np.ndarray, meta: LetterboxMeta) -> np.ndarray:
    """Map a (size, size) map from the letterbox frame to the original (H, W) frame.

    Crops the unpadded region and resizes it bilinearly. Returns (H, W) float32 (threshold
    it yourself: probabilities are interpolated, not masks).
    """
    if prob_map.shape[:2] != (meta.size, meta.size) or prob_map.ndim != 2:
        raise ValueError(f"prob_map must be ({meta.size}, {meta.size}) as the letterbox it "
                         f"came from; got shape {tuple(prob_map.shape)}")
    region = np.asarray(prob_map[:meta.new_height, :meta.new_width], dtype=np.float32)
    return resize(region, meta.height, meta.width)


def _as_points(points_xy: np.ndarray) -> np.ndarray:
    points = np.asarray(points_xy, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be (K, 2) (x, y); got shape {tuple(points.shape)}")
    return points


def unletterbox_points(points_xy: np.ndarray, meta: LetterboxMeta) -> np.ndarray:
    """Letterbox-frame pixel coordinates -> original-image pixel coordinates.

    points_xy: (K, 2) ``(x, y)``. Pixel centres map to pixel centres under the resize:
    ``x_orig = (x + 0.5) * width / new_width - 0.5`` (and likewise for y), the exact inverse
    of :func:`letterbox_points`. Returns (K, 2) float64, not rounded or clipped.
    """
    points = _as_points(points_xy)
    scale = np.array([1 / meta.scale_x, 1 / meta.scale_y])
    return (points + 0.5) * scale - 0.5


def letterbox_points(points_xy: np.ndarray, meta: LetterboxMeta) -> np.ndarray:
    """Original-image pixel coordinates -> letterbox-frame ones; inverse of
    :func:`unletterbox_points`. (K, 2) ``(x, y)`` -> (K, 2) float64."""
    points = _as_points(points_xy)
    scale = np.array([meta.scale_x, meta.scale_y])
    return (points + 0.5) * scale - 0.5


def unletterbox_box(box_xyxy: np.ndarray, meta: LetterboxMeta) -> np.ndarray:
    """A letterbox-frame box ``(x0, y0, x1, y1)`` with inclusive maxima -> original frame.

    The box covers the continuous interval ``[x0, x1 + 1)``; its edges (not pixel centres)
    are scaled, so a 1-pixel box grows to the several original pixels it covers. Returns
    (4,) float64 with inclusive maxima, clipped to the image.
    """
    box = np.asarray(box_xyxy, dtype=np.float64).reshape(4)
    sx, sy = 1 / meta.scale_x, 1 / meta.scale_y
    x0, y0 = box[0] * sx, box[1] * sy
    x1, y1 = (box[2] + 1) * sx - 1, (box[3] + 1) * sy - 1
    return np.array([max(x0, 0.0), max(y0, 0.0),
                     min(x1, meta.width - 1.0), min(y1, meta.height - 1.0)])


__all__ = [
    "resize", "resize_shortest_center_crop", "resize_mask_shortest_center_crop",
    "LetterboxMeta", "letterbox_meta", "letterbox", "unletterbox",
    "unletterbox_points", "letterbox_points", "unletterbox_box",
]
