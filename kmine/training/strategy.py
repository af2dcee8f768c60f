"""How a pseudo-label is made from the student's and the teacher's masks (beyond the paper).

The paper takes the teacher's mask as the pseudo-label. With a strong student that makes
labels worse about as often as better (issue 6), so each step here is switchable and
measured on its own by ``benchmarks/pseudo_quality.py``:

- ``teacher_size``: the teacher sees the image crop at this side (default: 1024, SAM's own
  input size) instead of the student's small training crop; SAM upsamples to 1024 anyway,
  so a 128-px crop gives it a blurred image.
- ``tta``: the student's probabilities (which become the prompts and the student's side of
  the vote) are the mean over ``tta_views`` dihedral views (one of :data:`TTA_VIEWS`: the
  identity and the left-right flip, the four flips (the default), or all 8 views). Four
  flips halve the 8 views' cost, which was as much as the student's own training steps in a
  continuous epoch, for 0.0–0.7 points of pseudo-label Dice (BENCHMARKS.md, session 12).
- ``multimask``: ``single`` (SAM's first mask) or ``agree`` (of the single and the three
  multimask outputs, the one with the highest IoU with the student's mask).
- ``label``: ``teacher`` (the paper), ``student`` (self-training: the student's own mask),
  ``fuse`` (pixel vote: ``(1 - w)·p_student + w·p_teacher ≥ 0.5``) or ``gate`` (the
  teacher's mask where its IoU with the student's is at least ``gate_iou``, else the
  student's).
- ``doubt_weight``: loss weight of pixels where the student's and the teacher's masks
  differ (1 = the plain loss, the paper's; 0 = ignore them; default ½).
- ``min_agreement``: no pseudo-label this time when the IoU of the student's and the
  teacher's masks is below it. Off (0) by default: at 0.75 it drops the fifth of the images
  with the worst pseudo-labels, yet the student ended 1.1 points lower, those being the images
  where the teacher corrects the student most (BENCHMARKS.md, session 13).

A pseudo-label is stored as a uint8 code per pixel: bit 0 is the target, bit 1 marks
doubt (student and teacher disagree); :func:`split_code` turns codes into targets and
loss weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kmine.text import shown

if TYPE_CHECKING:
    import torch

LABEL_RULES = ("teacher", "student", "fuse", "gate")
MULTIMASK_RULES = ("single", "agree")
TTA_VIEWS = (2, 4, 8)


@dataclass(frozen=True)
class PseudoStrategy:
    """See the module docstring; the defaults are the best strategy measured (BENCHMARKS.md)."""

    teacher_size: int | None = 1024
    tta: bool = True
    tta_views: int = 4
    multimask: str = "single"
    label: str = "fuse"
    teacher_weight: float = 0.5
    gate_iou: float = 0.8
    doubt_weight: float = 0.5
    min_agreement: float = 0.0

    def __post_init__(self) -> None:
        if self.label not in LABEL_RULES:
            raise ValueError(f"pseudo-label rule {shown(self.label)} unknown; choose one of {', '.join(LABEL_RULES)}")
        if self.multimask not in MULTIMASK_RULES:
            raise ValueError(f"multimask rule {shown(self.multimask)} unknown; choose one of {', '.join(MULTIMASK_RULES)}")
        if self.tta_views not in TTA_VIEWS:
            raise ValueError(f"tta_views must be one of {', '.join(map(str, TTA_VIEWS))}, got {self.tta_views}")
        if self.teacher_size is not None and self.teacher_size < 32:
            raise ValueError(f"teacher_size must be at least 32 pixels (or null), got {self.teacher_size}")
        for name in ("teacher_weight", "gate_iou", "doubt_weight", "min_agreement"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @classmethod
    def paper(cls) -> PseudoStrategy:
        """The paper's recipe: SAM's mask on the student's own crop, no TTA, no vote."""
        return cls(teacher_size=None, tta=False, multimask="single", label="teacher", doubt_weight=1.0)

    @property
    def needs_teacher(self) -> bool:
        """False for self-training without a veto: the teacher is never asked."""
        return self.label != "student" or self.doubt_weight < 1 or self.min_agreement > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks; two empty masks agree fully."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def choose_multimask(student_mask: np.ndarray, candidates: list[np.ndarray]) -> np.ndarray:
    """The (H, W) logits among ``candidates`` whose mask agrees best with the student's."""
    scores = [iou(c > 0, student_mask) for c in candidates]
    return candidates[int(np.argmax(scores))]


def vote(student_prob: np.ndarray, teacher_logits: np.ndarray, teacher_weight: float = 0.5) -> np.ndarray:
    """The pixel vote (H, W) bool: ``(1 - w)·p_student + w·p_teacher ≥ 0.5`` (both (H, W), one frame)."""
    p_teacher = 1 / (1 + np.exp(-np.clip(teacher_logits, -30, 30)))
    return (1 - teacher_weight) * student_prob + teacher_weight * p_teacher >= 0.5


def combine(student_prob: np.ndarray, teacher_logits: np.ndarray, strategy: PseudoStrategy) -> np.ndarray | None:
    """The pseudo-label code (H, W) uint8 from the student's probabilities and the teacher's
    logits (both (H, W), the same frame), or None when the strategy drops this image."""
    student = student_prob >= 0.5
    teacher = teacher_logits > 0
    agreement = iou(student, teacher)
    if agreement < strategy.min_agreement:
        return None
    if strategy.label == "teacher":
        label = teacher
    elif strategy.label == "student":
        label = student
    elif strategy.label == "fuse":
        label = vote(student_prob, teacher_logits, strategy.teacher_weight)
    else:  # gate
        label = teacher if agreement >= strategy.gate_iou else student
    return (label.astype(np.uint8) | ((student != teacher).astype(np.uint8) << 1)).astype(np.uint8)


def code_mask(code: np.ndarray) -> np.ndarray:
    """The target (H, W) bool of a pseudo-label code."""
    return (np.asarray(code).astype(np.uint8) & 1).astype(bool)


def split_code(code: torch.Tensor, doubt_weight: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Codes (P, 1, S, S) (any dtype holding 0..3) -> float targets and pixel weights
    (None when every pixel weighs 1)."""
    import torch

    code = code.round().to(torch.uint8)
    target = (code & 1).float()
    if doubt_weight >= 1:
        return target, None
    weight = torch.where((code & 2).bool(), torch.tensor(float(doubt_weight)), torch.tensor(1.0))
    return target, weight
