"""What a run needs before its first epoch: device, split, and the three image sets."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from kmine.data import (
    DatasetIndex,
    SegmentationSet,
    Split,
    load_split,
    make_split,
    scan_dataset,
)
from kmine.training.config import TrainConfig

log = logging.getLogger(__name__)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_split(config: TrainConfig, index: DatasetIndex) -> Split:
    """The run's split: ``config.split``, else ``<data>/split.json``, else a seeded 80/10/10
    split of the labelled images; then re-partitioned at ``config.labelled_fraction``."""
    path = Path(config.split) if config.split else Path(config.data) / "split.json"
    if path.exists():
        split = load_split(path)
    elif config.split:
        raise FileNotFoundError(f"split file {path} not found")
    else:
        split = make_split(index.labelled_stems, val_fraction=0.1, test_fraction=0.1, seed=config.seed)
    if config.labelled_fraction is not None:
        # Only images with a mask can be labelled (a server's split may hold unannotated ones).
        split = split.with_labelled_fraction(config.labelled_fraction, config.seed, annotated=index.labelled_stems)
    missing = split.check_against(index)
    if missing:
        raise ValueError(f"{len(missing)} stems of the split are not usable images in {index.root}: {missing[:5]}")
    return split


@dataclass
class RunData:
    index: DatasetIndex
    split: Split
    labelled: SegmentationSet
    unlabelled: SegmentationSet
    val: SegmentationSet
    # True masks of unlabelled items (by item index), withheld from training and used only
    # to score pseudo-label quality when the dataset happens to have them.
    truth: dict[int, np.ndarray]

    @property
    def unlabelled_empty(self) -> bool:
        return len(self.unlabelled) == 0


def load_run_data(config: TrainConfig, keep_truth: bool = True) -> RunData:
    index = scan_dataset(config.data)
    for problem in index.problems:
        log.warning("%s", problem)
    split = resolve_split(config, index)
    dataset = partial(SegmentationSet, index, size=config.size, seed=config.seed)
    labelled = dataset(stems=split.labelled, augment=config.augment, require_masks=True)
    unlabelled = dataset(stems=split.unlabelled, augment=config.augment)
    truth = unlabelled.withhold_masks()
    val = dataset(stems=split.val, augment=False, require_masks=True)
    return RunData(index, split, labelled, unlabelled, val, truth if keep_truth else {})
