"""Registry and builders: names, checkpoints, errors, the per-process model cache."""

from __future__ import annotations

import pytest

from kmine.teacher import TEACHER_NAMES, build_teacher
from kmine.weights import WeightsError


def test_registry_names():
    assert set(TEACHER_NAMES) == {"mobilesam", "litemedsam", "sam_vit_b", "sam_vit_l", "sam_vit_h"}


def test_unknown_teacher_lists_known_names():
    with pytest.raises(ValueError, match="mobilesam.*litemedsam"):
        build_teacher("sam2")


@pytest.mark.parametrize("name, filename", [("sam_vit_b", "sam_vit_b_01ec64.pth"), ("sam_vit_h", "sam_vit_h_4b8939.pth")])
def test_missing_sam_checkpoint_names_the_file(weights_dir, name, filename):
    with pytest.raises(WeightsError, match=filename):
        build_teacher(name, weights_dir=weights_dir)


def test_missing_user_checkpoint(tmp_path):
    with pytest.raises(WeightsError, match="nope.pth"):
        build_teacher("litemedsam", checkpoint=tmp_path / "nope.pth")


def test_models_are_built_once(weights_dir, mobilesam, litemedsam):
    again = build_teacher("mobilesam", weights_dir=weights_dir)
    assert again.model is mobilesam.model  # no reload
    assert again.cache is not mobilesam.cache  # but each teacher gets its own default cache
    assert mobilesam.input_size == 1024 and mobilesam.supports_points
    assert mobilesam.mask_input_size == (256, 256) and litemedsam.mask_input_size == (256, 256)
    assert not any(p.requires_grad for p in mobilesam.model.parameters())
    assert not mobilesam.model.training


def test_user_checkpoint_overrides_weights_dir(weights_dir, litemedsam):
    teacher = build_teacher("litemedsam", checkpoint=weights_dir / "lite_medsam.pth", encode_batch_size=2)
    assert teacher.teacher_id == litemedsam.teacher_id  # same file, same content: same id
    assert teacher.encode_batch_size == 2
