"""Resizing images and masks to the student's square input, and mapping back.

Two framings:

* training: :func:`resize_shortest_center_crop` (paper: "re-scaled the images such that
  the shortest side was 224 pixels and used center cropping"); what the crop cuts off is
  never seen.
* prediction on whole images: :func:`resize_shortest_pad` keeps the training scale and
  pads bottom/right to a multiple of 32, so the whole image is seen; :func:`unpad_resize`
  maps a prediction back to the original pixels.

Coordinates are pixel indices, ``x`` the column and ``y`` the row; pixel ``i`` covers the
continuous interval ``[i, i + 1)``, so its centre is ``i + 0.5``.

All resizing is PIL's bilinear filter, which widens its support when shrinking (i.e. is
antialiased), so a 1920x1072 image shrunk 5x does not alias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    from PIL import Image  # on first use: kmine.predict (the CLI's MODES) imports this module

    _check_hw(array, "array")
    if array.dtype == np.bool_:
        return resize(array.astype(np.float32), height, width) >= 0.5
    if array.shape[:2] == (height, width):
        return array.copy() if array.dtype == np.uint8 else array.astype(np.float32)
    # RGB or L through PIL directly; RGBA would be resized alpha-premultiplied, so not here.
    if array.dtype == np.uint8 and (array.ndim == 2 or array.shape[2] == 3):
        return np.array(Image.fromarray(array).resize((width, height), Image.Resampling.BILINEAR))
    if array.ndim == 3:  # other channel counts / dtypes: one float plane at a time
        return np.stack([resize(array[..., c], height, width) for c in range(array.shape[2])], 2)
    plane = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    return np.array(plane.resize((width, height), Image.Resampling.BILINEAR))


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
class PadMeta:
    """How :func:`resize_shortest_pad` placed an (height, width) image.

    The resized image occupies rows ``[0, new_height)`` and columns ``[0, new_width)`` of a
    (padded_height, padded_width) array; the rest is zero padding (bottom and right, so
    the origin stays fixed and mapping back is a crop and a resize).
    """

    height: int
    width: int
    new_height: int
    new_width: int
    padded_height: int
    padded_width: int


def resize_shortest_pad(image: np.ndarray, size: int = 224, multiple: int = 32) -> tuple[np.ndarray, PadMeta]:
    """The whole image at the training scale: shortest side ``size`` (aspect kept), then
    zero-padded bottom/right to multiples of ``multiple`` (U-Net++ halves the input 5 times).

    Unlike a centre crop nothing is cut off, and unlike scaling the longest side to
    ``size`` objects keep the size in pixels the student learnt them at.
    image: (H, W[, C]). Returns ((H', W'[, C]) array of the kind :func:`resize` gives, meta).
    """
    _check_hw(image, "image")
    scale = size / min(image.shape[:2])
    new_h, new_w = (max(1, round(n * scale)) for n in image.shape[:2])
    resized = resize(image, new_h, new_w)
    pad_h, pad_w = -(-new_h // multiple) * multiple, -(-new_w // multiple) * multiple
    out = np.zeros((pad_h, pad_w) + resized.shape[2:], dtype=resized.dtype)
    out[:new_h, :new_w] = resized
    return out, PadMeta(image.shape[0], image.shape[1], new_h, new_w, pad_h, pad_w)


def unpad_resize(prob_map: np.ndarray, meta: PadMeta) -> np.ndarray:
    """Map a (padded_height, padded_width) map back to the original (H, W): crop the
    unpadded region, resize bilinearly. Returns (H, W) float32 (threshold it yourself)."""
    if prob_map.shape != (meta.padded_height, meta.padded_width):
        raise ValueError(f"prob_map must be ({meta.padded_height}, {meta.padded_width}) as the "
                         f"padded input it came from; got shape {tuple(prob_map.shape)}")
    region = np.asarray(prob_map[:meta.new_height, :meta.new_width], dtype=np.float32)
    return resize(region, meta.height, meta.width)


# Prediction scales an image so its shortest side is the student's size: a thin image would
# grow without bound (1×128 px became 224×28 672 and took the API's memory). These bound it.
MIN_SIDE = 8  # pixels on the shortest side
MAX_ASPECT = 10.0  # longest side / shortest side


def check_image_shape(height: int, width: int) -> None:
    """Refuse an image whose working size would be unbounded: a side under :data:`MIN_SIDE`
    pixels, or one side over :data:`MAX_ASPECT` times the other. Raises ValueError saying which."""
    short, long = sorted((height, width))
    if short < MIN_SIDE:
        raise ValueError(f"the image is {width}x{height} pixels; each side needs at least {MIN_SIDE}")
    if long / short > MAX_ASPECT:
        raise ValueError(f"the image is {width}x{height} pixels, {long / short:.0f} times longer than wide; "
                         f"at most {MAX_ASPECT:.0f} times is accepted")


# Prediction works on a copy of at most this many pixels: SAM sees an image at 1024 px on its
# longest side and the student at its size (224 px) on the shortest, so a larger copy holds no
# more of what they see, only memory: at 64 megapixels the full-size probability maps and SAM's
# masks per prompt set took GBs and tens of CPU seconds, at 25 megapixels with a 4-megapixel copy
# SAM's full-resolution logits still took 690 MB (benchmarks/hostile.py).
MAX_WORK_PIXELS = 1024 * 1024


def work_copy(image: np.ndarray) -> np.ndarray:
    """``image`` itself when it has at most :data:`MAX_WORK_PIXELS` pixels, else a copy scaled
    down to about that many, its aspect kept."""
    h, w = image.shape[:2]
    if h * w <= MAX_WORK_PIXELS:
        return image
    scale = (MAX_WORK_PIXELS / (h * w)) ** 0.5
    return resize(image, max(1, int(h * scale)), max(1, int(w * scale)))


def upscale_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) bool -> (height, width) bool, bilinear then thresholded, through uint8 (a
    float copy at a large target size would take four times the memory)."""
    return resize(mask.astype(np.uint8) * 255, height, width) >= 128


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1|3) uint8 -> contiguous (H, W, 3) uint8.

    Greyscale is replicated to three channels: the student and SAM encoders are RGB-only.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"images must be HxW or HxWx3, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


def uncrop_mask(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`resize_mask_shortest_center_crop` for an (S, S) bool mask: the
    (height, width) bool mask it came from, background outside the crop."""
    from PIL import Image

    size = crop.shape[0]
    scale = size / min(height, width)
    rh, rw = max(size, round(height * scale)), max(size, round(width * scale))
    canvas = np.zeros((rh, rw), dtype=np.uint8)
    top, left = (rh - size) // 2, (rw - size) // 2
    canvas[top:top + size, left:left + size] = crop.astype(np.uint8) * 255
    return np.asarray(Image.fromarray(canvas).resize((width, height), Image.Resampling.NEAREST)) >= 128


__all__ = [
    "MAX_ASPECT", "MIN_SIDE", "as_rgb_uint8", "check_image_shape",
    "resize", "resize_shortest_center_crop", "resize_mask_shortest_center_crop",
    "PadMeta", "resize_shortest_pad", "uncrop_mask", "unpad_resize",
]
