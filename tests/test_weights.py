"""Checkpoints come from a folder, are checksummed, and a missing one says where to get it."""

import shutil

import pytest

from kmine.weights import KNOWN_WEIGHTS, WeightsError, default_weights_dir, weight_path
from shared_data import WEIGHTS, require


def test_real_checkpoints_verify():
    require(WEIGHTS / "mobile_sam.pt")
    for name in ("mobile_sam", "lite_medsam", "efficientnet_lite0"):
        assert weight_path(name, WEIGHTS).parent == WEIGHTS


def test_missing_file_names_file_checksum_and_source(tmp_path):
    with pytest.raises(WeightsError) as err:
        weight_path("sam_vit_b", tmp_path)
    text = str(err.value)
    spec = KNOWN_WEIGHTS["sam_vit_b"]
    assert spec.filename in text and spec.sha256 in text and "dl.fbaipublicfiles.com" in text


def test_corrupt_file_is_refused(tmp_path):
    require(WEIGHTS / "efficientnet-lite0-57934424.pth")
    copy = tmp_path / "efficientnet-lite0-57934424.pth"
    shutil.copy(WEIGHTS / copy.name, copy)
    with open(copy, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(WeightsError, match="corrupt"):
        weight_path("efficientnet_lite0", tmp_path)


def test_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KMINE_WEIGHTS_DIR", str(tmp_path))
    assert default_weights_dir() == tmp_path
    with pytest.raises(WeightsError, match=str(tmp_path)):
        weight_path("mobile_sam")


def test_default_is_shared_folder_beside_checkout(monkeypatch):
    require(WEIGHTS)
    monkeypatch.delenv("KMINE_WEIGHTS_DIR", raising=False)
    assert default_weights_dir().resolve() == WEIGHTS.resolve()
