"""``benchmarks/pseudo_reliability.py``'s statistics: how a score that knows nothing of the
truth ranks pseudo-labels and finds the wrong ones. The run itself (a trained student, SAM on
hundreds of images) is a benchmark, not a test: see BENCHMARKS.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from kmine.training.strategy import PseudoStrategy, combine

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "pseudo_reliability.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("pseudo_reliability", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(dice: list[float], score: list[float]) -> list[dict]:
    return [{"image": i, "pseudo_dice": d, "student_dice": d, "score": s} for i, (d, s) in enumerate(zip(dice, score))]


def test_a_score_that_ranks_like_the_truth_keeps_the_best(bench):
    dice = [0.9, 0.2, 0.8, 0.95, 0.3, 0.85, 0.7, 0.6, 0.92, 0.88]
    out = {s["score"]: s for s in bench.summarise(_rows(dice, [d + 1 for d in dice]))}
    assert out["score"]["spearman"] == pytest.approx(1.0)
    assert out["score"]["auroc_wrong"] == 1.0  # both wrong ones (0.2, 0.3) score lowest
    assert out["score"]["kept_dice"]["0.8"] == pytest.approx(np.mean(sorted(dice)[2:]))
    assert out["score"]["threshold"]["0.8"] == pytest.approx(1.6)  # the lowest score kept
    assert out["score"]["kept_dice"] == out["oracle: the Dice itself"]["kept_dice"]


def test_a_backwards_score_finds_nothing(bench):
    dice = [0.9, 0.2, 0.8, 0.3]
    s = bench.summarise(_rows(dice, [-d for d in dice]))[0]
    assert s["spearman"] == pytest.approx(-1.0) and s["auroc_wrong"] == 0.0
    assert s["kept_dice"]["0.5"] == pytest.approx(0.25)


def test_scores_of_one_image(bench):
    prob = np.zeros((32, 32), np.float32)
    prob[8:24, 8:24] = 0.9
    same = np.where(prob >= 0.5, 5.0, -5.0).astype(np.float32)
    code = combine(prob, same, PseudoStrategy())
    agreed = bench.image_scores(prob, same, 0.95, code)
    assert agreed["IoU(student, SAM)"] == 1.0 and agreed["1 - doubtful pixels / label pixels"] == 1.0
    assert agreed["student's mean probability on its mask"] == pytest.approx(0.9)
    half = same.copy()
    half[8:24, 16:24] = -5.0  # SAM keeps the left half of the student's square
    differs = bench.image_scores(prob, half, 0.95, combine(prob, half, PseudoStrategy()))
    assert differs["IoU(student, SAM)"] == pytest.approx(0.5)
    assert differs["1 - doubtful pixels / label pixels"] < 1.0
