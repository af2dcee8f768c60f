"""scan_dataset, load_image and load_mask on real files and on a folder of broken ones."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kmine.data import DataError, load_image, load_mask, scan_dataset


def test_covid_sample_scans_clean(covid_root):
    index = scan_dataset(covid_root)
    assert len(index) == 12 and index.problems == []
    assert index.labelled_stems == index.stems
    assert "Normal (1)" in index and "non_COVID (11905)" in index  # spaces and parentheses
    sample = index["Normal (1)"]
    assert sample.image_path.name == "Normal (1).png" and sample.mask_path.name == "Normal (1).png"
    image, mask = load_image(sample.image_path), load_mask(sample.mask_path)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert (image[..., 0] == image[..., 2]).all()  # greyscale repeated over RGB
    assert mask.shape == (256, 256) and mask.dtype == bool and 0 < mask.mean() < 1


def test_unknown_stem_and_missing_images_folder(covid_root, tmp_path):
    with pytest.raises(KeyError, match="no image with stem"):
        scan_dataset(covid_root)["nope"]
    with pytest.raises(ValueError, match=str(tmp_path / "images")):
        scan_dataset(tmp_path)


def _save(path, array, **kw):
    Image.fromarray(array).save(path, **kw)


@pytest.fixture
def messy_root(tmp_path):
    """A dataset with one of each problem, and good files of several formats."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    mask = np.zeros((20, 30), np.uint8)
    mask[5:15, 10:20] = 200
    _save(images / "rgb.jpg", rgb)
    _save(images / "grey.png", grey)
    _save(images / "tiff image.tif", rgb)
    _save(images / "bitmap.BMP", rgb)
    for stem in ("rgb", "grey", "tiff image", "bitmap"):
        _save(masks / f"{stem}.png", mask)
    (images / "corrupt.jpg").write_bytes(b"not a jpeg at all" * 10)
    _save(masks / "corrupt.png", mask)
    _save(images / "wrongsize.png", rgb)
    _save(masks / "wrongsize.png", np.zeros((21, 30), np.uint8))
    _save(images / "nomask.jpg", rgb)
    _save(masks / "orphan.png", mask)
    _save(images / "rgb.png", rgb)  # duplicate stem of rgb.jpg
    (images / "notes.txt").write_text("hello")
    (images / ".DS_Store").write_bytes(b"\0")
    return tmp_path


def test_messy_folder_reports_each_problem_by_file_name(messy_root):
    index = scan_dataset(messy_root)
    by_kind = {}
    for problem in index.problems:
        by_kind.setdefault(problem.kind, []).append(problem)
        assert problem.path.name in problem.reason or problem.kind == "duplicate_stem"
    assert [p.path.name for p in by_kind["unreadable"]] == ["corrupt.jpg"]
    assert "corrupt.png is unused" in by_kind["unreadable"][0].reason
    assert [p.path.name for p in by_kind["size_mismatch"]] == ["wrongsize.png"]
    assert [p.path.name for p in by_kind["missing_mask"]] == ["nomask.jpg"]
    assert [p.path.name for p in by_kind["orphan_mask"]] == ["orphan.png"]
    assert [p.path.name for p in by_kind["duplicate_stem"]] == ["rgb.png"]
    assert "rgb.jpg" in by_kind["duplicate_stem"][0].reason  # says which file is used
    assert [p.path.name for p in by_kind["ignored"]] == ["notes.txt"]
    assert len(index.problems) == 6
    assert index.stems == ["bitmap", "grey", "nomask", "rgb", "tiff image", "wrongsize"]
    assert index.labelled_stems == ["bitmap", "grey", "rgb", "tiff image"]
    assert index["wrongsize"].mask_path is None and index["nomask"].mask_path is None
    assert "corrupt" not in index
    for sample in index:  # everything kept loads
        assert load_image(sample.image_path).shape == (20, 30, 3)
        if sample.labelled:
            assert load_mask(sample.mask_path).sum() == 100
    assert "6 problems" in index.report()


def test_no_masks_folder_means_unlabelled(tmp_path):
    (tmp_path / "images").mkdir()
    _save(tmp_path / "images" / "a.png", np.zeros((4, 4), np.uint8))
    index = scan_dataset(tmp_path)
    assert index.stems == ["a"] and index.labelled_stems == []
    assert [p.kind for p in index.problems] == ["no_masks_folder"]


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16", "1", "CMYK"])
def test_load_image_modes_give_rgb_uint8(tmp_path, mode):
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    base = Image.fromarray(np.tile(np.arange(0, 256, 16, dtype=np.uint8), (8, 1)))
    im = base.convert(mode) if mode != "I;16" else Image.fromarray(
        np.tile(np.arange(0, 65536, 4096, dtype=np.uint16), (8, 1)))
    im.save(path)
    image = load_image(path)
    assert image.shape == (8, 16, 3) and image.dtype == np.uint8
    assert image[0, -1].max() > 200 and image[0, 0].max() < 50  # dark left, bright right


def test_twelve_bit_image_is_stretched_to_twelve_bits(tmp_path):
    values = np.tile(np.array([0, 2048, 4095], dtype=np.uint16), (4, 1))
    Image.fromarray(values).save(tmp_path / "x.png")
    assert load_image(tmp_path / "x.png")[0, :, 0].tolist() == [0, 128, 255]


def test_sixteen_bit_mask_threshold(tmp_path):
    values = np.array([[0, 32895, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").tolist() == [[False, False, True, True]]


def test_kvasir_jpeg_mask_thresholded_at_128(kvasir_index):
    sample = kvasir_index.samples[0]
    raw = np.asarray(Image.open(sample.mask_path).convert("L"))
    assert ((raw > 0) & (raw < 255)).any()  # JPEG noise: values between 0 and 255
    mask = load_mask(sample.mask_path)
    assert mask.dtype == bool and mask.shape == raw.shape
    assert (mask == (raw >= 128)).all() and mask.sum() > (raw == 255).sum()


def test_unreadable_files_raise_data_error_naming_them(tmp_path):
    bad = tmp_path / "broken file.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    for loader in (load_image, load_mask):
        with pytest.raises(DataError, match="broken file.png"):
            loader(bad)
    truncated = tmp_path / "cut.jpg"
    _save(tmp_path / "full.jpg", np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    truncated.write_bytes((tmp_path / "full.jpg").read_bytes()[:300])
    with pytest.raises(DataError, match="cut.jpg"):
        load_image(truncated)
