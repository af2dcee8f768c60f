"""Losses of paper §2.5: Dice + k·BCE per image, labelled and pseudo-labelled terms."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_bce_per_image(
    logits: torch.Tensor, target: torch.Tensor, k: float = 0.2, smooth: float = 1.0, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-image ``Dice loss + k · BCE``.

    logits, target: (B, 1, H, W); target in [0, 1]. Returns (B,).
    Soft Dice ``1 - (2·Σwpt + smooth) / (Σwp + Σwt + smooth)``; ``smooth`` keeps empty
    targets finite. BCE is the w-weighted mean over the image's pixels.
    weight: optional (B, 1, H, W) per-pixel weights in [0, 1] (default all 1).
    """
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    if weight is not None and weight.shape != target.shape:
        raise ValueError(f"pixel weights {tuple(weight.shape)} and target {tuple(target.shape)} differ in shape")
    prob = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1).to(prob.dtype)
    w = torch.ones_like(t) if weight is None else weight.flatten(1).to(prob.dtype)
    dice = 1 - (2 * (w * prob * t).sum(1) + smooth) / ((w * prob).sum(1) + (w * t).sum(1) + smooth)
    bce = F.binary_cross_entropy_with_logits(logits.flatten(1), t, reduction="none")
    bce = (w * bce).sum(1) / w.sum(1).clamp_min(1e-6)
    return dice + k * bce


def mining_loss(
    labelled_logits: torch.Tensor | None,
    labels: torch.Tensor | None,
    pseudo_logits: torch.Tensor | None,
    pseudo_labels: torch.Tensor | None,
    k: float = 0.2,
    lam: float = 0.25,
    pseudo_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``mean_B(Dice + k·BCE) + λ · mean_B'(Dice_pseudo + k·BCE_pseudo)``.

    Either part may be absent (None or batch size 0); an absent part adds nothing.
    ``pseudo_weights`` (B', 1, H, W) weigh the pseudo-labels' pixels.
    Returns the total and its parts as floats for logging.
    """
    some_logits = labelled_logits if labelled_logits is not None else pseudo_logits
    if some_logits is None:
        raise ValueError("mining_loss needs labelled or pseudo-labelled logits")
    total = torch.zeros((), device=some_logits.device)
    parts = {"sup": 0.0, "pseudo": 0.0}
    if labelled_logits is not None and labelled_logits.shape[0]:
        sup = dice_bce_per_image(labelled_logits, _targets(labels, "labels"), k).mean()
        total = total + sup
        parts["sup"] = float(sup.detach())
    if pseudo_logits is not None and pseudo_logits.shape[0]:
        pseudo = dice_bce_per_image(pseudo_logits, _targets(pseudo_labels, "pseudo_labels"), k, weight=pseudo_weights).mean()
        total = total + lam * pseudo
        parts["pseudo"] = float(pseudo.detach())
    return total, parts


def _targets(targets: torch.Tensor | None, name: str) -> torch.Tensor:
    """The targets of a part whose logits were given: they must be given too."""
    if targets is None:
        raise ValueError(f"{name} missing: logits without targets")
    return targets
