"""The click simulation of the NoC protocol on synthetic masks (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from kmine.clicks import MAX_CLICKS, Click, first_reach, next_click, simulate


def disc(shape: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    """(H, W) bool disc; centre is (row, col)."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def test_first_click_is_the_centre_of_the_object():
    target = disc((100, 120), (40, 70), 15)
    click = next_click(np.zeros_like(target), target)
    assert click == Click(70, 40, True)


def test_first_click_goes_to_the_largest_part():
    target = disc((100, 200), (50, 40), 10) | disc((100, 200), (50, 140), 25)
    click = next_click(np.zeros_like(target), target)
    assert click is not None and click.positive and (click.x, click.y) == (140, 50)


def test_first_click_inside_a_thin_object_touching_the_border():
    # An L-shape along the border: its centre must be an object pixel, not on the edge.
    target = np.zeros((60, 60), bool)
    target[:8, :] = True
    target[:, :8] = True
    click = next_click(np.zeros_like(target), target)
    assert click is not None and click.positive and target[click.y, click.x]
    assert 0 < click.x < 59 and 0 < click.y < 59


def test_false_positive_blob_gets_a_negative_click_at_its_centre():
    target = disc((100, 100), (30, 30), 12)
    blob = disc((100, 100), (70, 75), 9)
    click = next_click(target | blob, target)
    assert click == Click(75, 70, False)


def test_the_wider_error_side_wins():
    target = disc((100, 100), (50, 50), 30)
    pred = target.copy()
    pred[45:55, 45:55] = False  # a 10-px hole: false negative
    pred |= disc((100, 100), (10, 90), 3)  # a tiny false positive
    click = next_click(pred, target)
    assert click is not None and click.positive and not pred[click.y, click.x] and target[click.y, click.x]


def test_no_click_when_the_mask_is_right():
    target = disc((50, 50), (25, 25), 10)
    assert next_click(target, target) is None
    with pytest.raises(ValueError, match="shape"):
        next_click(target, target[:10])


def test_first_reach():
    assert first_reach([0.0, 0.5, 0.86, 0.91], 0.85) == 2
    assert first_reach([0.0, 0.5, 0.86, 0.91], 0.90) == 3
    assert first_reach([0.95], 0.90) == 0  # a good start costs no click
    assert first_reach([0.0] + [0.5] * 25, 0.85) == MAX_CLICKS
    assert first_reach([0.0] * 21 + [1.0], 0.85) == MAX_CLICKS  # click 21 does not count


def test_simulate_reaches_the_target_with_a_model_that_follows_the_clicks():
    target = disc((80, 80), (40, 40), 20)

    def answer(click: Click) -> np.ndarray:  # a perfect model: the first click gives the object
        return target.copy()

    run = simulate(np.zeros_like(target), answer, target)
    assert run.dices == [0.0, 1.0] and run.noc(0.90) == 1 and len(run.clicks) == 1


def test_impossible_case_counts_max_clicks():
    target = disc((80, 80), (40, 40), 20)
    seen: list[Click] = []

    def answer(click: Click) -> np.ndarray:  # a model that never finds anything
        seen.append(click)
        return np.zeros_like(target)

    run = simulate(np.zeros_like(target), answer, target)
    assert len(run.clicks) == MAX_CLICKS == len(seen)
    assert run.noc(0.85) == run.noc(0.90) == MAX_CLICKS
    assert all(c.positive for c in seen)


def test_simulate_stops_early_only_after_min_clicks():
    target = disc((80, 80), (40, 40), 20)
    run = simulate(target.copy(), lambda c: target.copy(), target, stop_at=0.9, min_clicks=0)
    assert run.clicks == [] and run.noc(0.9) == 0
    almost = target.copy()
    almost[38:42, 38:42] = False  # a small hole: Dice above 0.9 but not perfect

    def answer(click: Click) -> np.ndarray:
        return almost.copy()

    run = simulate(almost, answer, target, stop_at=0.9, min_clicks=3)
    assert len(run.clicks) == 3 and run.dice_after(5) == run.dices[-1]
