"""Coordinate frames: prompts, mask prompts and outputs map like segment-anything's own code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from kmine.data import as_rgb_uint8
from kmine.teacher.transforms import (
    mask_to_prompt_frame,
    postprocess_masks,
    resized_shape,
    scale_coords,
)


@pytest.mark.parametrize("size", [(224, 224), (180, 300), (333, 97), (1024, 768)])
@pytest.mark.parametrize("long_side", [1024, 256])
def test_scale_coords_matches_resize_longest_side(size, long_side):
    rng = np.random.default_rng(0)
    coords = rng.uniform(0, min(size), (5, 2))
    boxes = rng.uniform(0, min(size), (3, 4))
    input_size = resized_shape(size, long_side)
    transform = ResizeLongestSide(long_side)
    assert max(input_size) == long_side
    np.testing.assert_allclose(scale_coords(coords, size, input_size), transform.apply_coords(coords, size), rtol=1e-6)
    np.testing.assert_allclose(
        scale_coords(boxes.reshape(-1, 2, 2), size, input_size).reshape(-1, 4),
        transform.apply_boxes(boxes, size),
        rtol=1e-6,
    )


def test_mask_prompt_lands_in_the_unpadded_region():
    # 180x300 at 1024 input: (h', w') = (614, 1024); in the 256x256 prompt frame the image
    # covers rows [0, 153.5) and every column, the padding below gets the background value.
    logits = torch.full((180, 300), 5.0)
    logits[:, 150:] = -3.0  # right half background
    prompt = mask_to_prompt_frame(logits, resized_shape((180, 300), 1024), 1024, (256, 256))
    assert prompt.shape == (1, 256, 256)
    near = lambda region, value: torch.allclose(region, torch.full_like(region, value), atol=1e-4)  # noqa: E731
    assert near(prompt[0, :150, :120], 5.0)
    assert near(prompt[0, :150, 136:], -3.0)
    assert near(prompt[0, 156:], -3.0)


def test_mask_prompt_identity_when_frames_coincide():
    # LiteMedSAM: 256x256 image, 256 input, 256 prompt frame: nothing to resize or pad.
    logits = torch.randn(256, 256)
    prompt = mask_to_prompt_frame(logits, (256, 256), 256, (256, 256))
    torch.testing.assert_close(prompt[0], logits)


@pytest.mark.parametrize("original_size", [(224, 224), (180, 300)])
def test_postprocess_matches_sam(original_size):
    class _Encoder:  # Sam.postprocess_masks only reads image_encoder.img_size
        img_size = 1024

    class _FakeSam:
        image_encoder = _Encoder()

    low_res = torch.randn(2, 3, 256, 256)
    input_size = resized_shape(original_size, 1024)
    expected = Sam.postprocess_masks(_FakeSam(), low_res, input_size, original_size)
    torch.testing.assert_close(postprocess_masks(low_res, input_size, 1024, original_size), expected)


def test_as_rgb_uint8():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = as_rgb_uint8(grey)
    assert rgb.shape == (3, 4, 3) and np.array_equal(rgb[..., 2], grey)
    assert as_rgb_uint8(grey[..., None]).shape == (3, 4, 3)
    with pytest.raises(ValueError, match="uint8"):
        as_rgb_uint8(grey.astype(np.float32))
    with pytest.raises(ValueError, match="HxW"):
        as_rgb_uint8(np.zeros((3, 4, 4), np.uint8))
