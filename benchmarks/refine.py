"""Refine against the student alone, on images training never saw (issue 17).

    python benchmarks/refine.py runs/experiments/kvasir-low/kvasir-seg/l10/supervised-s0/best.pt \
        --subset test --out benchmarks/results/refine/l10-supervised-s0.json

For each checkpoint: every image of the split's ``--subset`` (default ``test``: the fixed test
part of configs/splits/kvasir-seg-test100.json) predicted in every mode of
:data:`kmine.predict.MODES`, on the whole image (``full`` frame, as ``kmine predict`` and the
API deliver masks), scored against its true mask. Prints, from one run, each mode's Dice and
IoU, its difference from the student alone, the share of images it improves, and its time
per image; the teacher's encodings are cached in memory, so they are counted once, in the
first mode that runs the teacher (and for the first checkpoint only: later ones share the teacher).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from kmine.data import load_split, scan_dataset
from kmine.evaluation import evaluate
from kmine.predict import MODES, TEACHER_MODES, Predictor
from kmine.student import read_student_checkpoint
from kmine.teacher import build_teacher


def score(checkpoint: Path, subset: str, frame: str, teachers: dict, teacher_name: str | None, limit: int | None) -> dict:
    """``teachers``: by name, shared by the checkpoints, so each image is encoded once per run."""
    config = read_student_checkpoint(checkpoint)["extra"]["config"]
    split = load_split(config["split"]) if config.get("split") else load_split(Path(config["data"]) / "split.json")
    stems = getattr(split, subset)[:limit]
    index = scan_dataset(config["data"])
    name = teacher_name or config["teacher"]
    if name not in teachers:
        teachers[name] = build_teacher(name, cache_items=len(stems) + 8)
    teacher = teachers[name]
    predictor = Predictor.from_checkpoint(checkpoint)
    modes = {}
    for mode in MODES:
        t0 = time.perf_counter()
        report = evaluate(predictor, index, stems, mode, frame, teacher=teacher if mode in TEACHER_MODES else None)
        modes[mode] = {"rows": report.rows, **report.summary, "seconds_per_image": (time.perf_counter() - t0) / len(stems)}
    student = np.array([r["dice"] for r in modes["student"]["rows"]])
    for m in modes.values():
        dice = np.array([r["dice"] for r in m["rows"]])
        m["minus_student_points"] = float(100 * (dice.mean() - student.mean()))
        m["better_than_student"] = float((dice > student + 1e-9).mean())
        m["worse_than_student"] = float((dice < student - 1e-9).mean())
    return {"checkpoint": str(checkpoint), "subset": subset, "frame": frame, "n": len(stems),
            "teacher": teacher.name, "modes": modes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--subset", default="test")
    parser.add_argument("--frame", default="full", choices=("crop", "full"))
    parser.add_argument("--teacher", default=None, help="default: the checkpoint's own")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (a quick look)")
    parser.add_argument("--out", type=Path, default=None, help="JSON with every image's scores")
    args = parser.parse_args()
    teachers: dict = {}
    results = [score(c, args.subset, args.frame, teachers, args.teacher, args.limit) for c in args.checkpoints]
    print(f"machine: {platform.processor() or platform.machine()}, {platform.node()}")
    print("| checkpoint | mode | Dice | IoU | − student (points) | better / worse than student | s per image |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        for mode, m in r["modes"].items():
            print(f"| {Path(r['checkpoint']).parent.name} | {mode} | {m['dice_mean']:.3f} | {m['iou_mean']:.3f} | "
                  f"{m['minus_student_points']:+.1f} | {m['better_than_student']:.0%} / {m['worse_than_student']:.0%} | "
                  f"{m['seconds_per_image']:.2f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
