"""Second-phase batches with a fixed share of labelled images (the FixMatch/UniMatch way).

Shuffling labelled ∪ unlabelled together gives a batch the labelled share of the data: at 10 %
labels most batches hold no labelled image at all, and an epoch shows each true mask once
while the same-compute control shows it ten times. Here every batch takes ``round(B · share)``
rows from the labelled images and the rest from the unlabelled ones; each kind is drawn from its
own endless stream of seeded permutations, so every image of a kind is seen once before any is
seen again, across epochs too, and a resumed run draws the same batches.
"""

from __future__ import annotations

import math

import numpy as np


def stream(n: int, seed: int, kind: int, start: int, count: int) -> np.ndarray:
    """Items ``start`` .. ``start + count`` of the concatenation of permutations of ``range(n)``,
    the c-th drawn from ``(seed, kind, c)``."""
    if n == 0 or count == 0:
        return np.zeros(0, dtype=np.int64)
    first, last = start // n, (start + count - 1) // n
    cycles = [np.random.default_rng([seed, kind, c]).permutation(n) for c in range(first, last + 1)]
    joined = np.concatenate(cycles)
    offset = start - first * n
    return joined[offset : offset + count]


def mixed_batches(n_labelled: int, n_unlabelled: int, batch_size: int, share: float, seed: int,
                  epoch: int) -> list[list[int]]:
    """Epoch ``epoch``'s batches as indices into ``ConcatDataset([labelled, unlabelled])``.

    An epoch takes as many steps as one pass over both sets would (``ceil((L + U) / B)``), so it
    costs what an epoch of the shuffled mix costs; each batch holds ``round(B · share)`` labelled
    rows (at least one and at most ``B - 1`` while both sets have images). A batch of one image
    cannot hold both kinds: there a ``share`` of the steps take a labelled image instead.
    """
    steps = math.ceil((n_labelled + n_unlabelled) / batch_size)
    first = epoch * steps  # global step of this epoch's first batch: a resumed run draws the same
    before = [_labelled_before(g, n_labelled, n_unlabelled, batch_size, share) for g in range(first, first + steps + 1)]
    n_l = before[-1] - before[0]
    labelled = stream(n_labelled, seed, 0, before[0], n_l)
    unlabelled = stream(n_unlabelled, seed, 1, first * batch_size - before[0], steps * batch_size - n_l) + n_labelled
    batches = []
    for s in range(steps):
        lab = slice(before[s] - before[0], before[s + 1] - before[0])
        start = s * batch_size - lab.start
        unl = slice(start, start + batch_size - (lab.stop - lab.start))
        batches.append(labelled[lab].tolist() + unlabelled[unl].tolist())
    return batches


def _labelled_before(step: int, n_labelled: int, n_unlabelled: int, batch_size: int, share: float) -> int:
    """Labelled rows drawn in the first ``step`` steps of the second phase."""
    if n_labelled == 0 or n_unlabelled == 0:
        return step * batch_size if n_unlabelled == 0 else 0
    if batch_size == 1:
        return math.floor(step * share + 0.5)
    return step * min(batch_size - 1, max(1, round(batch_size * share)))
