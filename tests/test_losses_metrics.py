import math

import numpy as np
import pytest
import torch

from kmine.losses import dice_bce_per_image, mining_loss
from kmine.metrics import dice_iou, mean_std


def _hand_loss(p, t, k=0.2, smooth=1.0):
    """Dice + k·BCE written out over plain Python lists."""
    inter = sum(a * b for a, b in zip(p, t))
    dice = 1 - (2 * inter + smooth) / (sum(p) + sum(t) + smooth)
    bce = -sum(b * math.log(a) + (1 - b) * math.log(1 - a) for a, b in zip(p, t)) / len(p)
    return dice + k * bce


def test_dice_bce_against_hand_computation():
    probs = [0.9, 0.2, 0.6, 0.1]
    target = [1.0, 0.0, 1.0, 1.0]
    logits = torch.logit(torch.tensor(probs, dtype=torch.float64)).reshape(1, 1, 2, 2)
    got = dice_bce_per_image(logits, torch.tensor(target, dtype=torch.float64).reshape(1, 1, 2, 2))
    assert got.item() == pytest.approx(_hand_loss(probs, target), rel=1e-9)


def test_mining_loss_weights_pseudo_term():
    g = torch.Generator().manual_seed(0)
    lab_logits, pse_logits = torch.randn(3, 1, 4, 4, generator=g), torch.randn(2, 1, 4, 4, generator=g)
    labels = (torch.rand(3, 1, 4, 4, generator=g) > 0.5).float()
    pseudo = (torch.rand(2, 1, 4, 4, generator=g) > 0.5).float()
    total, parts = mining_loss(lab_logits, labels, pse_logits, pseudo, k=0.2, lam=0.25)
    sup = dice_bce_per_image(lab_logits, labels).mean()
    pse = dice_bce_per_image(pse_logits, pseudo).mean()
    assert total.item() == pytest.approx((sup + 0.25 * pse).item())
    assert parts["pseudo"] == pytest.approx(pse.item())
    only_sup, _ = mining_loss(lab_logits, labels, pse_logits[:0], pseudo[:0])
    assert only_sup.item() == pytest.approx(sup.item())


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="differ in shape"):
        dice_bce_per_image(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))


def test_dice_iou_independent_computation():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = rng.random((17, 23)) > 0.6, rng.random((17, 23)) > 0.4
        inter = sum(1 for x, y in zip(a.ravel(), b.ravel()) if x and y)
        union = sum(1 for x, y in zip(a.ravel(), b.ravel()) if x or y)
        d, i = dice_iou(a, b)
        assert d == pytest.approx(2 * inter / (a.sum() + b.sum()))
        assert i == pytest.approx(inter / union)
        assert d == pytest.approx(2 * i / (1 + i))


def test_empty_mask_convention():
    empty = np.zeros((4, 4), bool)
    full = np.ones((4, 4), bool)
    assert dice_iou(empty, empty) == (1.0, 1.0)
    assert dice_iou(full, empty) == (0.0, 0.0)
    assert dice_iou(empty, full) == (0.0, 0.0)


def test_mean_std():
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)
    assert all(math.isnan(v) for v in mean_std([]))


def test_pixels_of_weight_zero_do_not_count():
    import torch

    from kmine.losses import dice_bce_per_image

    torch.manual_seed(0)
    logits = torch.randn(2, 1, 8, 8)
    target = (torch.rand(2, 1, 8, 8) > 0.5).float()
    weight = torch.ones_like(target)
    weight[..., 4:] = 0
    cut = dice_bce_per_image(logits[..., :4].contiguous(), target[..., :4].contiguous())
    torch.testing.assert_close(dice_bce_per_image(logits, target, weight=weight), cut)
    torch.testing.assert_close(dice_bce_per_image(logits, target, weight=torch.ones_like(target)), dice_bce_per_image(logits, target))
