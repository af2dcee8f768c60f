"""Pseudo-labels: the student's probabilities → prompts → the frozen teacher's masks."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from kmine.metrics import dice_iou
from kmine.prompts import PromptConfig, extract_prompts, without_points


@dataclass
class PseudoStats:
    """What one round of pseudo-labelling produced (summed over calls)."""

    made: int = 0
    skipped: int = 0  # no pixel reached the threshold: no pseudo-label this time
    seconds: dict[str, float] = field(default_factory=lambda: {"prompts": 0.0, "encode": 0.0, "decode": 0.0})
    student_dice: list[float] = field(default_factory=list)  # vs truth, where known
    teacher_dice: list[float] = field(default_factory=list)

    def lap(self, part: str, since: float) -> float:
        """Add the time since ``since`` to ``part``; returns now."""
        now = time.perf_counter()
        self.seconds[part] += now - since
        return now

    def summary(self) -> dict:
        out = {"pseudo_made": self.made, "pseudo_skipped": self.skipped}
        out.update({f"t_{k}": v for k, v in self.seconds.items()})
        if self.teacher_dice:
            s, t = np.array(self.student_dice), np.array(self.teacher_dice)
            out.update(
                quality_student_dice=float(s.mean()),
                quality_teacher_dice=float(t.mean()),
                quality_teacher_beats_student=float((t > s).mean()),
                quality_n=int(t.size),
            )
        return out


class PseudoLabeler:
    """Makes pseudo-labels for images in their canonical (un-augmented) frame.

    The teacher encodes each canonical image once (its cache is keyed by content), so
    regenerating a pseudo-label at every revisit costs only a prompt decode.
    """

    def __init__(self, teacher, prompts: PromptConfig, seed: int = 0):
        self.teacher = teacher
        self.prompts = prompts
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
    ) -> list[np.ndarray | None]:
        """Pseudo-labels for a batch.

        images: (S, S, 3) uint8 each; probs: (S, S) float student probabilities each.
        truths: optional (S, S) bool true masks, used only to score quality.
        Returns (S, S) bool masks, None where the student found nothing to prompt with.
        """
        stats = stats if stats is not None else PseudoStats()
        clock = time.perf_counter()
        prompt_sets = [self._prompt_sets(p) for p in probs]
        todo = [i for i, s in enumerate(prompt_sets) if s]
        labels: list[np.ndarray | None] = [None] * len(images)
        clock = stats.lap("prompts", clock)
        if todo:
            encodings = self.teacher.encode([images[i] for i in todo])
            clock = stats.lap("encode", clock)
            decoded = self.teacher.decode(encodings, [prompt_sets[i] for i in todo])
            for i, d in zip(todo, decoded):
                labels[i] = (d.logits > 0).cpu().numpy()
            stats.lap("decode", clock)
        stats.made += len(todo)
        stats.skipped += len(images) - len(todo)
        for i in todo:
            if truths is not None and truths[i] is not None:
                stats.student_dice.append(dice_iou(probs[i] >= 0.5, truths[i])[0])
                stats.teacher_dice.append(dice_iou(labels[i], truths[i])[0])
        return labels
