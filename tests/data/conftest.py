"""Fixtures for the data tests: the real datasets in ../shared/data, skipped if absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared_data import DATA as SHARED_DATA


def _dataset(name: str) -> Path:
    path = SHARED_DATA / name
    if not (path / "images").is_dir():
        pytest.skip(f"real dataset {name} not found at {path} (expected ../shared/data/{name} "
                    f"beside the project)")
    return path


@pytest.fixture(scope="session")
def covid_root() -> Path:
    return _dataset("covid-qu-ex-sample")


@pytest.fixture(scope="session")
def kvasir_root() -> Path:
    return _dataset("kvasir-seg")


@pytest.fixture(scope="session")
def kvasir_index(kvasir_root):
    from kmine.data import scan_dataset
    return scan_dataset(kvasir_root)


@pytest.fixture(scope="session")
def kvasir_non_square(kvasir_index):
    """Stems of a few non-square kvasir images: the smallest, the largest and one between."""
    sizes = {}
    for sample in kvasir_index.samples:
        with Image.open(sample.image_path) as im:
            if im.size[0] != im.size[1]:
                sizes[sample.stem] = im.size
    by_area = sorted(sizes, key=lambda s: sizes[s][0] * sizes[s][1])
    return [by_area[0], by_area[len(by_area) // 2], by_area[-1]]


@pytest.fixture
def pattern() -> np.ndarray:
    """(16, 16, 3) uint8 image that no flip/rotation maps onto itself (all values distinct
    per channel)."""
    return (np.arange(16 * 16 * 3).reshape(16, 16, 3) % 251).astype(np.uint8)
