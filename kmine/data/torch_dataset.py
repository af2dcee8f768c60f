"""A torch Dataset of preprocessed, optionally augmented image/mask pairs.

Every image is decoded and resized once, at construction, and kept in memory as uint8:
decoding and shrinking a 1920x1072 JPEG every epoch would dominate training on 2 CPU cores
(800 images at 224 px take ~120 MB).

Augmentation is repeatable: the ops for item ``i`` in epoch ``e`` come from
``numpy.random.default_rng([seed, e, i])``, independent of worker processes and of the
order items are fetched in.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate
from tqdm.auto import tqdm

from .augment import IDENTITY, DihedralOps, apply_dihedral, draw_dihedral
from .dataset import DatasetIndex, Sample, load_image, load_mask
from .preprocess import resize_mask_shortest_center_crop, resize_shortest_center_crop


def _load_pair(sample: Sample, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(size, size, 3) uint8 image and (size, size) bool mask (None if unlabelled)."""
    image = resize_shortest_center_crop(load_image(sample.image_path), size)
    if sample.mask_path is None:
        return image, None
    return image, resize_mask_shortest_center_crop(load_mask(sample.mask_path), size)


class SegmentationSet(Dataset):
    """Preprocessed images (and masks) of ``stems`` from ``index``.

    Args:
        index: the scanned dataset.
        stems: which images, in this order (default: all of ``index``).
        size: side of the square crop (shortest side resized to ``size``, centre crop).
        augment: apply random dihedral ops (:mod:`kmine.data.augment`) per item and epoch.
        seed: seeds the augmentation.
        threads: threads decoding images at construction (PIL releases the GIL).
        progress: show a tqdm bar while loading (on a terminal only: not in a log file or a worker).
        require_masks: raise if any stem has no usable mask.

    Items are dicts:
        ``image``: (3, S, S) uint8 tensor; ``mask``: (1, S, S) float32 in {0, 1}, only for
        labelled items; ``has_mask``: bool; ``index``: int position in this set; ``stem``: str;
        ``ops``: (4,) bool tensor, the dihedral ops applied (hflip, vflip, rot90, transpose);
        and, once :attr:`pseudo_labels` is set, ``pseudo``: (1, S, S) float32 (zeros when the
        item has none) and ``has_pseudo``: bool.
    Batch a set that mixes labelled and unlabelled stems with :func:`collate_segmentation`
    (the default collate needs the same keys in every item).
    """

    def __init__(self, index: DatasetIndex, stems: Sequence[str] | None = None, size: int = 224,
                 augment: bool = False, seed: int = 0, threads: int = 2, progress: bool = True,
                 require_masks: bool = False):
        stems = list(index.stems if stems is None else stems)
        absent = [s for s in stems if s not in index]
        if absent:
            raise KeyError(f"{len(absent)} stems are not in {index.root} (see its .problems): "
                           f"{absent[:5]}")
        unlabelled = [s for s in stems if not index[s].labelled]
        if require_masks and unlabelled:
            raise ValueError(f"{len(unlabelled)} stems have no usable mask in {index.root}: "
                             f"{unlabelled[:5]}; see index.problems")
        self.stems, self.size, self.augment, self.seed = stems, size, augment, seed
        self.epoch = 0
        self._pseudo: dict[int, np.ndarray] | None = None
        self.images, self.masks = self._load(index, threads, progress)

    def _load(self, index: DatasetIndex, threads: int, progress: bool):
        samples = self._samples = [index[s] for s in self.stems]
        images = np.empty((len(samples), self.size, self.size, 3), dtype=np.uint8)
        masks: list[np.ndarray | None] = []
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            pairs = pool.map(lambda s: _load_pair(s, self.size), samples)
            bar = tqdm(pairs, total=len(samples), disable=None if progress else True,  # None: on a terminal
                       desc=f"loading {index.root.name}", unit="img")
            for i, (image, mask) in enumerate(bar):
                images[i] = image
                masks.append(mask)
        return images, masks

    def __len__(self) -> int:
        return len(self.stems)

    @property
    def has_mask(self) -> np.ndarray:
        """(N,) bool: which items are labelled."""
        return np.array([m is not None for m in self.masks], dtype=bool)

    def withhold_masks(self) -> dict[int, np.ndarray]:
        """Make every item unlabelled; returns the masks it had, (S, S) bool by item index.

        For unlabelled training images whose truth the dataset happens to hold: training
        must never see it, but a benchmark may score pseudo-labels against it."""
        held = {i: m for i, m in enumerate(self.masks) if m is not None}
        self.masks = [None] * len(self.masks)
        return held

    def crop_at(self, index: int, size: int) -> np.ndarray:
        """Item ``index``'s image as the same crop at side ``size``, (size, size, 3) uint8,
        decoded from its file (for a teacher that should see more pixels than the student)."""
        if size == self.size:
            return self.images[index]
        return resize_shortest_center_crop(load_image(self._samples[index].image_path), size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's augmentation draw. With DataLoader workers, call it before
        iterating (workers copy the dataset per epoch unless ``persistent_workers=True``)."""
        self.epoch = int(epoch)

    def ops_for(self, index: int, epoch: int | None = None) -> DihedralOps:
        """The dihedral ops item ``index`` gets in ``epoch`` (default: the current one)."""
        if not self.augment:
            return IDENTITY
        epoch = self.epoch if epoch is None else epoch
        return draw_dihedral(np.random.default_rng([self.seed, epoch, index]))

    def augment_with(self, index: int, *arrays, epoch: int | None = None):
        """Apply item ``index``'s ops of ``epoch`` to ``arrays`` given in the un-augmented
        (S, S) frame (numpy (S, S[, C]) or torch (..., S, S)); returns them transformed."""
        ops = self.ops_for(index, epoch)
        return tuple(apply_dihedral(a, ops) for a in arrays)

    @property
    def pseudo_labels(self) -> dict[int, np.ndarray] | None:
        """Stored pseudo-labels by item index, in the un-augmented frame: (S, S) float in
        [0, 1] or bool. Items get them with the same dihedral ops as their image."""
        return self._pseudo

    @pseudo_labels.setter
    def pseudo_labels(self, labels: dict[int, np.ndarray] | None) -> None:
        if labels is not None:
            labels = {int(i): self._check_pseudo(i, p) for i, p in labels.items()}
        self._pseudo = labels

    def _check_pseudo(self, index: int, label) -> np.ndarray:
        label = np.asarray(label.cpu() if isinstance(label, torch.Tensor) else label)
        label = label.reshape(label.shape[-2:]) if label.ndim == 3 and label.shape[0] == 1 else label
        if not 0 <= int(index) < len(self):
            raise IndexError(f"pseudo-label for item {index}, but the set has {len(self)} items")
        if label.shape != (self.size, self.size):
            raise ValueError(f"pseudo-label for item {index} ({self.stems[index]!r}) has shape "
                             f"{label.shape}; expected ({self.size}, {self.size}), the "
                             f"un-augmented preprocessed frame")
        return label.astype(np.float32)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range for {len(self)} items")
        ops = self.ops_for(index)
        image = apply_dihedral(self.images[index], ops)
        item = {"image": torch.from_numpy(image).permute(2, 0, 1).contiguous(),
                "has_mask": self.masks[index] is not None, "index": index,
                "stem": self.stems[index], "ops": torch.tensor(ops, dtype=torch.bool)}
        if self.masks[index] is not None:
            item["mask"] = _plane(apply_dihedral(self.masks[index], ops))
        if self._pseudo is not None:
            pseudo = self._pseudo.get(index)
            item["has_pseudo"] = pseudo is not None
            item["pseudo"] = (_plane(apply_dihedral(pseudo, ops)) if pseudo is not None
                              else torch.zeros(1, self.size, self.size))
        return item


def _plane(array: np.ndarray) -> torch.Tensor:
    """(S, S) bool/float -> (1, S, S) float32 tensor."""
    return torch.from_numpy(array.astype(np.float32))[None]


def collate_segmentation(batch: list[dict]) -> dict:
    """Like torch's default collate, but items without ``mask`` get zeros (their
    ``has_mask`` is False), so labelled and unlabelled items can share a batch, and a batch
    drawn only from unlabelled items (common at 50 % labelled) still has its ``mask``."""
    batch = [item if "mask" in item else
             {**item, "mask": torch.zeros((1,) + tuple(item["image"].shape[1:]))}
             for item in batch]
    return default_collate(batch)


__all__ = ["SegmentationSet", "collate_segmentation"]
