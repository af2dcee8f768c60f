"""server/services/datasets.py on PostgreSQL and the blob store, with the real COVID-QU-Ex
sample and a Kvasir-SEG JPEG: importing (all or nothing), counts, pages, PNGs, splits, moves."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from service_fixtures import covid_entries
from shared_data import KVASIR, require


@pytest.fixture()
def store(migrated):
    from server.core.storage import BlobStore

    return BlobStore(migrated.blobs_dir)


def blob_count(settings) -> int:
    return sum(1 for p in settings.blobs_dir.rglob("*") if p.is_file()) if settings.blobs_dir.exists() else 0


def dataset_count(session) -> int:
    from server.core.models import Dataset

    return session.scalar(select(func.count(Dataset.id)))


def test_import_counts_page_and_png(db_session, migrated, store):
    from server.services import datasets as svc

    entries = covid_entries(5) + [("images/.hidden.png", b"x"), ("notes/readme.txt", b"hello")]
    dataset, ignored = svc.import_dataset(db_session, store, migrated, "  covid five  ", entries)
    assert dataset.name == "covid five"
    assert sorted(ignored) == ["images/.hidden.png", "notes/readme.txt"]
    assert svc.counts(db_session, dataset) == {"images": 5, "annotated": 5, "unannotated": 0, "masks": {"ground_truth": 5}}
    assert svc.active_model_id(db_session, dataset.id) is None

    total, page, annotated = svc.image_page(db_session, dataset.id, offset=3, limit=10)
    assert total == 5 and len(page) == 2 and annotated == {i.id for i in page}
    stems = [i.stem for i in svc.image_page(db_session, dataset.id, 0, 500)[1]]
    assert stems == sorted(stems)

    image = page[0]
    png = svc.image_png(store, image)
    assert png == store.get(image.sha256)  # a PNG upload is served as it is
    rgb = svc.image_rgb(store, migrated, image)
    assert rgb.shape == (image.height, image.width, 3) and rgb.dtype.name == "uint8"


def test_jpeg_served_as_png(db_session, migrated, store):
    from server.services import datasets as svc

    require(KVASIR)
    path = min((KVASIR / "images").iterdir(), key=lambda p: p.stat().st_size)
    dataset, _ = svc.import_dataset(db_session, store, migrated, "kvasir one", [(f"images/{path.name}", path.read_bytes())])
    assert svc.counts(db_session, dataset)["unannotated"] == 1
    image = dataset.images[0]
    with PILImage.open(path) as original, PILImage.open(io.BytesIO(svc.image_png(store, image))) as served:
        assert served.format == "PNG" and served.size == original.size == (image.width, image.height)


@pytest.mark.parametrize("name, words", [
    ("", "1 to 200 characters"), ("x" * 201, "1 to 200 characters"),
    ("bad\x00name", "control characters"), ("two\nlines", "control characters"),
])
def test_bad_names_refused_before_anything_is_stored(db_session, migrated, store, name, words):
    from server.core.errors import BadInput
    from server.services import datasets as svc

    before = (dataset_count(db_session), blob_count(migrated))
    with pytest.raises(BadInput, match=words) as err:
        svc.import_dataset(db_session, store, migrated, name, covid_entries(2))
    assert err.value.status == 422
    assert (dataset_count(db_session), blob_count(migrated)) == before


def test_refused_import_leaves_no_blob_or_row(db_session, migrated, store):
    from server.core.errors import BadInput
    from server.services import datasets as svc

    entries = covid_entries(3)
    # the last entry is a mask; make it the wrong size: nothing may be stored
    name, _ = entries[-1]
    small = io.BytesIO()
    PILImage.new("L", (10, 10)).save(small, format="PNG")
    entries[-1] = (name, small.getvalue())
    before = (dataset_count(db_session), blob_count(migrated))
    with pytest.raises(BadInput, match="must match"):
        svc.import_dataset(db_session, store, migrated, "wrong mask", entries)
    with pytest.raises(BadInput, match="without an image"):
        svc.import_dataset(db_session, store, migrated, "orphan", covid_entries(1) + [("masks/zzz.png", small.getvalue())])
    with pytest.raises(BadInput, match="no images found"):
        svc.import_dataset(db_session, store, migrated, "empty", [("other/a.png", small.getvalue())])
    too_many = migrated.model_copy(update={"max_files": 3})
    with pytest.raises(BadInput, match="at most 3") as err:
        svc.import_dataset(db_session, store, too_many, "many", covid_entries(2))
    assert err.value.status == 413
    assert (dataset_count(db_session), blob_count(migrated)) == before


def test_split_move_and_delete(db_session, migrated, store):
    from server.core.errors import BadInput
    from server.core.models import Dataset, Image, Split
    from server.services import datasets as svc

    entries = covid_entries(6)
    unannotated_name = sorted(n for n, _ in entries if n.startswith("masks/"))[0]
    entries = [e for e in entries if e[0] != unannotated_name]
    dataset, _ = svc.import_dataset(db_session, store, migrated, "splits", entries)
    split = svc.create_split(db_session, dataset, 0.2, 0.2, 0.5, seed=0)
    parts = svc.split_parts(db_session, split)
    assert sum(len(v) for v in parts.values()) == 6
    without_mask = next(i for i in dataset.images if f"masks/{i.filename}" == unannotated_name)
    assert {"id": without_mask.id, "stem": without_mask.stem} in parts["unlabelled"]
    assert split.fractions == {"val": 0.2, "test": 0.2, "labelled": 0.5}

    with pytest.raises(BadInput, match="no mask") as err:  # an unannotated image cannot be validated on
        svc.move_images(db_session, split, [without_mask.id], "val")
    assert err.value.status == 409
    with pytest.raises(BadInput, match="not in split") as err:
        svc.move_images(db_session, split, [10**9], "labelled")
    assert err.value.status == 404
    with pytest.raises(BadInput, match="unknown"):
        svc.move_images(db_session, split, [without_mask.id], "nowhere")
    labelled = [m["id"] for m in parts["labelled"]]
    with pytest.raises(BadInput, match="at least one labelled") as err:  # the last labelled image stays
        svc.move_images(db_session, split, labelled, "unlabelled")
    assert err.value.status == 409
    assert svc.split_parts(db_session, split)["labelled"] == parts["labelled"]  # rolled back
    svc.move_images(db_session, split, [parts["unlabelled"][-1]["id"]], "unlabelled")

    nothing, _ = svc.import_dataset(db_session, store, migrated, "no labels", [e for e in covid_entries(1) if e[0].startswith("images/")])
    with pytest.raises(BadInput, match="no annotated image"):
        svc.create_split(db_session, nothing, 0.1, 0.1, 1.0, 0)
    with pytest.raises(BadInput):  # fractions that leave nothing to train on
        svc.create_split(db_session, dataset, 0.6, 0.6, 1.0, 0)

    dataset_id, split_id = dataset.id, split.id
    svc.delete_dataset(db_session, store, dataset)
    db_session.expire_all()
    assert db_session.get(Dataset, dataset_id) is None and db_session.get(Split, split_id) is None
    assert db_session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset_id)) == 0
