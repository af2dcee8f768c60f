"""Fixtures for the student tests."""

from __future__ import annotations

import pytest

from kmine.weights import WeightsError, weight_path


@pytest.fixture(scope="session")
def lite0_checkpoint():
    """Path of the verified EfficientNet-Lite0 ImageNet checkpoint; skip if unavailable."""
    try:
        return weight_path("efficientnet_lite0")
    except WeightsError as err:
        pytest.skip(str(err))
