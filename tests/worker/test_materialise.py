"""worker.materialise: a dataset and split in PostgreSQL and the blob store, written out as the
folder kmine trains on (images/, masks/ with each image's current label, split.json)."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from kmine.data import load_mask, load_split, scan_dataset
from shared_data import COVID, require


@pytest.fixture()
def store(settings):
    from server.core.db import upgrade_database
    from server.core.storage import BlobStore

    upgrade_database(settings)  # at head already when the API fixtures ran first: then a no-op
    return BlobStore(settings.blobs_dir)


def _png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(mask.astype(np.uint8) * 255).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def dataset(settings, store):
    """The 12 COVID-QU-Ex images with their lung masks, plus ``Extra.JPG`` (a JPEG, no mask),
    imported through the service; a split with val and test images. Returns (dataset id, split id)."""
    from server.core.db import session_scope
    from server.services.datasets import create_split, import_dataset

    require(COVID)
    entries = [(f"{folder}/{p.name}", p.read_bytes()) for folder in ("images", "masks")
               for p in sorted((COVID / folder).iterdir())]
    jpeg = io.BytesIO()
    PILImage.open(sorted((COVID / "images").iterdir())[0]).convert("RGB").save(jpeg, "JPEG")
    entries.append(("images/Extra.JPG", jpeg.getvalue()))
    with session_scope(settings) as session:
        ds, ignored = import_dataset(session, store, settings, f"materialise-{secrets.token_hex(3)}", entries)
        assert ignored == []
        split = create_split(session, ds, val_fraction=0.17, test_fraction=0.17, labelled_fraction=0.5, seed=3)
        return ds.id, split.id


def _members(settings, split_id: int) -> dict[str, list[str]]:
    from server.core.db import session_scope
    from server.core.models import Image, SplitMember

    with session_scope(settings) as session:
        rows = session.execute(select(SplitMember.part, Image.stem).join(Image, Image.id == SplitMember.image_id)
                               .where(SplitMember.split_id == split_id)).all()
    parts: dict[str, list[str]] = {"labelled": [], "unlabelled": [], "val": [], "test": []}
    for part, stem in rows:
        parts[part].append(stem)
    return {k: sorted(v) for k, v in parts.items()}


def _materialise(settings, store, split_id: int, folder: Path):
    from server.core.db import session_scope
    from worker.materialise import materialise

    with session_scope(settings) as session:
        return materialise(session, store, split_id, folder)


def test_writes_images_masks_and_split(settings, store, dataset, tmp_path):
    from server.core.db import session_scope
    from server.core.models import Image

    dataset_id, split_id = dataset
    data, split_path, ids = _materialise(settings, store, split_id, tmp_path)
    assert data == tmp_path / "data" and split_path == tmp_path / "split.json"

    covid = sorted(p.stem for p in (COVID / "images").iterdir())
    assert sorted(p.name for p in (data / "images").iterdir()) == sorted([f"{s}.png" for s in covid] + ["Extra.jpg"])
    assert sorted(p.name for p in (data / "masks").iterdir()) == sorted(f"{s}.png" for s in covid)  # Extra has none
    for stem in covid:  # the uploaded image bytes; the stored mask has the uploaded mask's pixels
        assert (data / "images" / f"{stem}.png").read_bytes() == (COVID / "images" / f"{stem}.png").read_bytes()
        np.testing.assert_array_equal(load_mask(data / "masks" / f"{stem}.png"), load_mask(COVID / "masks" / f"{stem}.png"))
    with session_scope(settings) as session:
        images = session.scalars(select(Image).where(Image.dataset_id == dataset_id)).all()
        assert ids == {i.stem: i.id for i in images}
        for image in images:  # on one file system: hard links to the blobs, not copies
            written = data / "images" / f"{image.stem}{Path(image.filename).suffix.lower()}"
            assert written.samefile(store.path(image.sha256))

    parts = _members(settings, split_id)
    split = load_split(split_path)
    assert split.labelled == parts["labelled"] and split.unlabelled == parts["unlabelled"]
    assert split.val == parts["val"] and split.test == parts["test"]
    assert split.train == sorted(parts["labelled"] + parts["unlabelled"])
    assert "Extra" in split.unlabelled and parts["val"] and parts["test"]
    assert split.seed == 3 and split.labelled_fraction == pytest.approx(len(parts["labelled"]) / len(split.train))
    assert (split.source["split_id"], split.source["dataset_id"]) == (split_id, dataset_id)

    # kmine reads the folder: every labelled image has its mask, Extra is unlabelled
    index = scan_dataset(data)
    assert sorted(s.stem for s in index.samples) == sorted(covid + ["Extra"])
    assert index["Extra"].mask_path is None and all(index[s].mask_path is not None for s in covid)


def test_a_human_mask_overrides_the_ground_truth(settings, store, dataset, tmp_path):
    from server.core.db import session_scope
    from server.core.models import Image, Mask
    from server.services.datasets import set_human_mask, undo_human_mask

    dataset_id, split_id = dataset
    stem = "covid_1579"
    truth = load_mask(COVID / "masks" / f"{stem}.png")
    first, second = np.zeros_like(truth), np.zeros_like(truth)
    first[10:60, 20:90] = True
    second[100:200, 30:50] = True
    with session_scope(settings) as session:
        image = session.scalar(select(Image).where(Image.dataset_id == dataset_id, Image.stem == stem))
        other = session.scalar(select(Image).where(Image.dataset_id == dataset_id, Image.stem == "Normal (1)"))
        extra = session.scalar(select(Image).where(Image.dataset_id == dataset_id, Image.stem == "Extra"))
        set_human_mask(session, store, settings, image, _png(first), "first.png")
        # Masks of other kinds are never labels: a newer pseudo-label or prediction changes nothing.
        for target in (image, other, extra):
            digest, _ = store.put(_png(~truth))
            session.add(Mask(image_id=target.id, kind="pseudo_label", sha256=digest, round=1))
            session.add(Mask(image_id=target.id, kind="prediction", sha256=digest))
        session.commit()

    data, _, _ = _materialise(settings, store, split_id, tmp_path)
    np.testing.assert_array_equal(load_mask(data / "masks" / f"{stem}.png"), first)
    np.testing.assert_array_equal(load_mask(data / "masks" / "Normal (1).png"), load_mask(COVID / "masks" / "Normal (1).png"))
    assert not (data / "masks" / "Extra.png").exists()

    with session_scope(settings) as session:  # the newest human mask wins
        image = session.scalar(select(Image).where(Image.dataset_id == dataset_id, Image.stem == stem))
        set_human_mask(session, store, settings, image, _png(second), "second.png")
    (data / "images" / "stale.png").write_bytes(b"left from an earlier run")
    data, _, _ = _materialise(settings, store, split_id, tmp_path)
    np.testing.assert_array_equal(load_mask(data / "masks" / f"{stem}.png"), second)
    assert not (data / "images" / "stale.png").exists()  # the folder is written afresh

    # an undone save is no label: the version before it is written, then the imported truth
    for expected in (first, truth):
        with session_scope(settings) as session:
            image = session.scalar(select(Image).where(Image.dataset_id == dataset_id, Image.stem == stem))
            undo_human_mask(session, image, "reviewer")
        data, _, _ = _materialise(settings, store, split_id, tmp_path)
        np.testing.assert_array_equal(load_mask(data / "masks" / f"{stem}.png"), expected)


def test_copies_when_a_hard_link_is_impossible(settings, store, dataset):
    """Onto another file system (tmpfs) the files are copies with the same bytes."""
    _, split_id = dataset
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(settings.blobs_dir).st_dev:
        pytest.skip("no second file system (/dev/shm) to copy to")
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="kmine-materialise-"))
    try:
        data, _, _ = _materialise(settings, store, split_id, folder)
        written = data / "images" / "covid_1579.png"
        assert written.read_bytes() == (COVID / "images" / "covid_1579.png").read_bytes()
        assert written.stat().st_nlink == 1 and written.stat().st_dev != os.stat(settings.blobs_dir).st_dev
        np.testing.assert_array_equal(load_mask(data / "masks" / "covid_1579.png"), load_mask(COVID / "masks" / "covid_1579.png"))
    finally:
        shutil.rmtree(folder)


def test_a_deleted_split_is_named(settings, store, dataset, tmp_path):
    from server.core.db import session_scope
    from server.core.models import Split

    _, split_id = dataset
    with session_scope(settings) as session:
        session.delete(session.get(Split, split_id))
    with pytest.raises(ValueError, match=f"split {split_id} no longer exists"):
        _materialise(settings, store, split_id, tmp_path)
