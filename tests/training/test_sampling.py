"""Second-phase batches with a fixed share of labelled images (kmine.training.sampling)."""

import math
from collections import Counter

import pytest

from kmine.training.sampling import mixed_batches, stream


@pytest.mark.parametrize("n_labelled, n_unlabelled, share, per_batch", [(7, 63, 0.5, 4), (20, 5, 0.25, 2),
                                                                        (3, 40, 0.01, 1), (3, 40, 0.99, 7)])
def test_every_batch_holds_the_share_of_labelled_images(n_labelled, n_unlabelled, share, per_batch):
    batches = mixed_batches(n_labelled, n_unlabelled, 8, share, seed=0, epoch=0)
    assert len(batches) == math.ceil((n_labelled + n_unlabelled) / 8), "an epoch costs a pass over both sets"
    for batch in batches:
        assert len(batch) == 8
        assert sum(i < n_labelled for i in batch) == per_batch
        assert all(0 <= i < n_labelled + n_unlabelled for i in batch)


def test_each_kind_is_seen_once_before_any_is_seen_again_across_epochs():
    epochs = [mixed_batches(10, 30, 4, 0.5, seed=3, epoch=e) for e in range(3)]
    drawn = [i for batches in epochs for batch in batches for i in batch]
    labelled = [i for i in drawn if i < 10]
    unlabelled = [i for i in drawn if i >= 10]
    for kind, offset, n in ((labelled, 0, 10), (unlabelled, 10, 30)):
        for start in range(0, len(kind) // n * n, n):
            assert sorted(kind[start : start + n]) == list(range(offset, offset + n))
    assert Counter(unlabelled).most_common(1)[0][1] - min(Counter(unlabelled).values()) <= 1


def test_batches_repeat_for_a_seed_and_epoch_and_differ_otherwise():
    assert mixed_batches(10, 30, 4, 0.5, 1, 2) == mixed_batches(10, 30, 4, 0.5, 1, 2)
    assert mixed_batches(10, 30, 4, 0.5, 1, 2) != mixed_batches(10, 30, 4, 0.5, 1, 3)
    assert mixed_batches(10, 30, 4, 0.5, 1, 2) != mixed_batches(10, 30, 4, 0.5, 2, 2)


def test_batches_of_one_image_take_the_share_over_steps():
    # A batch of one cannot be half labelled: half of the steps take a labelled image instead.
    epochs = [mixed_batches(10, 30, 1, 0.5, seed=0, epoch=e) for e in range(2)]
    for batches in epochs:
        assert len(batches) == 40 and all(len(b) == 1 for b in batches)
        assert sum(b[0] < 10 for b in batches) == 20
    drawn = [b[0] for batches in epochs for b in batches]
    assert sorted(i for i in drawn if i < 10) == sorted(list(range(10)) * 4)
    assert sorted([i for i in drawn if i >= 10][:30]) == list(range(10, 40)), "each once before any again"
    assert sum(b[0] < 10 for b in mixed_batches(10, 30, 1, 0.25, seed=0, epoch=0)) == 10


def test_one_empty_set_leaves_the_other_whole_batches():
    assert all(len(b) == 4 and max(b) < 10 for b in mixed_batches(10, 0, 4, 0.5, 0, 0))
    assert all(len(b) == 4 and min(b) >= 0 for b in mixed_batches(0, 10, 4, 0.5, 0, 0))


def test_the_stream_spans_permutations():
    assert sorted(stream(5, 0, 0, 0, 5)) == list(range(5))
    assert stream(5, 0, 0, 3, 4).tolist() == stream(5, 0, 0, 0, 10)[3:7].tolist()
    assert len(stream(0, 0, 0, 0, 3)) == 0
