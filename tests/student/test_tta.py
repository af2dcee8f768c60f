"""Test-time augmentation over the 8 dihedral views, on a real image with the ImageNet student."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from kmine.data import load_image
from kmine.student import build_student, tta_probs
from shared_data import KVASIR, require


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Two real Kvasir-SEG images as a (2, 3, 96, 96) uint8 batch."""
    paths = sorted(require(KVASIR / "images").glob("*.jpg"))[:2]
    arrays = [np.asarray(Image.fromarray(load_image(p)).resize((96, 96))) for p in paths]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def student(lite0_checkpoint) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_student("timm-tf_efficientnet_lite0", pretrained=True)


def test_probabilities_in_the_input_frame(student, images):
    student.train()
    probs = tta_probs(student, images)
    assert student.training, "tta_probs must restore the student's mode"
    assert probs.shape == (2, 96, 96) and probs.dtype == torch.float32
    assert 0 <= float(probs.min()) and float(probs.max()) <= 1
    # The mean over views is not any single view's answer, but stays close to the plain one
    # (the same student, an ImageNet encoder and a random decoder, sees the same image).
    student.eval()
    with torch.inference_mode():
        plain = torch.sigmoid(student(images))[:, 0]
    assert not torch.allclose(probs, plain, atol=1e-4)
    assert float((probs - plain).abs().mean()) < 0.1


def test_mean_over_the_group_is_equivariant(student, images):
    # Averaging over all 8 dihedral views: flipping the input flips the output.
    flipped = tta_probs(student, torch.flip(images, dims=[-1]))
    torch.testing.assert_close(flipped, torch.flip(tta_probs(student, images), dims=[-1]), rtol=0, atol=1e-5)


def test_non_square_images_take_the_flips_only(student):
    # Rotations and transposes swap height and width; the 4 flips keep a non-square frame.
    images = torch.randint(0, 256, (1, 3, 64, 96), dtype=torch.uint8)
    assert tta_probs(student, images, views=4).shape == (1, 64, 96)
    with pytest.raises(ValueError, match="8 views needs square images, got \\(64, 96\\)"):
        tta_probs(student, images)


@pytest.mark.parametrize(("views", "flip_dims"), [(2, (-1,)), (4, (-1,)), (4, (-2,)), (4, (-2, -1))])
def test_fewer_views_are_a_subgroup(student, images, views, flip_dims):
    # The first 2 views (identity, left-right flip) and the first 4 (the flips) are groups too:
    # the mean over them commutes with their own flips.
    flipped = tta_probs(student, torch.flip(images, dims=flip_dims), views=views)
    torch.testing.assert_close(flipped, torch.flip(tta_probs(student, images, views=views), dims=flip_dims), rtol=0, atol=1e-5)


def test_one_view_is_the_plain_forward(student, images):
    student.eval()
    with torch.inference_mode():
        plain = torch.sigmoid(student(images))[:, 0]
    torch.testing.assert_close(tta_probs(student, images, views=1), plain, rtol=0, atol=1e-6)


@pytest.mark.parametrize("views", [0, 9])
def test_view_counts_outside_the_group_are_refused(student, images, views):
    with pytest.raises(ValueError, match=f"1 to 8 views, got {views}"):
        tta_probs(student, images, views=views)
