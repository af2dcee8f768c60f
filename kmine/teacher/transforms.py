"""The three coordinate frames of a SAM-like teacher, and the maps between them.

- ORIGINAL frame: the caller's image, (H, W). Prompts and outputs live here.
- INPUT frame: the image resized so its longest side is ``S`` (the model's input size),
  giving (h', w'), then padded bottom/right to S×S.
- MASK-PROMPT frame: the padded S×S square at the prompt encoder's ``mask_input_size``
  (256×256 for every backend here). The decoder's low-res logits are in this frame too.

Resizing follows ``segment_anything.utils.transforms.ResizeLongestSide`` exactly so that
prompts land where the model expects them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.transforms import ResizeLongestSide


def resized_shape(original_size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(H, W) -> (h', w') with the longest side ``long_side`` (ResizeLongestSide rounding)."""
    return ResizeLongestSide.get_preprocess_shape(original_size[0], original_size[1], long_side)


def resize_image(image: np.ndarray, long_side: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (h', w', 3) uint8, PIL bilinear with antialiasing, as SAM expects."""
    return ResizeLongestSide(long_side).apply_image(image)


def scale_coords(
    coords: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int]
) -> np.ndarray:
    """(..., 2) ``(x, y)`` in the original frame -> same shape in the input frame (float32).

    Scales x by w'/W and y by h'/H, like ``ResizeLongestSide.apply_coords``; boxes are
    two corners, so ``scale_coords(box.reshape(2, 2), ...).reshape(4)``.
    """
    coords = np.asarray(coords, dtype=np.float64).copy()
    coords[..., 0] *= input_size[1] / original_size[1]
    coords[..., 1] *= input_size[0] / original_size[0]
    return coords.astype(np.float32)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, C, h, w); antialias so downscaling does not alias."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def mask_to_prompt_frame(
    mask_logits: torch.Tensor,
    input_size: tuple[int, int],
    long_side: int,
    mask_input_size: tuple[int, int],
) -> torch.Tensor:
    """(H, W) logits in the original frame -> (1, *mask_input_size) mask prompt.

    Resize to the input frame (h', w'), pad bottom/right to S×S like the image, then resize
    to ``mask_input_size``. The padding gets the map's own minimum, i.e. its most confident
    background value, so the model sees "no object" there on the student's logit scale
    (0 would read as "unsure").
    """
    x = mask_logits.float()[None, None]
    x = _resize(x, input_size)
    pad_h, pad_w = long_side - input_size[0], long_side - input_size[1]
    x = F.pad(x, (0, pad_w, 0, pad_h), value=float(x.min()))
    return _resize(x, mask_input_size)[0]


def postprocess_masks(
    low_res: torch.Tensor,
    input_size: tuple[int, int],
    long_side: int,
    original_size: tuple[int, int],
) -> torch.Tensor:
    """(N, C, h, w) low-res logits -> (N, C, H, W) logits in the original frame.

    Upsample to the padded S×S input, crop the unpadded (h', w') region, resize to (H, W);
    the same steps as ``Sam.postprocess_masks``.
    """
    x = F.interpolate(low_res, (long_side, long_side), mode="bilinear", align_corners=False)
    x = x[..., : input_size[0], : input_size[1]]
    return F.interpolate(x, original_size, mode="bilinear", align_corners=False)
