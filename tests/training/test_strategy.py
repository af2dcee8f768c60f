"""Pseudo-label strategies: the rules on exact arrays, and runs with the real teacher."""

import numpy as np
import pytest
import torch

from kmine.prompts import PromptConfig, PromptSet, extract_prompts
from kmine.training import train
from kmine.training.pseudo import scale_prompts
from kmine.training.strategy import PseudoStrategy, code_mask, combine, split_code


def _disc(size, cx, cy, r):
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2


def test_rules_pick_the_masks_they_name():
    student = _disc(64, 32, 32, 10)
    teacher = _disc(64, 34, 32, 12)
    prob = np.where(student, 0.9, 0.1)
    logits = np.where(teacher, 8.0, -8.0)
    assert np.array_equal(code_mask(combine(prob, logits, PseudoStrategy())), teacher)
    assert np.array_equal(code_mask(combine(prob, logits, PseudoStrategy(label="student"))), student)
    # A confident teacher wins the pixel vote where the student is unsure (0.9 / 0.1).
    assert np.array_equal(code_mask(combine(prob, logits, PseudoStrategy(label="fuse"))), teacher)
    # A weak teacher (|logit| small) loses it: the student's mask stands.
    weak = np.where(teacher, 0.5, -0.5)
    assert np.array_equal(code_mask(combine(prob, weak, PseudoStrategy(label="fuse"))), student)
    iou = (student & teacher).sum() / (student | teacher).sum()
    assert np.array_equal(code_mask(combine(prob, logits, PseudoStrategy(label="gate", gate_iou=iou - 0.01))), teacher)
    assert np.array_equal(code_mask(combine(prob, logits, PseudoStrategy(label="gate", gate_iou=iou + 0.01))), student)
    assert combine(prob, logits, PseudoStrategy(min_agreement=iou + 0.01)) is None


def test_doubt_weights_mark_exactly_the_disagreeing_pixels():
    student, teacher = _disc(32, 16, 16, 6), _disc(32, 18, 16, 6)
    code = combine(np.where(student, 0.9, 0.1), np.where(teacher, 5.0, -5.0), PseudoStrategy(doubt_weight=0.25))
    target, weight = split_code(torch.from_numpy(code).float()[None, None], 0.25)
    assert torch.equal(target[0, 0].bool(), torch.from_numpy(teacher))
    assert torch.equal(weight[0, 0] == 0.25, torch.from_numpy(student != teacher))
    assert split_code(torch.from_numpy(code)[None, None], 1.0)[1] is None


def test_prompts_scale_to_the_larger_crop_pixel_centre_to_pixel_centre():
    prob = np.zeros((8, 8), dtype=np.float32)
    prob[2:4, 1:6] = 0.9
    prob[3, 5] = 1.0
    (s,) = extract_prompts(prob, PromptConfig(kinds="points+box+mask"))
    (big,) = scale_prompts([s], 4, 32)
    assert np.allclose(big.points, [[21.5, 13.5]])  # pixel (5, 3) covers 20..23 × 12..15
    assert np.allclose(big.box, [4, 8, 23, 15])  # columns 1..5 → 4..23, rows 2..3 → 8..15
    assert big.mask_logits.shape == (32, 32)


def test_negative_points_lie_inside_the_box_on_confident_background():
    prob = np.zeros((40, 40), dtype=np.float32)
    prob[10:30, 10:30] = _disc(20, 10, 10, 10) * 0.95  # a disc: its box corners are background
    (s,) = extract_prompts(prob, PromptConfig(negatives=2))
    assert list(s.point_labels) == [1, 0, 0]
    x0, y0, x1, y1 = s.box
    for x, y in s.points[1:]:
        assert x0 <= x <= x1 and y0 <= y <= y1 and prob[int(y), int(x)] < 0.5
    with pytest.raises(ValueError, match="negatives"):
        PromptConfig(negatives=-1)


def test_unknown_rules_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="teacher, student, fuse, gate"):
        PseudoStrategy(label="vote")
    with pytest.raises(ValueError, match="teacher_size"):
        PseudoStrategy(teacher_size=8)
    with pytest.raises(ValueError, match="tta_views must be one of 2, 4, 8, got 3"):
        PseudoStrategy(tta_views=3)


def test_extended_control_trains_labelled_images_only(small_config, tmp_path):
    result = train(small_config(schedule="extended"), tmp_path)
    second = [r for r in result.history if r["phase"] == "mining"]
    assert len(second) == 2
    assert all(r["encode_calls"] == 0 and r["decode_calls"] == 0 and r["pseudo_loss"] == 0 for r in second)


def test_continuous_with_a_larger_teacher_crop_tta_and_doubt_weights(small_config, tmp_path):
    config = small_config(
        schedule="continuous",
        strategy={"teacher_size": 256, "tta": True, "label": "fuse", "doubt_weight": 0.5, "multimask": "agree"},
    )
    from kmine.training import Trainer

    trainer = Trainer(config, tmp_path, score_true_box=True)
    result = trainer.fit()
    mining = [r for r in result.history if r["phase"] == "mining"]
    assert all(r["pseudo_made"] > 0 for r in mining)
    assert all(0 <= r["quality_pseudo_dice"] <= 1 and 0 <= r["quality_truebox_dice"] <= 1 for r in mining)
    # The teacher saw 256-px crops: its cached encodings know their input size.
    sizes = {tuple(e.original_size) for e in trainer.teacher.cache._items.values()}
    assert sizes == {(256, 256)}


def test_true_box_ceiling_prompts_each_true_component(tmp_path):
    """SAM's ceiling is scored with one true box per component of the true mask: on a chest
    X-ray (two lungs) that beats one box around both (here 0.957 against 0.940)."""
    from PIL import Image

    from kmine.data.preprocess import resize_shortest_center_crop
    from kmine.metrics import dice_iou
    from kmine.prompts import components, mask_box
    from kmine.teacher import build_teacher
    from kmine.training.pseudo import PseudoLabeler, PseudoStats
    from shared_data import COVID, WEIGHTS, require

    require(WEIGHTS)
    name = sorted((require(COVID) / "images").iterdir())[0].name
    image = resize_shortest_center_crop(np.asarray(Image.open(COVID / "images" / name).convert("RGB")), 256)
    truth = resize_shortest_center_crop(np.asarray(Image.open(COVID / "masks" / name).convert("L")), 256) >= 128
    assert len(components(truth, 64)) == 2
    teacher = build_teacher("mobilesam", weights_dir=WEIGHTS, device="cpu")
    labeler = PseudoLabeler(teacher, PromptConfig(), PseudoStrategy(teacher_size=None))
    (encoding,) = teacher.encode([image])
    stats = PseudoStats()
    labeler._score_true_box([encoding], [truth], 1.0, 256, stats)
    (one_box,) = teacher.decode([encoding], [[PromptSet(box=mask_box(truth))]])
    whole = dice_iou(one_box.logits.numpy() > 0, truth)[0]
    assert stats.truebox_dice[0] > 0.9 and stats.truebox_dice[0] > whole + 0.01, (stats.truebox_dice, whole)
