"""Test-time augmentation: the student's probabilities averaged over dihedral views."""

from __future__ import annotations

import torch

from ..data.augment import IDENTITY, UNIQUE_OPS, DihedralOps, apply_dihedral, invert_dihedral

# The 8 dihedral views in the order a TTA mean of ``views`` takes its first ``views``: the identity
# and the horizontal flip; then the vertical flip and both (the four that keep a non-square
# image's shape); then the four that swap height and width.
_FLIPS = (IDENTITY, DihedralOps(hflip=True), DihedralOps(vflip=True), DihedralOps(hflip=True, vflip=True))
VIEW_ORDER: tuple[DihedralOps, ...] = _FLIPS + tuple(ops for ops in UNIQUE_OPS if ops.changes_shape)


def tta_probs(student: torch.nn.Module, images: torch.Tensor, views: int = 8) -> torch.Tensor:
    """Mean probability over the first ``views`` (1–8) of :data:`VIEW_ORDER`.

    images: (B, 3, S, S) in [0, 255] (square: rotations must keep the shape).
    Returns (B, S, S) float32. Runs in eval mode and restores the student's mode after.
    """
    if not 1 <= views <= len(VIEW_ORDER):
        raise ValueError(f"test-time augmentation takes 1 to {len(VIEW_ORDER)} views, got {views}")
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"test-time augmentation needs square images, got {tuple(images.shape[-2:])}")
    was_training = student.training
    student.eval()
    total = torch.zeros(images.shape[0], *images.shape[-2:], device=images.device)
    with torch.inference_mode():
        for ops in VIEW_ORDER[:views]:
            logits = student(apply_dihedral(images, ops))
            total += invert_dihedral(torch.sigmoid(logits.float()), ops)[:, 0]
    student.train(was_training)
    return total / views
