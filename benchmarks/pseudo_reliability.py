"""Which pseudo-labels are wrong? Scores known without the truth, against the truth.

    python benchmarks/pseudo_reliability.py runs/experiments/rel/kvasir-seg/l10/supervised-s0/best_supervised.pt \
        --out benchmarks/results/pseudo-quality/kvasir-l10-s0-reliability.json

Takes a trained student (a ``best_supervised.pt``), rebuilds its run's unlabelled images and
makes their pseudo-labels with the library's default strategy (TTA student → SAM on the
1024-px crop, per-component prompts → pixel vote), as a one-time mining pass would. For each
image it records scores a run can compute (the IoU of the student's and SAM's masks, SAM's
own predicted IoU, the student's mean probability on its mask, ...) and the pseudo-label's
Dice against the true mask (which training never sees). It prints, per score, how well it
ranks the pseudo-labels (Spearman), how well it finds the wrong ones (Dice < 0.5, AUROC), and
the mean Dice of the pseudo-labels it would keep at several shares and thresholds.
Encodings are cached on disk (``--cache-dir``; the experiments' cache by default).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch.nn.functional as F

from kmine.metrics import dice_iou
from kmine.prompts import PromptConfig, extract_prompts
from kmine.student import load_student
from kmine.teacher import EncodingCache, build_teacher
from kmine.training import TrainConfig
from kmine.training.pseudo import scale_prompts
from kmine.training.setup import load_run_data
from kmine.training.strategy import PseudoStrategy, code_mask, combine, iou

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pseudo_quality import report, student_parser, student_probs  # noqa: E402  (a sibling script)

ROOT = Path(__file__).resolve().parents[1]
SHARES = (0.9, 0.8, 0.7, 0.5)
BAD = 0.5  # a pseudo-label below this Dice is wrong rather than rough


def image_scores(prob: np.ndarray, teacher_logits: np.ndarray, iou_pred: float, code: np.ndarray) -> dict:
    """Scores of one image (higher = more trustworthy), from the (S, S) student probabilities,
    the teacher's (S, S) logits, its predicted IoU and the pseudo-label code."""
    student, teacher = prob >= 0.5, teacher_logits > 0
    region = prob > 0.1  # the mask and the doubtful rim around it, not the sure background
    label = code_mask(code)
    return {
        "IoU(student, SAM)": iou(student, teacher),
        "SAM's predicted IoU": iou_pred,
        "student's mean probability on its mask": float(prob[student].mean()) if student.any() else 0.0,
        "student's confidence near its mask": float(np.abs(2 * prob[region] - 1).mean()) if region.any() else 0.0,
        "1 - doubtful pixels / label pixels": 1 - float(((code >> 1) & 1).sum() / max(label.sum(), 1)),
    }


def run(checkpoint: Path, teacher_name: str, cache_dir: Path, limit: int | None, batch: int) -> dict:
    student = load_student(checkpoint)
    config = TrainConfig.from_dict(student.extra["config"])
    data = load_run_data(config)
    n = len(data.unlabelled) if limit is None else min(limit, len(data.unlabelled))
    strategy, prompts = PseudoStrategy(), PromptConfig()
    images = data.unlabelled.images[:n]
    probs = student_probs(student, images, strategy.tta_views)
    size, big = images.shape[1], strategy.teacher_size or images.shape[1]
    teacher = build_teacher(teacher_name, cache=EncodingCache(max_items=2 * batch, disk_dir=cache_dir))
    rng = np.random.default_rng(0)
    rows = []
    for start in range(0, n, batch):
        idx = list(range(start, min(n, start + batch)))
        sets = {i: extract_prompts(probs[i], prompts, rng) for i in idx}
        todo = [i for i in idx if sets[i]]  # nothing to prompt with: no pseudo-label, nothing to score
        encodings = teacher.encode([data.unlabelled.crop_at(i, big) for i in todo])
        decoded = teacher.decode(encodings, [scale_prompts(sets[i], big / size, big) for i in todo])
        for i, d in zip(todo, decoded):
            assert d is not None  # every image in todo has a prompt set
            logits = F.interpolate(d.logits.float()[None, None], size=(size, size), mode="area")[0, 0].numpy()
            code = combine(probs[i], logits, strategy)
            assert code is not None  # the default strategy drops nothing
            truth = data.truth[i]
            rows.append({"image": i, "pseudo_dice": dice_iou(code_mask(code), truth)[0],
                         "student_dice": dice_iou(probs[i] >= 0.5, truth)[0],
                         **image_scores(probs[i], logits, float(d.iou_pred), code)})
        print(f"{len(rows)} of {n} images", file=sys.stderr, flush=True)
    return {"images": rows, "n": n, "summary": summarise(rows), "checkpoint": str(checkpoint), "teacher": teacher_name,
            "strategy": asdict(strategy), "config": config.to_dict()}


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float)


def _auroc(score: np.ndarray, bad: np.ndarray) -> float:
    """P(a good image scores above a wrong one), ties counting half."""
    good, wrong = score[~bad], score[bad]
    if not good.size or not wrong.size:
        return float("nan")
    return float((good[:, None] > wrong[None, :]).mean() + 0.5 * (good[:, None] == wrong[None, :]).mean())


def summarise(rows: list[dict]) -> list[dict]:
    """Per score: Spearman with the pseudo-label's Dice, AUROC for the wrong ones, and the
    mean Dice and threshold of the top ``SHARES``; last, the truth itself as the score."""
    dice = np.array([r["pseudo_dice"] for r in rows])
    names = [k for k in rows[0] if k not in ("image", "pseudo_dice", "student_dice")] + ["oracle: the Dice itself"]
    out = []
    for name in names:
        score = dice if name.startswith("oracle") else np.array([r[name] for r in rows], dtype=float)
        order = np.argsort(-score, kind="stable")
        kept = {q: order[: max(1, int(len(order) * q))] for q in SHARES}
        out.append({
            "score": name,
            "spearman": float(np.corrcoef(_ranks(score), _ranks(dice))[0, 1]),
            "auroc_wrong": _auroc(score, dice < BAD),
            "kept_dice": {str(q): float(dice[k].mean()) for q, k in kept.items()},
            "threshold": {str(q): float(score[k[-1]]) for q, k in kept.items()},
        })
    return out


def markdown(result: dict) -> str:
    rows = result["images"]
    dice = np.array([r["pseudo_dice"] for r in rows])
    own = np.mean([r["student_dice"] for r in rows])
    head = " | ".join(f"top {q:.0%}: Dice (score ≥)" for q in SHARES)
    lines = [f"{len(rows)} unlabelled images: pseudo-label Dice {dice.mean():.3f}, the student's {own:.3f},"
             f" {int((dice < BAD).sum())} below {BAD}", "",
             f"| score | Spearman | AUROC (Dice < {BAD}) | {head} |", "|---|---|---|" + "---|" * len(SHARES)]
    for s in result["summary"]:
        kept = " | ".join(f"{s['kept_dice'][str(q)]:.3f} ({s['threshold'][str(q)]:.3f})" for q in SHARES)
        lines.append(f"| {s['score']} | {s['spearman']:.2f} | {s['auroc_wrong']:.2f} | {kept} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = student_parser(__doc__, ROOT / "runs" / "teacher-cache").parse_args()
    start = time.perf_counter()
    report(run(args.checkpoint, args.teacher, args.cache_dir, args.limit, args.batch), start, args.out, markdown)


if __name__ == "__main__":
    main()
