"""Test-time augmentation: the student's probabilities averaged over dihedral views."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..data.augment import IDENTITY, UNIQUE_OPS, DihedralOps, apply_dihedral, invert_dihedral

# The 8 dihedral views in the order a TTA mean of ``views`` takes its first ``views``: the identity
# and the horizontal flip; then the vertical flip and both (the four that keep a non-square
# image's shape); then the four that swap height and width.
_FLIPS = (IDENTITY, DihedralOps(hflip=True), DihedralOps(vflip=True), DihedralOps(hflip=True, vflip=True))
VIEW_ORDER: tuple[DihedralOps, ...] = _FLIPS + tuple(ops for ops in UNIQUE_OPS if ops.changes_shape)


def view_mean(forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, views: int) -> torch.Tensor:
    """Mean of ``forward``'s outputs over the first ``views`` (1–8) of :data:`VIEW_ORDER`, each
    output mapped back to the image's frame.

    forward: (B, 3, H, W) -> (B, C, H, W) (probabilities: a mean of logits is not a TTA mean).
    images: (B, 3, H, W); non-square images take at most the 4 flips (the others swap H and W).
    """
    if not 1 <= views <= len(VIEW_ORDER):
        raise ValueError(f"test-time augmentation takes 1 to {len(VIEW_ORDER)} views, got {views}")
    if views > len(_FLIPS) and images.shape[-1] != images.shape[-2]:
        raise ValueError(f"test-time augmentation over {views} views needs square images, got {tuple(images.shape[-2:])}")
    outs = [invert_dihedral(forward(apply_dihedral(images, ops)), ops) for ops in VIEW_ORDER[:views]]
    return torch.stack(outs).mean(0)


def tta_probs(student: torch.nn.Module, images: torch.Tensor, views: int = 8) -> torch.Tensor:
    """The student's mean probability over the first ``views`` (1–8) of :data:`VIEW_ORDER`.

    images: (B, 3, H, W) in [0, 255] (square for more than 4 views).
    Returns (B, H, W) float32. Runs in eval mode and restores the student's mode after.
    """
    was_training = student.training
    student.eval()
    try:
        with torch.inference_mode():
            return view_mean(lambda x: torch.sigmoid(student(x).float()), images, views)[:, 0]
    finally:
        student.train(was_training)
