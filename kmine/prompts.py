"""Prompt extraction from the student's probability map (paper §2.3).

Coordinates are pixel indices of the image the probability map covers: ``x`` is the
column, ``y`` the row; a box is ``(x0, y0, x1, y1)`` with inclusive maxima, the
convention of SAM's own ``batched_mask_to_box``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kmine.text import shown


@dataclass
class PromptSet:
    """Prompts for one object in one image.

    points: (K, 2) float32 ``(x, y)``, or None.
    point_labels: (K,) int64, 1 = foreground, 0 = background; None when no points.
    box: (4,) float32 ``(x0, y0, x1, y1)``, or None.
    mask_logits: (H, W) float32 student logits in the image frame, or None; the teacher
        maps them into its own low-resolution mask-prompt frame.
    low_res_logits: (h, w) float32 logits already in the teacher's mask-prompt frame
        (256×256), or None: an earlier answer's ``Decoded.low_res_logits[i]`` for the same
        image and teacher, given to the prompt encoder as they are. SAM's interactive
        protocol: each corrective click is decoded with the previous answer's low-res logits
        as the mask prompt (no round trip through the image frame). Give this or
        ``mask_logits``, not both.
    """

    points: np.ndarray | None = None
    point_labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask_logits: np.ndarray | None = None
    low_res_logits: np.ndarray | None = None


PROMPT_KINDS = ("points", "box", "points+box", "points+box+mask")
# What :meth:`PromptConfig.parse` accepts: one prompt set per connected component, or one of
# PROMPT_KINDS around everything. The one list every caller (CLI, API, UI) offers.
PROMPT_CHOICES = ("per-component", *PROMPT_KINDS)


@dataclass(frozen=True)
class PromptConfig:
    """How the student's probability map becomes SAM prompts.

    kinds: one of :data:`PROMPT_KINDS` (the paper's ``points+box``).
    n_points: number of foreground points at the highest probabilities (paper's x).
    threshold: probability at which a pixel counts as foreground for the box.
    per_component: one prompt set (box + its own peak point) per connected component
        of ``prob >= threshold`` instead of one box around everything (beyond the paper,
        and the default: one box around both lungs prompts SAM badly, and on Kvasir-SEG it
        gave the best pseudo-labels measured, see BENCHMARKS.md).
    min_component_area: components smaller than this many pixels are ignored in
        per-component mode (the largest one is always kept).
    max_components: at most this many components (the largest) get a prompt set. A poorly
        trained student's mask can break into dozens of blobs, each a SAM decode (17–89 sets
        per image measured after 1 epoch, BENCHMARKS.md); trained students gave 1–3.
    negatives: background points per prompt set (with ``points`` kinds): the pixels of
        lowest probability inside the set's box, among those below ``1 - threshold``;
        they tell SAM what inside the box is not the object.
    """

    kinds: str = "points+box"
    n_points: int = 1
    threshold: float = 0.5
    per_component: bool = True
    min_component_area: int = 64
    max_components: int = 8
    negatives: int = 0

    def __post_init__(self) -> None:
        if self.kinds not in PROMPT_KINDS:
            raise ValueError(f"prompt kinds {shown(self.kinds)} unknown; choose one of {', '.join(PROMPT_KINDS)}")
        if self.n_points < 1:
            raise ValueError(f"n_points must be >= 1, got {self.n_points}")
        if self.negatives < 0:
            raise ValueError(f"negatives must be >= 0, got {self.negatives}")
        if self.max_components < 1:
            raise ValueError(f"max_components must be >= 1, got {self.max_components}")

    @property
    def label(self) -> str:
        return self.kinds + ("/per-component" if self.per_component else "")

    @classmethod
    def parse(cls, text: str, **overrides) -> PromptConfig:
        """``"per-component"`` (points+box per component, the default), or one of
        :data:`PROMPT_KINDS` for one prompt set around everything, as the paper."""
        if text == "per-component":
            return cls(kinds="points+box", per_component=True, **overrides)
        return cls(kinds=text, **{"per_component": False, **overrides})


def top_points(prob: np.ndarray, n: int, rng: np.random.Generator, where: np.ndarray | None = None) -> np.ndarray:
    """The ``n`` pixels of highest probability as (n, 2) float32 ``(x, y)``.

    Ties are broken at random with ``rng`` (paper §2.3: when more than ``n`` pixels share
    the maximum, pick ``n`` of them at random). ``where`` (H, W) bool restricts the search.
    """
    flat = prob.ravel()
    candidates = np.flatnonzero(where.ravel()) if where is not None else np.arange(flat.size)
    values = flat[candidates]
    if values.size > n:  # only pixels at or above the n-th highest value can be chosen
        nth = np.partition(values, values.size - n)[values.size - n]
        candidates, values = candidates[values >= nth], values[values >= nth]
    # Sort by probability, descending; a random secondary key breaks ties fairly.
    order = np.lexsort((rng.random(candidates.size), -values.astype(np.float64)))
    chosen = candidates[order[: min(n, candidates.size)]]
    rows, cols = np.unravel_index(chosen, prob.shape)
    return np.stack([cols, rows], axis=1).astype(np.float32)


def mask_box(mask: np.ndarray) -> np.ndarray:
    """Outer box (4,) float32 ``(x0, y0, x1, y1)`` of a non-empty (H, W) bool mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.float32)


def components(fg: np.ndarray, min_area: int) -> list[np.ndarray]:
    """(H, W) bool masks of the 8-connected components of ``fg`` of at least ``min_area``
    pixels, largest first (the largest is kept whatever its area)."""
    from scipy import ndimage

    labels, count = ndimage.label(fg, structure=np.ones((3, 3), dtype=bool))
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = [i + 1 for i in np.argsort(-areas) if areas[i] >= min_area]
    if not keep:  # everything small: keep the largest rather than give no label
        keep = [int(np.argmax(areas)) + 1]
    return [labels == k for k in keep]


def _logits(prob: np.ndarray) -> np.ndarray:
    p = np.clip(prob.astype(np.float32), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def extract_prompts(
    prob: np.ndarray,
    config: PromptConfig = PromptConfig(),
    rng: np.random.Generator | None = None,
    logits: np.ndarray | None = None,
) -> list[PromptSet]:
    """Prompts for SAM from the student's (H, W) probability map.

    Returns one :class:`PromptSet` per object (one, or one per component), or an empty
    list when no pixel reaches ``config.threshold``: that image gets no pseudo-label.
    ``logits`` (H, W) are used for the mask prompt; derived from ``prob`` when absent.
    """
    if prob.ndim != 2:
        raise ValueError(f"prob must be (H, W), got shape {prob.shape}")
    rng = rng if rng is not None else np.random.default_rng(0)
    fg = prob >= config.threshold
    if not fg.any():
        return []
    regions = components(fg, config.min_component_area)[: config.max_components] if config.per_component else [fg]
    use_points = "points" in config.kinds
    use_box = "box" in config.kinds
    mask_logits = None
    if "mask" in config.kinds:
        mask_logits = (logits if logits is not None else _logits(prob)).astype(np.float32)
    sets = []
    for region in regions:
        points = top_points(prob, config.n_points, rng, where=region if config.per_component else None)
        labels = np.ones(len(points), dtype=np.int64)
        box = mask_box(region)
        if use_points and config.negatives:
            negatives = _negative_points(prob, box, config, rng)
            points = np.concatenate([points, negatives])
            labels = np.concatenate([labels, np.zeros(len(negatives), dtype=np.int64)])
        sets.append(
            PromptSet(
                points=points if use_points else None,
                point_labels=labels if use_points else None,
                box=box if use_box else None,
                mask_logits=mask_logits,
            )
        )
    return sets


def _negative_points(prob: np.ndarray, box: np.ndarray, config: PromptConfig, rng: np.random.Generator) -> np.ndarray:
    """Up to ``config.negatives`` confident-background (x, y) points inside ``box``."""
    x0, y0, x1, y1 = box.astype(int)
    inside = np.zeros(prob.shape, dtype=bool)
    inside[y0 : y1 + 1, x0 : x1 + 1] = True
    where = inside & (prob < 1 - config.threshold)
    if not where.any():
        return np.zeros((0, 2), dtype=np.float32)
    return top_points(1 - prob, config.negatives, rng, where=where)


def without_points(sets: list[PromptSet]) -> list[PromptSet]:
    """The same prompts with points removed, for box-only teachers (LiteMedSAM)."""
    return [PromptSet(None, None, s.box, s.mask_logits, s.low_res_logits) for s in sets if s.box is not None]
