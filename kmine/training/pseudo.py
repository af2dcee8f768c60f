"""Pseudo-labels: the student's probabilities → prompts → the frozen teacher's masks → a
label by the run's :class:`~kmine.training.strategy.PseudoStrategy`."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from kmine.metrics import dice_iou
from kmine.prompts import (
    PromptConfig,
    PromptSet,
    components,
    extract_prompts,
    mask_box,
    without_points,
)
from kmine.teacher.types import Teacher
from kmine.training.strategy import PseudoStrategy, choose_multimask, code_mask, combine


@dataclass
class PseudoStats:
    """What one round of pseudo-labelling produced (summed over calls).

    Quality lists hold Dice against the true masks, where the dataset has them (training
    never sees those): the student's own mask, the teacher's raw mask, the pseudo-label the
    strategy made, and the teacher prompted by the true box (its ceiling).
    """

    made: int = 0
    skipped: int = 0  # no pixel reached the threshold: no pseudo-label this time
    dropped: int = 0  # the strategy refused the teacher's mask (min_agreement)
    # tta: the student's TTA passes; crops: reading the teacher's crops from the image
    # files; score: the true-box decodes that score the teacher's ceiling (not the method's cost).
    seconds: dict[str, float] = field(
        default_factory=lambda: {k: 0.0 for k in ("tta", "crops", "prompts", "encode", "decode", "score")}
    )
    student_dice: list[float] = field(default_factory=list)
    teacher_dice: list[float] = field(default_factory=list)
    pseudo_dice: list[float] = field(default_factory=list)
    truebox_dice: list[float] = field(default_factory=list)

    def lap(self, part: str, since: float) -> float:
        """Add the time since ``since`` to ``part``; returns now."""
        now = time.perf_counter()
        self.seconds[part] += now - since
        return now

    def summary(self) -> dict:
        out: dict[str, float] = {"pseudo_made": self.made, "pseudo_skipped": self.skipped, "pseudo_dropped": self.dropped}
        out.update({f"t_{k}": v for k, v in self.seconds.items()})
        if self.pseudo_dice:
            s, p = np.array(self.student_dice), np.array(self.pseudo_dice)
            out.update(
                quality_student_dice=float(s.mean()),
                quality_pseudo_dice=float(p.mean()),
                quality_pseudo_beats_student=float((p > s).mean()),
                quality_n=int(p.size),
            )
        if self.teacher_dice:
            t = np.array(self.teacher_dice)
            out.update(
                quality_teacher_dice=float(t.mean()),
                quality_teacher_beats_student=float((t > np.array(self.student_dice[: t.size])).mean()),
            )
        if self.truebox_dice:
            out["quality_truebox_dice"] = float(np.mean(self.truebox_dice))
        return out


def scale_prompts(sets: list[PromptSet], factor: float, size: int) -> list[PromptSet]:
    """Prompts taken on an S×S map, moved to the same crop at side ``size`` = S·factor.

    Pixel centres map as ``(x + 0.5)·f - 0.5``; a box's inclusive maxima as ``(x + 1)·f - 1``.
    Mask logits are resized bilinearly.
    """
    if factor == 1:
        return sets
    out = []
    for s in sets:
        points = None if s.points is None else ((s.points + 0.5) * factor - 0.5).astype(np.float32)
        box = None
        if s.box is not None:
            box = np.concatenate([s.box[:2] * factor, (s.box[2:] + 1) * factor - 1]).astype(np.float32)
        logits = None
        if s.mask_logits is not None:
            logits = _resize(s.mask_logits, size, "bilinear")
        out.append(replace(s, points=points, box=box, mask_logits=logits))
    return out


def _resize(plane: np.ndarray, size: int, mode: str) -> np.ndarray:
    """(H, W) float -> (size, size) float32; ``area`` to shrink, ``bilinear`` to grow."""
    t = torch.as_tensor(np.asarray(plane, dtype=np.float32))[None, None]
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t, size=(size, size), mode=mode, **kwargs)[0, 0].numpy()


class PseudoLabeler:
    """Makes pseudo-labels for images in their canonical (un-augmented) frame.

    The teacher encodes each canonical image once (its cache is keyed by content), so
    regenerating a pseudo-label at every revisit costs only a prompt decode.

    score_true_box: also decode the true box of every image with a true mask, to report
        the teacher's ceiling (costs a decode per image; kept out of ``decode_calls``).
    """

    def __init__(
        self,
        teacher: Teacher,
        prompts: PromptConfig,
        strategy: PseudoStrategy = PseudoStrategy(),
        seed: int = 0,
        score_true_box: bool = False,
    ):
        self.teacher = teacher
        self.prompts = prompts
        self.strategy = strategy
        self.score_true_box = score_true_box
        self.rng = np.random.default_rng(seed)
        self._warned_points = False

    def _prompt_sets(self, prob: np.ndarray):
        sets = extract_prompts(prob, self.prompts, self.rng)
        if sets and not self.teacher.supports_points and "points" in self.prompts.kinds:
            if not self._warned_points:
                warnings.warn(f"teacher {self.teacher.name} takes box prompts only: points dropped", stacklevel=3)
                self._warned_points = True
            sets = without_points(sets)
        return sets

    def make(
        self,
        images: list[np.ndarray],
        probs: list[np.ndarray],
        stats: PseudoStats | None = None,
        truths: list[np.ndarray | None] | None = None,
        teacher_images: list[np.ndarray] | None = None,
    ) -> list[np.ndarray | None]:
        """Pseudo-label codes for a batch (see :mod:`kmine.training.strategy`).

        images: (S, S, 3) uint8 each; probs: (S, S) float student probabilities each.
        truths: optional (S, S) bool true masks, used only to score quality.
        teacher_images: the same crops at the strategy's ``teacher_size`` (T, T, 3), given to
            the teacher instead of ``images``; prompts are scaled to them.
        Returns (S, S) uint8 codes, None where the student found nothing to prompt with or
        the strategy dropped the image.
        """
        stats = stats if stats is not None else PseudoStats()
        size = images[0].shape[0] if images else 0
        seen = teacher_images if teacher_images is not None else images
        clock = time.perf_counter()
        prompt_sets = [self._prompt_sets(p) for p in probs]
        todo = [i for i, s in enumerate(prompt_sets) if s]
        codes: list[np.ndarray | None] = [None] * len(images)
        clock = stats.lap("prompts", clock)
        teacher_logits: dict[int, np.ndarray] = {}
        if todo and self.strategy.needs_teacher:
            big = seen[todo[0]].shape[0]
            encodings = self.teacher.encode([seen[i] for i in todo])
            clock = stats.lap("encode", clock)
            scaled = [scale_prompts(prompt_sets[i], big / size, big) for i in todo]
            multimask = self.strategy.multimask == "agree"
            decoded = self.teacher.decode(encodings, scaled, multimask=multimask)
            for i, d in zip(todo, decoded):
                teacher_logits[i] = self._teacher_logits(d, probs[i], size, multimask)
            clock = stats.lap("decode", clock)
            if truths is not None and self.score_true_box:
                self._score_true_box(encodings, [truths[i] for i in todo], big / size, big, stats)
                stats.lap("score", clock)
        for i in todo:
            t = teacher_logits.get(i)
            code = combine(probs[i], t if t is not None else np.where(probs[i] >= 0.5, 1.0, -1.0), self.strategy)
            codes[i] = code
            truth = truths[i] if truths is not None else None
            if code is None:
                stats.dropped += 1
            elif truth is not None:
                stats.student_dice.append(dice_iou(probs[i] >= 0.5, truth)[0])
                stats.pseudo_dice.append(dice_iou(code_mask(code), truth)[0])
                if t is not None:
                    stats.teacher_dice.append(dice_iou(t > 0, truth)[0])
        stats.made += sum(c is not None for c in codes)
        stats.skipped += len(images) - len(todo)
        return codes

    def _teacher_logits(self, decoded, prob: np.ndarray, size: int, multimask: bool) -> np.ndarray:
        """The teacher's (S, S) logits in the student's frame (area-shrunk from its own)."""
        single = _resize(decoded.logits.numpy(), size, "area")
        if not multimask:
            return single
        merged = decoded.multimask_logits.max(dim=0).values.numpy()  # (3, T, T): union over sets
        candidates = [single] + [_resize(m, size, "area") for m in merged]
        return choose_multimask(prob >= 0.5, candidates)

    def _score_true_box(self, encodings, truths, factor: float, big: int, stats: PseudoStats) -> None:
        """The teacher's ceiling: its mask when prompted by the true box of each component of
        the true mask (as large as the student's prompts may use; scoring only)."""
        have = [(e, t) for e, t in zip(encodings, truths) if t is not None and t.any()]
        if not have:
            return
        min_area = self.prompts.min_component_area
        sets = [scale_prompts([PromptSet(box=mask_box(c)) for c in components(t, min_area)], factor, big) for _, t in have]
        calls = self.teacher.decode_calls
        decoded = self.teacher.decode([e for e, _ in have], sets)
        self.teacher.decode_calls = calls  # scoring is not part of the method's cost
        for (_, truth), d in zip(have, decoded):
            assert d is not None  # a non-empty truth has a component, so a prompt set to decode
            logits = _resize(d.logits.numpy(), truth.shape[0], "area")
            stats.truebox_dice.append(dice_iou(logits > 0, truth)[0])
