"""Shared fixtures: real weights and images from ../shared, teachers built once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from teacher_helpers import COVID, COVID_NAMES, SHARED, WEIGHTS  # beside this file; on pytest's pythonpath


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests need the real weights/data in {SHARED}")
    return path


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    _require(WEIGHTS / "mobile_sam.pt")
    _require(WEIGHTS / "lite_medsam.pth")
    return WEIGHTS


@pytest.fixture(scope="session")
def mobilesam(weights_dir):
    from kmine.teacher import build_teacher

    return build_teacher("mobilesam", weights_dir=weights_dir)


@pytest.fixture(scope="session")
def litemedsam(weights_dir):
    from kmine.teacher import build_teacher

    return build_teacher("litemedsam", weights_dir=weights_dir)


@pytest.fixture(scope="session")
def covid_samples() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, (256, 256) uint8 image, (256, 256) bool lung mask) for COVID_NAMES."""
    _require(COVID)
    samples = []
    for name in COVID_NAMES:
        image = np.array(Image.open(_require(COVID / "images" / name)))
        mask = np.array(Image.open(_require(COVID / "masks" / name)).convert("L")) >= 128
        samples.append((name, image, mask))
    return samples
