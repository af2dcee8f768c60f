import numpy as np
import pytest

from kmine.prompts import (
    PromptConfig,
    extract_prompts,
    mask_box,
    top_points,
    without_points,
)


def test_single_peak_and_box():
    prob = np.zeros((50, 60), np.float32)
    prob[10:20, 30:45] = 0.7
    prob[14, 37] = 0.95
    (s,) = extract_prompts(prob)
    assert s.points.tolist() == [[37.0, 14.0]]
    assert s.point_labels.tolist() == [1]
    assert s.box.tolist() == [30.0, 10.0, 44.0, 19.0]  # inclusive maxima
    assert s.mask_logits is None


def test_ties_broken_at_random_with_seed():
    prob = np.zeros((20, 20), np.float32)
    prob[5:15, 5:15] = 0.9  # 100 pixels share the maximum
    picks = {tuple(top_points(prob, 1, np.random.default_rng(seed))[0]) for seed in range(30)}
    assert len(picks) > 10  # not always the first pixel
    for x, y in picks:
        assert 5 <= x < 15 and 5 <= y < 15
    a = top_points(prob, 3, np.random.default_rng(7))
    b = top_points(prob, 3, np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert len({tuple(p) for p in a}) == 3


def test_more_points_than_ties_take_next_highest():
    prob = np.zeros((10, 10), np.float32)
    prob[2, 3] = 0.9
    prob[7, 8] = 0.8
    prob[5, 5] = 0.6
    pts = top_points(prob, 2, np.random.default_rng(0))
    assert pts.tolist() == [[3.0, 2.0], [8.0, 7.0]]


def test_empty_prediction_gives_no_prompts():
    assert extract_prompts(np.full((32, 32), 0.49, np.float32)) == []


def test_kinds():
    prob = np.zeros((30, 30), np.float32)
    prob[5:10, 5:10] = 0.8
    (pts,) = extract_prompts(prob, PromptConfig(kinds="points"))
    assert pts.box is None and pts.points is not None
    (box,) = extract_prompts(prob, PromptConfig(kinds="box"))
    assert box.points is None and box.box is not None
    (full,) = extract_prompts(prob, PromptConfig(kinds="points+box+mask"))
    assert full.mask_logits.shape == (30, 30)
    assert full.mask_logits[7, 7] > 0 > full.mask_logits[0, 0]
    with pytest.raises(ValueError, match="prompt kinds"):
        PromptConfig(kinds="mask")


def test_multiple_components_one_box_or_one_per_component():
    prob = np.zeros((40, 60), np.float32)
    prob[5:30, 5:20] = 0.8  # left lung
    prob[5:35, 35:55] = 0.7  # right lung
    prob[12, 10] = 0.9
    prob[20, 40] = 0.75
    prob[38, 0] = 0.6  # a speck below the minimum area
    (whole,) = extract_prompts(prob, PromptConfig.parse("points+box"))  # the paper: one box around all
    assert whole.box.tolist() == [0.0, 5.0, 54.0, 38.0]
    sets = extract_prompts(prob, PromptConfig.parse("per-component", min_component_area=10))
    assert len(sets) == 2
    boxes = sorted(s.box.tolist() for s in sets)
    assert boxes == [[5.0, 5.0, 19.0, 29.0], [35.0, 5.0, 54.0, 34.0]]
    peaks = sorted(s.points[0].tolist() for s in sets)
    assert peaks == [[10.0, 12.0], [40.0, 20.0]]  # each component's own peak


def test_per_component_keeps_largest_when_all_small():
    prob = np.zeros((20, 20), np.float32)
    prob[1:3, 1:3] = 0.9
    prob[10:13, 10:13] = 0.9
    sets = extract_prompts(prob, PromptConfig(per_component=True, min_component_area=100))
    assert len(sets) == 1 and sets[0].box.tolist() == [10.0, 10.0, 12.0, 12.0]


def test_per_component_prompts_at_most_the_largest_components():
    """A noisy student's blobs: only the max_components largest get a prompt set."""
    prob = np.zeros((40, 40), np.float32)
    sizes = [2, 3, 4, 5, 6]  # five square blobs of side 2..6
    for i, side in enumerate(sizes):
        prob[2 + 7 * i : 2 + 7 * i + side, 2 : 2 + side] = 0.9
    sets = extract_prompts(prob, PromptConfig(min_component_area=1, max_components=3))
    assert sorted(s.box[2] - s.box[0] + 1 for s in sets) == [4, 5, 6]
    assert len(extract_prompts(prob, PromptConfig(min_component_area=1))) == 5  # the default 8 keeps all
    with pytest.raises(ValueError, match="max_components"):
        PromptConfig(max_components=0)


def test_without_points_keeps_boxes():
    prob = np.zeros((20, 20), np.float32)
    prob[4:8, 4:8] = 0.9
    (s,) = without_points(extract_prompts(prob))
    assert s.points is None and s.box is not None


def test_mask_box():
    m = np.zeros((5, 5), bool)
    m[1, 2] = m[3, 4] = True
    assert mask_box(m).tolist() == [2.0, 1.0, 4.0, 3.0]
