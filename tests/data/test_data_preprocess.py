"""Resizing, cropping, letterboxing and coordinate mapping."""

from __future__ import annotations

import numpy as np
import pytest

from kmine.data import (letterbox, letterbox_meta, letterbox_points, load_image, load_mask,
                        resize, resize_mask_shortest_center_crop, resize_shortest_center_crop,
                        unletterbox, unletterbox_box, unletterbox_points)


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


def test_letterbox_pads_bottom_right_and_round_trips(kvasir_index, kvasir_non_square):
    for stem in kvasir_non_square:
        mask = load_mask(kvasir_index[stem].mask_path)
        boxed, meta = letterbox(mask, 256)
        assert boxed.shape == (256, 256) and boxed.dtype == bool
        assert max(meta.new_height, meta.new_width) == 256
        assert not boxed[meta.new_height:].any() and not boxed[:, meta.new_width:].any()
        back = unletterbox(boxed.astype(np.float32), meta) >= 0.5
        assert back.shape == mask.shape
        assert iou(back, mask) > 0.98, stem


def test_letterbox_image_dtype_and_padding():
    image = np.full((30, 60, 3), 200, np.uint8)
    boxed, meta = letterbox(image, 32)
    assert boxed.shape == (32, 32, 3) and boxed.dtype == np.uint8
    assert (meta.new_height, meta.new_width) == (16, 32)
    assert (boxed[:16] == 200).all() and (boxed[16:] == 0).all()


def test_coordinate_mapping_exact_on_hand_computed_example():
    # 100 rows x 200 columns into 50: scale 1/4, image occupies 25 rows x 50 columns.
    meta = letterbox_meta(100, 200, 50)
    assert (meta.new_height, meta.new_width) == (25, 50)
    lb = np.array([[0, 0], [49, 24], [10, 5]], dtype=float)
    # pixel centres: x_orig = (x + 0.5) * 4 - 0.5
    expected = np.array([[1.5, 1.5], [197.5, 97.5], [41.5, 21.5]])
    np.testing.assert_array_equal(unletterbox_points(lb, meta), expected)
    np.testing.assert_array_equal(letterbox_points(expected, meta), lb)
    # a box covers whole pixels: [0, 50) x [0, 25) -> [0, 200) x [0, 100)
    np.testing.assert_array_equal(unletterbox_box([0, 0, 49, 24], meta), [0, 0, 199, 99])
    np.testing.assert_array_equal(unletterbox_box([10, 5, 10, 5], meta), [40, 20, 43, 23])


def test_coordinate_mapping_is_exact_inverse_with_rounded_sizes():
    meta = letterbox_meta(333, 517, 224)  # 333 * 224 / 517 = 144.3 -> 144 rows
    points = np.random.default_rng(0).uniform(0, 224, (50, 2))
    np.testing.assert_allclose(letterbox_points(unletterbox_points(points, meta), meta), points,
                               atol=1e-9)


def test_shape_errors_are_actionable():
    _, meta = letterbox(np.zeros((10, 20), np.uint8), 32)
    with pytest.raises(ValueError, match=r"\(32, 32\)"):
        unletterbox(np.zeros((16, 16)), meta)
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        unletterbox_points(np.zeros(2), meta)
    with pytest.raises(ValueError, match="mask must be"):
        resize_mask_shortest_center_crop(np.zeros((4, 4, 3), bool), 2)


def test_resize_dtypes():
    assert resize(np.zeros((8, 8), np.uint16), 4, 4).dtype == np.float32
    assert resize(np.zeros((8, 8, 4), np.uint8), 4, 2).shape == (4, 2, 4)
    assert resize(np.ones((8, 8), bool), 3, 5).all()
