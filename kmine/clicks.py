"""Simulated clicks and the number-of-clicks metric (NoC) of interactive segmentation.

The standard protocol (Xu et al. 2016; RITM, Sofiiuk et al. 2022; SAM's own evaluation):
each next click goes to the pixel of the current error farthest from the error's boundary,
found with a distance transform of the false-negative and of the false-positive region. It
is positive (an object point) when that pixel is a missed object pixel, negative (a
background point) when it is a false-positive pixel. On an empty prediction the first click
is therefore the centre of the object's widest part.

NoC@t is the number of clicks after which Dice first reaches t, ``max_clicks`` (20) when it
never does. Numpy and scipy only; the model that answers the clicks is the caller's (see
:mod:`kmine.click_session` for a SAM teacher).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from kmine.metrics import dice_iou

MAX_CLICKS = 20  # the protocol's budget: a case that never reaches the target counts this many


@dataclass(frozen=True)
class Click:
    """One simulated click: pixel column ``x``, row ``y``; positive = on the object."""

    x: int
    y: int
    positive: bool


def _inner_distance(region: np.ndarray) -> np.ndarray:
    """(H, W) distance of each region pixel to the nearest pixel outside it, 0 outside.

    The image border counts as outside (the mask is padded by one background pixel, as RITM
    does), so an error touching the border has its centre inside the image, not on its edge.
    """
    padded = np.pad(region, 1, constant_values=False)
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1]


def next_click(pred: np.ndarray, target: np.ndarray) -> Click | None:
    """The next click for prediction ``pred`` of ``target`` (both (H, W) bool), None if equal.

    The click is where the error is widest: the largest inner distance over the
    false-negative (``target & ~pred``) and false-positive (``pred & ~target``) pixels. A tie
    between the two sides goes to the positive click; a tie within one side to the first
    pixel in row-major order (deterministic).
    """
    pred, target = np.asarray(pred, bool), np.asarray(target, bool)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    fn = _inner_distance(target & ~pred)
    fp = _inner_distance(pred & ~target)
    fn_max, fp_max = float(fn.max(initial=0.0)), float(fp.max(initial=0.0))
    if fn_max == 0.0 and fp_max == 0.0:
        return None
    positive = fn_max >= fp_max
    dist = fn if positive else fp
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Click(int(x), int(y), positive)


def first_reach(dices: Sequence[float], threshold: float, max_clicks: int = MAX_CLICKS) -> int:
    """NoC: the first index ``k`` with ``dices[k] >= threshold``, else ``max_clicks``.

    dices[k] is the Dice after k clicks; dices[0] is the start before any click (an empty
    mask for click-only segmentation, Dice 0; a model's first guess otherwise), so a start
    that is already good enough costs 0 clicks. Indices past ``max_clicks`` are not counted.
    """
    for k, value in enumerate(dices[: max_clicks + 1]):
        if value >= threshold:
            return k
    return max_clicks


@dataclass
class ClickRun:
    """One case's simulated session.

    dices: Dice after 0, 1, ... clicks (index = clicks so far); clicks: the clicks given.
    The run stops early once Dice reached ``stop_at`` and ``min_clicks`` were given: the
    NoC for any threshold up to ``stop_at`` is then already decided.
    """

    dices: list[float]
    clicks: list[Click]

    def noc(self, threshold: float, max_clicks: int = MAX_CLICKS) -> int:
        return first_reach(self.dices, threshold, max_clicks)

    def dice_after(self, k: int) -> float:
        """Dice after ``k`` clicks; past an early stop, the last Dice (it was good enough)."""
        return self.dices[min(k, len(self.dices) - 1)]


def simulate(
    start: np.ndarray,
    answer: Callable[[Click], np.ndarray],
    target: np.ndarray,
    max_clicks: int = MAX_CLICKS,
    stop_at: float | None = None,
    min_clicks: int = 0,
) -> ClickRun:
    """Click on the error of ``start`` and of each answer, up to ``max_clicks`` times.

    start: (H, W) bool, the mask before any click (all False for clicks alone).
    answer: gives the model's new (H, W) bool mask after one more click (the model keeps the
        earlier clicks; see :class:`kmine.click_session.ClickSession`).
    stop_at / min_clicks: stop once Dice >= ``stop_at`` after at least ``min_clicks``
        clicks (later clicks change no NoC up to ``stop_at``; ``min_clicks`` keeps the
        Dice-after-k figures exact). A perfect mask stops the run: there is nowhere to click.
    """
    pred = np.asarray(start, bool)
    run = ClickRun([dice_iou(pred, target)[0]], [])
    while len(run.clicks) < max_clicks:
        if stop_at is not None and run.dices[-1] >= stop_at and len(run.clicks) >= min_clicks:
            break
        click = next_click(pred, target)
        if click is None:
            break
        pred = np.asarray(answer(click), bool)
        run.clicks.append(click)
        run.dices.append(dice_iou(pred, target)[0])
    return run
