"""Resizing, cropping, padding whole images for prediction and mapping back."""

from __future__ import annotations

import numpy as np
import pytest

from kmine.data import (
    load_image,
    load_mask,
    resize,
    resize_mask_shortest_center_crop,
    resize_shortest_center_crop,
    resize_shortest_pad,
    unpad_resize,
)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.mark.parametrize("size", [224, 256])
def test_shortest_side_crop_on_non_square_kvasir(kvasir_index, kvasir_non_square, size):
    for stem in kvasir_non_square:
        sample = kvasir_index[stem]
        image, mask = load_image(sample.image_path), load_mask(sample.mask_path)
        assert image.shape[0] != image.shape[1]
        out = resize_shortest_center_crop(image, size)
        out_mask = resize_mask_shortest_center_crop(mask, size)
        assert out.shape == (size, size, 3) and out.dtype == np.uint8 and out.flags.writeable
        assert out_mask.shape == (size, size) and out_mask.dtype == bool
        # the mask shrinks with its image: foreground share of the crop stays close
        full = resize_mask_shortest_center_crop(mask, min(mask.shape))
        assert abs(out_mask.mean() - full.mean()) < 0.02


def test_center_crop_keeps_the_middle():
    image = np.zeros((100, 300), np.uint8)
    image[:, 96:204] = 255  # the middle third (and 4 px of margin for the filter) bright
    out = resize_shortest_center_crop(image, 50)
    assert out.shape == (50, 50) and out.min() == 255


def test_shortest_pad_keeps_training_scale_and_round_trips(kvasir_index, kvasir_non_square):
    for stem in kvasir_non_square:
        mask = load_mask(kvasir_index[stem].mask_path)
        padded, meta = resize_shortest_pad(mask, 224)
        assert min(meta.new_height, meta.new_width) == 224  # the scale the student trained at
        assert padded.shape == (meta.padded_height, meta.padded_width) and padded.dtype == bool
        assert meta.padded_height % 32 == 0 and meta.padded_width % 32 == 0
        assert not padded[meta.new_height:].any() and not padded[:, meta.new_width:].any()
        back = unpad_resize(padded.astype(np.float32), meta) >= 0.5
        assert back.shape == mask.shape
        assert iou(back, mask) > 0.98, stem


def test_shortest_pad_hand_computed():
    image = np.full((100, 250, 3), 200, np.uint8)
    padded, meta = resize_shortest_pad(image, 64)
    # shortest side 100 -> 64, so 250 -> 160; padded to multiples of 32: 64 x 160
    assert (meta.new_height, meta.new_width, meta.padded_height, meta.padded_width) == (64, 160, 64, 160)
    padded, meta = resize_shortest_pad(np.full((90, 100, 3), 200, np.uint8), 64)
    assert (meta.new_height, meta.new_width) == (64, 71)
    assert padded.shape == (64, 96, 3) and (padded[:, :71] == 200).all() and (padded[:, 71:] == 0).all()


def test_shape_errors_are_actionable():
    _, meta = resize_shortest_pad(np.zeros((10, 20), np.uint8), 32)
    with pytest.raises(ValueError, match=r"\(32, 64\)"):
        unpad_resize(np.zeros((16, 16)), meta)
    with pytest.raises(ValueError, match="mask must be"):
        resize_mask_shortest_center_crop(np.zeros((4, 4, 3), bool), 2)


def test_resize_dtypes():
    assert resize(np.zeros((8, 8), np.uint16), 4, 4).dtype == np.float32
    assert resize(np.zeros((8, 8, 4), np.uint8), 4, 2).shape == (4, 2, 4)
    assert resize(np.ones((8, 8), bool), 3, 5).all()
