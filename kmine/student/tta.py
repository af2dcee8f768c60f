"""Test-time augmentation: the student's probabilities averaged over the 8 dihedral views."""

from __future__ import annotations

import torch

from ..data.augment import UNIQUE_OPS, apply_dihedral, invert_dihedral


def tta_probs(student: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Mean probability over the 8 dihedral views.

    images: (B, 3, S, S) in [0, 255] (square: rotations must keep the shape).
    Returns (B, S, S) float32. Runs in eval mode and restores the student's mode after.
    """
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"test-time augmentation needs square images, got {tuple(images.shape[-2:])}")
    was_training = student.training
    student.eval()
    total = torch.zeros(images.shape[0], *images.shape[-2:], device=images.device)
    with torch.inference_mode():
        for ops in UNIQUE_OPS:
            logits = student(apply_dihedral(images, ops))
            total += invert_dihedral(torch.sigmoid(logits.float()), ops)[:, 0]
    student.train(was_training)
    return total / len(UNIQUE_OPS)
