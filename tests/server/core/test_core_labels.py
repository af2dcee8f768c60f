"""server/core/labels.py on PostgreSQL: an image's label is its newest human mask, else its
newest ground truth; pseudo-labels and predictions never count, nor does an undone save."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from service_fixtures import covid_entries


def png_mask(width: int, height: int, box: tuple[int, int, int, int]) -> bytes:
    mask = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    buf = io.BytesIO()
    PILImage.fromarray(mask).save(buf, format="PNG")
    return buf.getvalue()


def test_label_rule(db_session, migrated):
    from server.core import labels
    from server.core.errors import BadInput
    from server.core.models import Image, Mask
    from server.core.storage import BlobStore
    from server.services.datasets import import_dataset, set_human_mask, undo_human_mask

    store = BlobStore(migrated.blobs_dir)
    entries = covid_entries(4)
    # the last image's mask is left out: that image starts unannotated
    dropped = max(name for name, _ in entries if name.startswith("images/")).split("/", 1)[1]
    entries = [(n, d) for n, d in entries if n != f"masks/{dropped}"]
    dataset, _ = import_dataset(db_session, store, migrated, "labels rule", entries)
    rows = sorted(dataset.images, key=lambda i: i.stem)
    first, unannotated = rows[0], rows[-1]
    assert unannotated.filename == dropped

    assert labels.LABEL_KINDS == ("human", "ground_truth")
    truth = labels.label_mask(db_session, first.id)
    assert truth is not None and truth.kind == "ground_truth"
    assert labels.label_mask(db_session, unannotated.id) is None
    assert labels.annotated_image_ids(db_session, dataset.id) == {r.id for r in rows[:-1]}
    assert labels.annotated_count(db_session, dataset.id) == len(rows) - 1

    # pseudo-labels and predictions are never labels
    db_session.add(Mask(image_id=unannotated.id, kind="pseudo_label", sha256=truth.sha256))
    db_session.add(Mask(image_id=unannotated.id, kind="prediction", sha256=truth.sha256))
    db_session.commit()
    assert labels.label_mask(db_session, unannotated.id) is None
    assert unannotated.id not in labels.annotated_image_ids(db_session, dataset.id)

    # a human correction overrides the ground truth, and the newest correction wins
    one, replaced = set_human_mask(db_session, store, migrated, first,
                                   png_mask(first.width, first.height, (5, 5, 40, 40)), "a.png")
    assert replaced.id == truth.id and one.pixels == 35 * 35 and truth.origin == "imported"
    two, replaced = set_human_mask(db_session, store, migrated, first,
                                   png_mask(first.width, first.height, (9, 9, 30, 30)), "b.png")
    assert one.id < two.id and replaced.id == one.id and labels.label_mask(db_session, first.id).id == two.id
    # a human mask labels an image that had none
    human, replaced = set_human_mask(db_session, store, migrated, unannotated,
                                     png_mask(unannotated.width, unannotated.height, (1, 1, 20, 20)), "c.png")
    assert replaced is None
    assert labels.label_mask(db_session, unannotated.id).id == human.id
    assert labels.annotated_count(db_session, dataset.id) == len(rows)

    # the batch form gives each image the same mask as the one-at-a-time form
    ids = [r.id for r in rows] + [10**9]
    batch = labels.label_masks(db_session, ids)
    assert set(batch) == {r.id for r in rows}
    for image_id, mask in batch.items():
        assert mask.id == labels.label_mask(db_session, image_id).id
    assert labels.latest_mask(db_session, first.id, ("ground_truth",)).id == truth.id
    assert labels.latest_mask(db_session, first.id, ("pseudo_label",)) is None
    assert db_session.get(Image, first.id).dataset_id == dataset.id

    # an undone save is kept, marked, and is no label: the version before it is the label again
    undone, label = undo_human_mask(db_session, first, "reviewer")
    assert (undone.id, label.id, undone.reverted_by) == (two.id, one.id, "reviewer") and undone.reverted_at
    undone, label = undo_human_mask(db_session, first)
    assert undone.id == one.id and label.id == truth.id  # the imported ground truth again
    assert labels.latest_mask(db_session, first.id, ("human",)) is None
    undone, label = undo_human_mask(db_session, unannotated)  # its only label: it is unannotated again
    assert undone.id == human.id and label is None
    assert unannotated.id not in labels.annotated_image_ids(db_session, dataset.id)
    assert labels.annotated_count(db_session, dataset.id) == len(rows) - 1
    batch = labels.label_masks(db_session, ids)
    assert batch[first.id].id == truth.id and unannotated.id not in batch
    with pytest.raises(BadInput, match="nothing to undo") as refused:
        undo_human_mask(db_session, first)
    assert refused.value.status == 409
    assert all(db_session.get(Mask, m.id) is not None for m in (one, two, human))  # nothing is deleted
