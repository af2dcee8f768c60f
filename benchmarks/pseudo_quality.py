"""How good are pseudo-labels? Every strategy scored on the same unlabelled images.

    python benchmarks/pseudo_quality.py runs/experiments/kvasir-cpu/kvasir-seg/l75/supervised-s0/best_supervised.pt \
        --out benchmarks/results/pseudo-quality-kvasir-cpu.json

Takes a trained student (a ``best_supervised.pt``: its config names the data, split and
labelled fraction), rebuilds the run's unlabelled images, and makes one round of
pseudo-labels with each strategy, exactly as a one-time mining run would (same
:class:`~kmine.training.pseudo.PseudoLabeler`). The unlabelled images' true masks, which
training never sees, score them: the pseudo-label's Dice, the student's own mask's Dice on
the same images, and the share of images where the pseudo-label beats the student's mask.
Encodings are cached on disk (``--cache-dir``), so a rerun only decodes.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from kmine.metrics import dice_iou
from kmine.prompts import PromptConfig
from kmine.student import load_student, tta_probs
from kmine.teacher import EncodingCache, build_teacher
from kmine.training import TrainConfig
from kmine.training.pseudo import PseudoLabeler, PseudoStats
from kmine.training.setup import load_run_data
from kmine.training.strategy import PseudoStrategy, code_mask

ROOT = Path(__file__).resolve().parents[1]


def strategies(hi: int) -> list[tuple[str, PromptConfig, PseudoStrategy]]:
    """(name, prompts, strategy): the paper's recipe, then one change at a time, then combinations."""
    # Built from the paper's recipe, not the library defaults; TTA rows before session 12 took all 8 views.
    pb, pbm = PromptConfig.parse("points+box"), PromptConfig.parse("points+box+mask")
    paper = _with(PseudoStrategy.paper(), tta_views=8)
    at = _with(paper, teacher_size=hi)
    return [
        ("student's own mask (self-training)", pb, _with(paper, label="student")),
        ("student, 8-view TTA", pb, _with(paper, label="student", tta=True)),
        ("paper: SAM, points+box, teacher sees the student's crop", pb, paper),
        (f"SAM sees the crop at {hi} px", pb, at),
        (f"@{hi}: prompts points only", PromptConfig.parse("points"), at),
        (f"@{hi}: prompts box only", PromptConfig.parse("box"), at),
        (f"@{hi}: prompts points+box+mask", pbm, at),
        (f"@{hi}: per-component points+box", PromptConfig.parse("per-component"), at),
        (f"@{hi}: + 2 negative points in the box", PromptConfig.parse("points+box", negatives=2), at),
        (f"@{hi}: multimask output agreeing best with the student", pb, _with(at, multimask="agree")),
        (f"@{hi}: prompts from the TTA student", pb, _with(at, tta=True)),
        (f"@{hi}: SAM if IoU(SAM, student) >= 0.8 else student", pb, _with(at, label="gate")),
        (f"@{hi}: pixel vote 0.5 student + 0.5 SAM", pb, _with(at, label="fuse")),
        (f"@{hi}: TTA + pixel vote", pb, _with(at, tta=True, label="fuse")),
        (f"@{hi}: TTA + multimask agree + pixel vote", pb, _with(at, tta=True, multimask="agree", label="fuse")),
        (f"@{hi}: TTA + gate 0.8", pb, _with(at, tta=True, label="gate")),
        (f"@{hi}: TTA + points+box+mask", pbm, _with(at, tta=True)),
        (f"@{hi}: TTA + points+box+mask + pixel vote", pbm, _with(at, tta=True, label="fuse")),
        ("TTA + points+box+mask + pixel vote, teacher sees the student's crop", pbm, _with(paper, tta=True, label="fuse")),
        # Session 12: fewer TTA views (cheaper continuous epochs), tighter boxes (prompts at a higher probability).
        # The first, 8 views at 0.5, is the library default until session 12.
        *[(f"@{hi}: TTA {views} views + pixel vote, per-component{_at(p)}{_now(views, p)}",
           PromptConfig.parse("per-component", threshold=p),
           _with(at, tta=True, tta_views=views, label="fuse")) for views in (8, 4, 2) for p in (0.5, 0.7, 0.8)],
    ]


def _at(threshold: float) -> str:
    return "" if threshold == 0.5 else f", boxes at probability {threshold}"


def _now(views: int, threshold: float) -> str:
    same = threshold == PromptConfig().threshold
    return " (the library default)" if same and views == PseudoStrategy().tta_views else ""


def _with(strategy: PseudoStrategy, **changes) -> PseudoStrategy:
    return PseudoStrategy(**{**asdict(strategy), **changes})


def student_probs(student, images: np.ndarray, views: int, batch: int = 16) -> np.ndarray:
    """(N, S, S) probabilities: the mean over ``views`` TTA views (1: the plain forward pass)."""
    out = []
    student.eval()
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(images[start : start + batch]).permute(0, 3, 1, 2)
            out.append(tta_probs(student, x, views))
    return torch.cat(out).numpy()


def _views(strategy: PseudoStrategy) -> int:
    return strategy.tta_views if strategy.tta else 1


def run(checkpoint: Path, teacher_name: str, hi: int, cache_dir: Path, limit: int | None, batch: int,
        rows_wanted: list[str] | None = None) -> dict:
    student = load_student(checkpoint)
    config = TrainConfig.from_dict(student.extra["config"])
    data = load_run_data(config)
    n = len(data.unlabelled) if limit is None else min(limit, len(data.unlabelled))
    images = data.unlabelled.images[:n]
    truths = [data.truth[i] for i in range(n)]
    chosen = [r for r in strategies(hi) if not rows_wanted or any(w in r[0] for w in rows_wanted)]
    clock = time.perf_counter()
    probs = {v: student_probs(student, images, v) for v in sorted({1} | {_views(s) for _, _, s in chosen})}
    student_seconds = time.perf_counter() - clock
    big = {hi: [data.unlabelled.crop_at(i, hi) for i in range(n)]}
    teacher = build_teacher(teacher_name, cache=EncodingCache(max_items=4 * n, disk_dir=cache_dir))
    own = np.array([dice_iou(p >= 0.5, t)[0] for p, t in zip(probs[1], truths)])
    rows, per_image = [], {}
    for name, prompts, strategy in chosen:
        labeler = PseudoLabeler(teacher, prompts, strategy, seed=0, score_true_box=name.startswith("SAM sees"))
        stats, dice = PseudoStats(), np.full(n, np.nan)
        clock = time.perf_counter()
        encodes = teacher.encode_calls
        for start in range(0, n, batch):
            idx = list(range(start, min(n, start + batch)))
            codes = labeler.make(
                [images[i] for i in idx], [probs[_views(strategy)][i] for i in idx], stats, [truths[i] for i in idx],
                [big[hi][i] for i in idx] if strategy.teacher_size == hi else None,
            )
            for i, code in zip(idx, codes):
                if code is not None:
                    dice[i] = dice_iou(code_mask(code), truths[i])[0]
        per_image[name] = dice
        rows.append(_row(name, prompts, strategy, dice, own, stats, time.perf_counter() - clock, teacher.encode_calls - encodes))
        print(_line(rows[-1]), flush=True)
    paper = per_image.get("paper: SAM, points+box, teacher sees the student's crop")
    if paper is not None:
        oracle = np.where(np.isnan(paper), own, np.fmax(own, paper))
        rows.append({"name": "oracle: best of (student, paper's SAM) per image, chosen with the truth",
                     "dice": float(oracle.mean()), "student_dice": float(own.mean()), "n": n, "oracle": True})
        print(_line(rows[-1]))
    return {"rows": rows, "n": n, "student_seconds_plain_and_tta": student_seconds, "checkpoint": str(checkpoint),
            "teacher": teacher_name, "teacher_size": hi, "config": config.to_dict()}


def _row(name, prompts, strategy, dice, own, stats: PseudoStats, seconds: float, encodes: int) -> dict:
    made = ~np.isnan(dice)
    summary = stats.summary()
    return {
        "name": name,
        "prompts": asdict(prompts),
        "strategy": asdict(strategy),
        "n": int(dice.size),
        "made": int(made.sum()),
        # Images without a pseudo-label count with the student's own mask, so every row
        # scores the same images (what training would learn from: nothing new there).
        "dice": float(np.where(made, dice, own).mean()),
        "student_dice": float(own.mean()),
        "beats_student": float((dice[made] > own[made] + 1e-9).mean()) if made.any() else 0.0,
        "worse_than_student": float((dice[made] < own[made] - 1e-9).mean()) if made.any() else 0.0,
        "teacher_dice": summary.get("quality_teacher_dice"),
        "truebox_dice": summary.get("quality_truebox_dice"),
        "seconds": seconds,
        "encodes": encodes,
    }


def _line(row: dict) -> str:
    delta = row["dice"] - row["student_dice"]
    extra = f" beats {row['beats_student']:.0%} worse {row['worse_than_student']:.0%}" if "beats_student" in row else ""
    box = f" truebox {row['truebox_dice']:.3f}" if row.get("truebox_dice") else ""
    return f"{row['dice']:.3f} ({delta:+.3f}){extra}{box}  {row['name']}"


def markdown(result: dict) -> str:
    lines = [
        f"| pseudo-label made by ({result['n']} unlabelled images) | Dice | vs student | beats student on | worse on |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        beats = f"{r['beats_student']:.0%}" if "beats_student" in r else "–"
        worse = f"{r['worse_than_student']:.0%}" if "worse_than_student" in r else "–"
        lines.append(f"| {r['name']} | {r['dice']:.3f} | {r['dice'] - r['student_dice']:+.3f} | {beats} | {worse} |")
    return "\n".join(lines) + "\n"


def student_parser(doc: str, cache_dir: Path) -> argparse.ArgumentParser:
    """The arguments of a benchmark that labels a trained student's unlabelled images."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a best_supervised.pt written by training")
    parser.add_argument("--teacher", default="mobilesam")
    parser.add_argument("--cache-dir", type=Path, default=cache_dir)
    parser.add_argument("--limit", type=int, default=None, help="only the first N unlabelled images")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="JSON (and a .md beside it)")
    return parser


def main() -> None:
    parser = student_parser(__doc__, ROOT / "runs" / "cache" / "encodings")
    parser.add_argument("--teacher-size", type=int, default=1024, help="side of the larger crop the teacher may see")
    parser.add_argument("--rows", nargs="+", help="only the strategies whose name contains one of these")
    args = parser.parse_args()
    start = time.perf_counter()
    result = run(args.checkpoint, args.teacher, args.teacher_size, args.cache_dir, args.limit, args.batch, args.rows)
    report(result, start, args.out, markdown)


def report(result: dict, start: float, out: Path | None, table) -> None:
    """Add the run's wall time, machine and command to ``result``; print ``table(result)``
    and write both to ``out`` (JSON, and the table in a .md beside it)."""
    result.update(wall_seconds=time.perf_counter() - start, machine=f"{platform.machine()} {torch.get_num_threads()} threads",
                  command="python " + " ".join(__import__("sys").argv))
    print(table(result))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        out.with_suffix(".md").write_text(table(result))


if __name__ == "__main__":
    main()
