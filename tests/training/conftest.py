"""Small real runs on ../shared/data/covid-qu-ex-sample (12 chest X-rays)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_data import COVID, SHARED


@pytest.fixture(scope="session")
def covid_split(tmp_path_factory) -> Path:
    """8 train (4 labelled, 4 unlabelled), 2 val, 2 test, seed 0."""
    if not (COVID / "images").is_dir() or not (SHARED / "weights" / "mobile_sam.pt").exists():
        pytest.skip(f"needs the real data and weights in {SHARED}")
    from kmine.data import make_split, save_split, scan_dataset

    index = scan_dataset(COVID)
    split = make_split(index.labelled_stems, val_fraction=0.17, test_fraction=0.17, labelled_fraction=0.5, seed=0)
    assert (len(split.labelled), len(split.unlabelled), len(split.val), len(split.test)) == (4, 4, 2, 2)
    path = tmp_path_factory.mktemp("split") / "split.json"
    save_split(split, path)
    return path


@pytest.fixture
def small_config(covid_split):
    """A run that takes seconds: 128 px, batch 4, 2 epochs per phase, a brisk lr."""
    from kmine.training import TrainConfig

    def make(**overrides):
        values = dict(
            data=str(COVID), split=str(covid_split), size=128, batch_size=4, max_epochs=2,
            early_stop=5, lr=1e-3, seed=0, device="cpu",
        )
        values.update(overrides)
        return TrainConfig(**values)

    return make
