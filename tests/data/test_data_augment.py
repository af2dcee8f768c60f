"""Dihedral augmentation: joint application, op frequencies, inversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kmine.data import (
    ALL_OPS,
    IDENTITY,
    UNIQUE_OPS,
    DihedralOps,
    apply_dihedral,
    dihedral_views,
    invert_dihedral,
    random_dihedral,
)


@pytest.mark.parametrize("ops", ALL_OPS, ids=lambda o: "".join("1" if b else "0" for b in o))
def test_image_and_mask_stay_aligned(pattern, ops):
    mask = pattern[..., 0] % 7 == 0  # derived pixel-wise from the image
    image_out, mask_out = apply_dihedral(pattern, ops), apply_dihedral(mask, ops)
    assert (mask_out == (image_out[..., 0] % 7 == 0)).all()
    assert image_out.flags.c_contiguous and not np.shares_memory(image_out, pattern)
    assert (invert_dihedral(image_out, ops) == pattern).all()
    torch_out = apply_dihedral(torch.from_numpy(pattern).permute(2, 0, 1), ops)  # (C, H, W)
    assert (torch_out.permute(1, 2, 0).numpy() == image_out).all()


def test_single_ops_are_what_they_say():
    a = np.arange(6).reshape(2, 3)
    assert (apply_dihedral(a, DihedralOps(hflip=True)) == a[:, ::-1]).all()
    assert (apply_dihedral(a, DihedralOps(vflip=True)) == a[::-1]).all()
    assert (apply_dihedral(a, DihedralOps(rot90=True)) == np.rot90(a)).all()
    assert (apply_dihedral(a, DihedralOps(transpose=True)) == a.T).all()
    assert (apply_dihedral(a, IDENTITY) == a).all()


def test_random_dihedral_applies_one_draw_to_all(pattern):
    rng = np.random.default_rng(0)
    mask = pattern[..., 1] > 100
    pseudo = pattern[..., 2].astype(np.float32) / 255
    for _ in range(20):
        (image, m, p), ops = random_dihedral(rng, pattern, mask, pseudo)
        assert (image == apply_dihedral(pattern, ops)).all()
        assert (m == (image[..., 1] > 100)).all()
        assert np.allclose(p, image[..., 2] / 255)


def test_each_op_about_half_the_time():
    rng = np.random.default_rng(123)
    draws = np.array([random_dihedral(rng, np.zeros((4, 4)))[1] for _ in range(4000)])
    assert np.all(np.abs(draws.mean(axis=0) - 0.5) < 0.03), draws.mean(axis=0)
    assert len({tuple(d) for d in draws}) == 16


def test_random_dihedral_rejects_misaligned_or_non_square():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="square"):
        random_dihedral(rng, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="spatial size"):
        random_dihedral(rng, np.zeros((4, 4, 3)), np.zeros((5, 5)))


def test_views_cover_the_dihedral_group(pattern):
    views = dihedral_views(pattern)
    assert len(UNIQUE_OPS) == 8 and len(views) == 8
    assert len({v.tobytes() for _, v in views}) == 8
    assert len(dihedral_views(pattern, unique=False)) == 16
    for ops, view in views:  # test-time augmentation maps each prediction back
        assert (invert_dihedral(view, ops) == pattern).all()
