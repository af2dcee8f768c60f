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
    rows (at least one and at most ``B - 1`` while both sets have images).
    """
    if n_labelled == 0 or n_unlabelled == 0:
        n_l = batch_size if n_unlabelled == 0 else 0
    else:
        n_l = min(batch_size - 1, max(1, round(batch_size * share)))
    n_u = batch_size - n_l
    steps = math.ceil((n_labelled + n_unlabelled) / batch_size)
    labelled = stream(n_labelled, seed, 0, epoch * steps * n_l, steps * n_l)
    unlabelled = stream(n_unlabelled, seed, 1, epoch * steps * n_u, steps * n_u) + n_labelled
    return [
        labelled[s * n_l : (s + 1) * n_l].tolist() + unlabelled[s * n_u : (s + 1) * n_u].tolist()
        for s in range(steps)
    ]
