"""Labelling effort: NoC@85 / NoC@90, clicks until Dice reaches 0.85 / 0.90 (issue 14).

    python benchmarks/noc.py --kvasir-student runs/noc-kvasir/best.pt --cxr-student runs/noc-cxr/best.pt \\
        --out benchmarks/results/noc-cpu2.json

Each case is one validation image. Clicks follow the standard protocol (:mod:`kmine.clicks`):
the next click at the centre of the widest error region, positive on a missed object pixel,
negative on a false positive, added to all earlier prompts, each answer decoded with the
previous one's low-resolution logits as the mask prompt (:mod:`kmine.click_session`); at
most 20 interactions, a case that never reaches the target counts 20. Settings:

- ``sam-clicks``: MobileSAM from clicks alone (the first click on an empty mask lands at the
  centre of the object's widest part);
- ``litemedsam-box``: LiteMedSAM with the ground-truth box, one per connected component of
  the mask, each box one interaction. LiteMedSAM takes boxes only (a point prompt ruins its
  masks), so no click follows: NoC is the number of boxes when their mask reaches the target,
  else 20;
- ``mobilesam-box``: the same boxes to MobileSAM, then corrective clicks (not in the issue: the
  point-taking counterpart of the box setting);
- ``kmine``: the trained student's prompts decoded by MobileSAM, as kmine's refine mode
  (click 0, free), then corrective clicks.

Encodings are cached on disk (``--cache-dir``), so a rerun only decodes. Results are merged
into ``--out`` by dataset and setting, so settings can run apart (``--settings``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kmine.click_session import ClickSession
from kmine.clicks import MAX_CLICKS, ClickRun, simulate
from kmine.data import load_image, load_mask, load_split, scan_dataset
from kmine.metrics import dice_iou
from kmine.predict import Predictor
from kmine.prompts import PromptSet, components, mask_box
from kmine.teacher import build_teacher
from kmine.teacher.types import Teacher

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SETTINGS = ("sam-clicks", "litemedsam-box", "mobilesam-box", "kmine")
THRESHOLDS = (0.85, 0.90)
DICE_AFTER = (0, 1, 3, 5)


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path
    split: Path  # the split whose val part is benchmarked (never seen by the student's training)


def datasets(data: Path) -> list[Dataset]:
    return [
        Dataset("kvasir-seg", data / "kvasir-seg", data / "kvasir-seg" / "split.json"),
        # cxr-lung has no fixed split: this one (seed 0, 30 % val) is kept with the results.
        Dataset("cxr-lung", data / "cxr-lung", ROOT / "benchmarks" / "results" / "noc" / "cxr-split-s0.json"),
    ]


# ------------------------------------------------------------------ one case per setting


def gt_boxes(target: np.ndarray) -> list[PromptSet]:
    """One box per connected component of the (H, W) bool truth, largest first; specks under
    2 % of the mask (JPEG noise, stray pixels) get none."""
    parts = components(target, min_area=max(64, int(0.02 * target.sum())))
    return [PromptSet(box=mask_box(part)) for part in parts]


def box_dices(teacher: Teacher, image: np.ndarray, boxes: list[PromptSet], target: np.ndarray) -> list[float]:
    """Dice after 0, 1, ... len(boxes) boxes (given largest first)."""
    (encoding,) = teacher.encode([image])
    decoded = teacher.decode([encoding] * len(boxes), [boxes[: k + 1] for k in range(len(boxes))])
    return [0.0] + [dice_iou(d.mask.numpy(), target)[0] for d in decoded if d is not None]


def run_clicks(session: ClickSession, target: np.ndarray, budget: int) -> ClickRun:
    # Past Dice 0.90 no NoC changes; 5 clicks at least keep Dice after 1, 3, 5 exact.
    return simulate(session.mask, session.click, target, max_clicks=budget, stop_at=max(THRESHOLDS),
                    min_clicks=max(DICE_AFTER))


def case_sam_clicks(ctx: Context, image: np.ndarray, target: np.ndarray) -> list[float]:
    return run_clicks(ClickSession(ctx.mobilesam, image), target, MAX_CLICKS).dices


def case_litemedsam_box(ctx: Context, image: np.ndarray, target: np.ndarray) -> list[float]:
    return box_dices(ctx.litemedsam, image, gt_boxes(target), target)


def case_mobilesam_box(ctx: Context, image: np.ndarray, target: np.ndarray) -> list[float]:
    boxes = gt_boxes(target)
    before = box_dices(ctx.mobilesam, image, boxes, target)[:-1]  # the session gives the last
    run = run_clicks(ClickSession(ctx.mobilesam, image, boxes), target, MAX_CLICKS - len(boxes))
    return before + run.dices


def case_kmine(ctx: Context, image: np.ndarray, target: np.ndarray) -> list[float]:
    assert ctx.predictor is not None
    prompts = ctx.predictor.predict(image, "student").prompts  # what refine mode gives SAM
    return run_clicks(ClickSession(ctx.mobilesam, image, prompts), target, MAX_CLICKS).dices


CASES: dict[str, Callable[..., list[float]]] = {
    "sam-clicks": case_sam_clicks,
    "litemedsam-box": case_litemedsam_box,
    "mobilesam-box": case_mobilesam_box,
    "kmine": case_kmine,
}


@dataclass
class Context:
    mobilesam: Teacher
    litemedsam: Teacher
    predictor: Predictor | None


# ------------------------------------------------------------------ summary


def summarise(dices: list[list[float]]) -> dict:
    """Mean NoC, share failing (20), mean Dice after k interactions, over cases' Dice curves."""
    out: dict = {"n": len(dices)}
    for t in THRESHOLDS:
        nocs = [ClickRun(d, []).noc(t) for d in dices]
        out[f"noc@{round(t * 100)}"] = float(np.mean(nocs))
        # Failed: not reached within the budget (reaching it at click 20 exactly is NoC 20, not a failure).
        out[f"fail@{round(t * 100)}"] = float(np.mean([max(d[: MAX_CLICKS + 1]) < t for d in dices]))
    for k in DICE_AFTER:
        out[f"dice@{k}"] = float(np.mean([ClickRun(d, []).dice_after(k) for d in dices]))
    return out


def table(results: dict) -> str:
    head = ("| dataset | setting | n | NoC@85 | NoC@90 | fail@85 | fail@90 | Dice@0 | Dice@1 | Dice@3 | Dice@5 |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for name, per_setting in results.items():
        for setting in SETTINGS:
            if setting not in per_setting:
                continue
            s = per_setting[setting]["summary"]
            rows.append(
                f"| {name} | {setting} | {s['n']} | {s['noc@85']:.2f} | {s['noc@90']:.2f} | "
                f"{s['fail@85']:.0%} | {s['fail@90']:.0%} | {s['dice@0']:.3f} | {s['dice@1']:.3f} | "
                f"{s['dice@3']:.3f} | {s['dice@5']:.3f} |"
            )
    return "\n".join(rows)


# ------------------------------------------------------------------ driver


def run_dataset(ds: Dataset, settings: list[str], ctx: Context, skip: int, limit: int | None) -> dict:
    index = scan_dataset(ds.root)
    stems = load_split(ds.split).val[skip:][:limit]
    curves: dict[str, dict[str, list[float]]] = {s: {} for s in settings}
    for i, stem in enumerate(stems):
        sample = index[stem]
        assert sample.mask_path is not None
        image, target = load_image(sample.image_path), load_mask(sample.mask_path)
        for setting in settings:
            curves[setting][stem] = [round(d, 5) for d in CASES[setting](ctx, image, target)]
        print(f"{ds.name} {i + 1}/{len(stems)} {stem}", flush=True)
    return {s: {"summary": summarise(list(c.values())), "cases": c} for s, c in curves.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kvasir-student", type=Path, help="best.pt trained on kvasir-seg's train part")
    ap.add_argument("--cxr-student", type=Path, help="best.pt trained on the cxr split's train part")
    ap.add_argument("--datasets", default="kvasir-seg,cxr-lung")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--limit", type=int, default=None, help="first N val images per dataset (default: all)")
    ap.add_argument("--skip", type=int, default=0, help="start after the first N val images (runs over parts merge)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--weights-dir", type=Path, default=None)
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "noc-cache")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "noc-cpu2.json")
    ap.add_argument("--machine", default="2 CPU cores, shared with other work")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on cores shared with other work, more threads only spin)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    settings = [s for s in args.settings.split(",") if s]
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        ap.error(f"unknown settings {sorted(unknown)}; choose from {', '.join(SETTINGS)}")
    students = {"kvasir-seg": args.kvasir_student, "cxr-lung": args.cxr_student}
    teachers = {name: build_teacher(name, args.weights_dir, cache_dir=args.cache_dir / name, cache_items=8)
                for name in ("mobilesam", "litemedsam")}
    results: dict = {}
    started = time.perf_counter()
    for ds in datasets(args.data):
        if ds.name not in args.datasets.split(","):
            continue
        wanted = [s for s in settings if s != "kmine" or students[ds.name] is not None]
        predictor = Predictor.from_checkpoint(students[ds.name]) if "kmine" in wanted else None
        ctx = Context(teachers["mobilesam"], teachers["litemedsam"], predictor)
        results[ds.name] = run_dataset(ds, wanted, ctx, args.skip, args.limit)
        if "kmine" in wanted:
            results[ds.name]["kmine"]["student"] = str(students[ds.name])
    meta = {
        "command": " ".join(sys.argv),
        "machine": args.machine,
        "python": platform.python_version(),
        "skip": args.skip,
        "limit": args.limit,
        "max_clicks": MAX_CLICKS,
        "note": "NoC counts do not depend on speed; wall_seconds is not a figure (shared cores)",
        "wall_seconds_last_run": round(time.perf_counter() - started, 1),
    }
    merged = merge_into(args.out, results, meta)
    print(table(merged))


def merge_into(path: Path, results: dict, meta: dict) -> dict:
    """Add this run's cases (by dataset, setting, image) to those already in ``path`` and
    summarise each setting again over all its cases; read just before writing, so runs of
    other settings, datasets or images beside this one are kept."""
    saved = json.loads(path.read_text()) if path.is_file() else {}
    merged = saved.get("results", {})
    for name, per_setting in results.items():
        for setting, new in per_setting.items():
            entry = merged.setdefault(name, {}).setdefault(setting, {"cases": {}})
            entry.update({k: v for k, v in new.items() if k != "cases"})
            entry["cases"].update(new["cases"])
            entry["summary"] = summarise(list(entry["cases"].values()))
    runs = saved.get("runs", []) + [meta]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"runs": runs, "results": merged}, indent=1) + "\n")
    return merged


if __name__ == "__main__":
    main()
