"""Evaluation: per-image Dice and IoU, mean ± std, per-image CSV and summary JSON.

Masks are thresholded at 0.5 (student) or 0 logits (teacher). Empty masks: both empty
→ Dice = IoU = 1; one empty → 0 (see :mod:`kmine.metrics`).

Frames: ``crop`` is the paper's protocol (shortest side rescaled to the training size,
centre crop, scored there); ``full`` predicts on the whole image and scores at the
image's own resolution, as ``kmine predict`` delivers masks.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kmine.metrics import dice_iou, mean_std
from kmine.teacher.types import Teacher
from kmine.text import shown

FRAMES = ("crop", "full")


@dataclass
class EvalReport:
    rows: list[dict]  # stem, dice, iou
    mode: str
    frame: str

    @property
    def summary(self) -> dict:
        dice_m, dice_s = mean_std(r["dice"] for r in self.rows)
        iou_m, iou_s = mean_std(r["iou"] for r in self.rows)
        return {
            "n": len(self.rows),
            "mode": self.mode,
            "frame": self.frame,
            "dice_mean": dice_m,
            "dice_std": dice_s,
            "iou_mean": iou_m,
            "iou_std": iou_s,
            "empty_convention": "both empty = 1, one empty = 0",
        }

    def write(self, out_dir: str | Path, name: str = "eval") -> tuple[Path, Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        csv_path, json_path = out / f"{name}_per_image.csv", out / f"{name}_summary.json"
        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["stem", "dice", "iou"])
            writer.writeheader()
            writer.writerows(self.rows)
        json_path.write_text(json.dumps(self.summary, indent=2))
        return csv_path, json_path


def _pair(sample, frame: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    from kmine.data import load_image, load_mask, resize_mask_shortest_center_crop, resize_shortest_center_crop

    image, mask = load_image(sample.image_path), load_mask(sample.mask_path)
    if frame == "crop":
        return resize_shortest_center_crop(image, size), resize_mask_shortest_center_crop(mask, size)
    return image, mask


def evaluate(predictor, index, stems: list[str], mode: str = "student", frame: str = "crop", progress: bool = True,
             teacher: Teacher | None = None) -> EvalReport:
    """Score ``predictor`` (a :class:`kmine.predict.Predictor`) on labelled ``stems`` of ``index``;
    ``teacher`` refines in ``refine`` mode (default: the predictor's own)."""
    from tqdm.auto import tqdm  # here and in _pair, not above: the CLI's help reads FRAMES from this module

    if frame not in FRAMES:
        raise ValueError(f"frame {shown(frame)} unknown; choose one of {', '.join(FRAMES)}")
    rows = []
    bars = None if progress else True  # None: a bar on a terminal only
    for stem in tqdm(stems, desc=f"evaluate ({mode}, {frame})", disable=bars, unit="img", leave=False):
        sample = index[stem]
        if sample.mask_path is None:
            raise ValueError(f"{stem} has no usable mask in {index.root}; it cannot be scored")
        image, truth = _pair(sample, frame, predictor.size)
        pred = predictor.predict(image, mode, teacher=teacher).mask
        dice, iou = dice_iou(pred, truth)
        rows.append({"stem": stem, "dice": dice, "iou": iou})
    return EvalReport(rows, mode, frame)
