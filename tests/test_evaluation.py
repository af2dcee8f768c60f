"""kmine.evaluation directly: per-image Dice and IoU in both frames on real images, the
empty-mask convention, the summary and the files it writes.

Two kinds of student: stand-ins whose masks are known (so the expected scores are exact),
and a real, untrained U-Net++ (whose scores are recomputed here from the files)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kmine.data import load_image, scan_dataset
from kmine.evaluation import evaluate
from kmine.predict import Predictor
from shared_data import COVID, KVASIR, require

SIZE = 64


class BrightnessStudent(torch.nn.Module):
    """Logits high where the image is bright: a student whose mask is known from the image."""

    def forward(self, x):
        return (x.float().mean(1, keepdim=True) - 128) / 8


class NothingStudent(torch.nn.Module):
    """Finds nothing anywhere."""

    def forward(self, x):
        return torch.full_like(x[:, :1].float(), -10.0)


class RecordingPredictor(Predictor):
    """A Predictor that remembers the shape of every image it was asked about."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.shapes = []

    def predict(self, image, mode="student", **options):
        self.shapes.append(image.shape)
        return super().predict(image, mode, **options)


def _png(mask: np.ndarray, path: Path) -> None:
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


@pytest.fixture()
def kvasir_with_known_masks(tmp_path):
    """Four real Kvasir-SEG images of different sizes; each mask is the BrightnessStudent's own
    full-size prediction, except the last image's, which is its complement."""
    require(KVASIR)
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    sources = sorted((KVASIR / "images").iterdir())[:4]
    predictor = Predictor(BrightnessStudent(), size=SIZE)
    shapes = {}
    for i, source in enumerate(sources):
        _link(source, root / "images" / source.name)
        image = load_image(source)
        mask = predictor.predict(image).mask
        assert 0.05 < mask.mean() < 0.95  # a real region, not an empty or full mask
        _png(~mask if i == len(sources) - 1 else mask, root / "masks" / f"{source.stem}.png")
        shapes[source.stem] = image.shape
    assert len(set(shapes.values())) > 1  # the sizes differ: the full frame keeps each its own
    return root, [s.stem for s in sources], shapes


def test_full_frame_scores_each_image_at_its_own_size(kvasir_with_known_masks):
    root, stems, shapes = kvasir_with_known_masks
    predictor = RecordingPredictor(BrightnessStudent(), size=SIZE)
    report = evaluate(predictor, scan_dataset(root), stems, "student", "full", progress=False)
    assert predictor.shapes == [shapes[s] for s in stems]
    assert [r["stem"] for r in report.rows] == stems
    assert [(r["dice"], r["iou"]) for r in report.rows] == [(1.0, 1.0)] * 3 + [(0.0, 0.0)]
    summary = report.summary
    assert (summary["n"], summary["mode"], summary["frame"]) == (4, "student", "full")
    assert summary["dice_mean"] == pytest.approx(0.75) and summary["iou_mean"] == pytest.approx(0.75)
    assert summary["dice_std"] == pytest.approx(np.std([1, 1, 1, 0]))


def test_crop_frame_scores_the_centre_crop_at_the_training_size(kvasir_with_known_masks):
    root, stems, _ = kvasir_with_known_masks
    predictor = RecordingPredictor(BrightnessStudent(), size=SIZE)
    report = evaluate(predictor, scan_dataset(root), stems, "student", "crop", progress=False)
    assert predictor.shapes == [(SIZE, SIZE, 3)] * 4  # the image, shortest side to 64, centre-cropped
    # The mask went through the same crop: the student's own mask still matches, up to resampling
    # at the region's edge, and its complement still does not.
    dice = [r["dice"] for r in report.rows]
    assert min(dice[:3]) > 0.9 and dice[3] < 0.1, dice
    assert all(0 <= r["iou"] <= r["dice"] <= 1 for r in report.rows)
    assert report.summary["frame"] == "crop"


@pytest.fixture()
def covid_three():
    require(COVID)
    stems = ["Normal (1)", "covid_1579", "non_COVID (11905)"]
    return scan_dataset(COVID), stems


def _truth(stem: str) -> np.ndarray:
    return np.array(Image.open(COVID / "masks" / f"{stem}.png").convert("L")) >= 128


def _dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    inter, total = np.sum(pred & truth), pred.sum() + truth.sum()
    return (1.0, 1.0) if total == 0 else (2 * inter / total, inter / (total - inter))


def _quickly_trained_student(stems: list[str]):
    """A real U-Net++ (random initial weights, fixed seed) after 15 steps on the images' 64-px
    centre crops: its masks are neither empty nor right."""
    from kmine.data import load_mask, resize_mask_shortest_center_crop, resize_shortest_center_crop
    from kmine.student import build_student

    torch.manual_seed(0)
    student = build_student(pretrained=False)
    images = [resize_shortest_center_crop(load_image(COVID / "images" / f"{s}.png"), SIZE) for s in stems]
    masks = [resize_mask_shortest_center_crop(load_mask(COVID / "masks" / f"{s}.png"), SIZE) for s in stems]
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    y = torch.from_numpy(np.stack(masks))[:, None].float()
    optimiser = torch.optim.Adam(student.parameters(), lr=3e-3)
    student.train()
    for _ in range(15):
        optimiser.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(student(x), y).backward()
        optimiser.step()
    return student.eval()


def test_quickly_trained_student_scores_match_the_files(covid_three, tmp_path):
    """Each row's Dice and IoU are those of the student's own prediction against the mask
    file, computed here from the files; the CSV and summary JSON say the same."""
    index, stems = covid_three
    predictor = Predictor(_quickly_trained_student(stems), size=SIZE)
    report = evaluate(predictor, index, stems, "student", "full", progress=False)
    for row in report.rows:
        pred = predictor.predict(load_image(COVID / "images" / f"{row['stem']}.png")).mask
        dice, iou = _dice_iou(pred, _truth(row["stem"]))
        assert (row["dice"], row["iou"]) == (pytest.approx(dice), pytest.approx(iou))
    assert len({r["dice"] for r in report.rows}) == 3  # three images, three different scores
    assert all(0 < r["dice"] < 1 for r in report.rows)

    csv_path, json_path = report.write(tmp_path / "out", name="test_student_full")
    assert (csv_path.name, json_path.name) == ("test_student_full_per_image.csv", "test_student_full_summary.json")
    with open(csv_path, newline="") as f:
        written = list(csv.DictReader(f))
    assert [(r["stem"], float(r["dice"]), float(r["iou"])) for r in written] == [
        (r["stem"], pytest.approx(r["dice"]), pytest.approx(r["iou"])) for r in report.rows
    ]
    summary = json.loads(json_path.read_text())
    assert summary == pytest.approx(report.summary)
    assert summary["dice_mean"] == pytest.approx(np.mean([r["dice"] for r in report.rows]))
    assert summary["empty_convention"] == "both empty = 1, one empty = 0"


@pytest.mark.parametrize("frame", ["crop", "full"])
def test_empty_masks_follow_the_convention(covid_three, tmp_path, frame):
    """Nothing predicted: 0 against the real lung masks, 1 where the mask is empty too."""
    index, stems = covid_three
    predictor = Predictor(NothingStudent(), size=SIZE)
    report = evaluate(predictor, index, stems, "student", frame, progress=False)
    assert [(r["dice"], r["iou"]) for r in report.rows] == [(0.0, 0.0)] * 3

    root = tmp_path / "empty"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem in stems:
        _link(COVID / "images" / f"{stem}.png", root / "images" / f"{stem}.png")
        _png(np.zeros_like(_truth(stem)), root / "masks" / f"{stem}.png")
    report = evaluate(predictor, scan_dataset(root), stems, "student", frame, progress=False)
    assert [(r["dice"], r["iou"]) for r in report.rows] == [(1.0, 1.0)] * 3
    assert report.summary["dice_std"] == 0.0


def test_bad_frame_and_unlabelled_images_are_named(covid_three, tmp_path):
    index, stems = covid_three
    predictor = Predictor(NothingStudent(), size=SIZE)
    with pytest.raises(ValueError, match="frame whole unknown"):
        evaluate(predictor, index, stems, frame="whole", progress=False)
    root = tmp_path / "unlabelled"
    (root / "images").mkdir(parents=True)
    _link(COVID / "images" / "covid_1579.png", root / "images" / "covid_1579.png")
    with pytest.raises(ValueError, match="covid_1579 has no usable mask"):
        evaluate(predictor, scan_dataset(root), ["covid_1579"], progress=False)
