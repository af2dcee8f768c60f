"""SegmentationSet: preprocessing once, repeatable augmentation, pseudo-labels, batching."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from kmine.data import (
    IDENTITY,
    DihedralOps,
    SegmentationSet,
    apply_dihedral,
    collate_segmentation,
    load_image,
    load_mask,
    resize_mask_shortest_center_crop,
    resize_shortest_center_crop,
    scan_dataset,
)

SIZE = 64  # small crops keep the tests fast; the pipeline is size-agnostic


@pytest.fixture(scope="module")
def covid_index(covid_root):
    return scan_dataset(covid_root)


@pytest.fixture(scope="module")
def plain_set(covid_index):
    return SegmentationSet(covid_index, size=SIZE, progress=False)


@pytest.fixture(scope="module")
def augmented_set(covid_index):
    return SegmentationSet(covid_index, size=SIZE, augment=True, seed=7, progress=False)


def test_items_are_preprocessed_once_and_typed(plain_set, covid_index):
    assert len(plain_set) == 12 and plain_set.has_mask.all()
    item = plain_set[3]
    assert item["image"].shape == (3, SIZE, SIZE) and item["image"].dtype == torch.uint8
    assert item["mask"].shape == (1, SIZE, SIZE) and item["mask"].dtype == torch.float32
    assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
    assert item["index"] == 3 and item["stem"] == covid_index.stems[3] and item["has_mask"]
    assert item["ops"].tolist() == list(IDENTITY)
    sample = covid_index[item["stem"]]
    expected = resize_shortest_center_crop(load_image(sample.image_path), SIZE)
    assert (item["image"].permute(1, 2, 0).numpy() == expected).all()
    expected_mask = resize_mask_shortest_center_crop(load_mask(sample.mask_path), SIZE)
    assert (item["mask"][0].numpy() == expected_mask).all()


def test_augmentation_is_repeatable_per_epoch_and_aligned(augmented_set, plain_set):
    augmented_set.set_epoch(0)
    first = [augmented_set[i] for i in range(len(augmented_set))]
    assert all((augmented_set[i]["image"] == first[i]["image"]).all() for i in range(12))
    augmented_set.set_epoch(1)
    second = [augmented_set[i] for i in range(len(augmented_set))]
    assert any(a["ops"].tolist() != b["ops"].tolist() for a, b in zip(first, second))
    for plain, item in zip(plain_set, second):
        ops = DihedralOps(*item["ops"].tolist())
        assert ops == augmented_set.ops_for(item["index"])
        assert (item["image"] == apply_dihedral(plain["image"], ops)).all()
        assert (item["mask"] == apply_dihedral(plain["mask"], ops)).all()
    augmented_set.set_epoch(0)


def test_stored_pseudo_labels_follow_the_image(augmented_set):
    augmented_set.set_epoch(5)
    pseudo = np.random.default_rng(0).random((SIZE, SIZE)).astype(np.float32)
    augmented_set.pseudo_labels = {2: pseudo}
    try:
        item, other = augmented_set[2], augmented_set[4]
        assert item["has_pseudo"] and not other["has_pseudo"]
        (expected,) = augmented_set.augment_with(2, pseudo)
        assert torch.equal(item["pseudo"][0], torch.from_numpy(expected))
        assert item["pseudo"].shape == (1, SIZE, SIZE) and not other["pseudo"].any()
        with pytest.raises(ValueError, match=r"un-augmented"):
            augmented_set.pseudo_labels = {0: np.zeros((SIZE, SIZE + 1))}
    finally:
        augmented_set.pseudo_labels = None
        augmented_set.set_epoch(0)


def test_mixed_labelled_and_unlabelled_batch(covid_root, tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for stem in ("covid_1579", "Normal (1)"):
        shutil.copy(covid_root / "images" / f"{stem}.png", tmp_path / "images")
        shutil.copy(covid_root / "masks" / f"{stem}.png", tmp_path / "masks")
    shutil.copy(covid_root / "images" / "covid_1582.png", tmp_path / "images")  # no mask
    index = scan_dataset(tmp_path)
    data = SegmentationSet(index, size=SIZE, augment=True, progress=False)
    assert "mask" not in data[index.stems.index("covid_1582")]
    batch = next(iter(DataLoader(data, batch_size=3, collate_fn=collate_segmentation)))
    assert batch["mask"].shape == (3, 1, SIZE, SIZE)
    assert batch["has_mask"].tolist() == [s != "covid_1582" for s in index.stems]
    assert not batch["mask"][~batch["has_mask"]].any()
    assert batch["image"].shape == (3, 3, SIZE, SIZE) and batch["ops"].shape == (3, 4)
    # A batch of unlabelled items alone (a shuffle at 50 % labelled draws them) collates the same way.
    alone = collate_segmentation([data[index.stems.index("covid_1582")]])
    assert alone["mask"].shape == (1, 1, SIZE, SIZE) and not alone["has_mask"].any()
    with pytest.raises(ValueError, match="no usable mask"):
        SegmentationSet(index, size=SIZE, require_masks=True, progress=False)
    with pytest.raises(KeyError, match="ghost"):
        SegmentationSet(index, ["ghost"], size=SIZE, progress=False)


def test_large_kvasir_images_load(kvasir_index, kvasir_non_square):
    data = SegmentationSet(kvasir_index, kvasir_non_square, size=224, progress=False)
    assert data.images.shape == (3, 224, 224, 3)
    assert all(data[i]["mask"].sum() > 0 for i in range(3))
