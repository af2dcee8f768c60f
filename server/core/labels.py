"""The current label of an image, the one rule the API and the worker share.

An image's label is its newest ``human`` mask (a person's correction) when it has one, else
its newest ``ground_truth`` mask (uploaded with the dataset). An image with a label is
*annotated*, one with neither mask *unannotated*. Pseudo-labels and predictions are never labels.
An undone save (a mask marked ``reverted_at``) is kept as a version but is never a label: the
version before it is the label again.

"Annotated" says whether an image has a mask at all; it is not a split's ``labelled`` /
``unlabelled`` partition of train, which says whether training uses a train image's mask
(an annotated image may sit in the unlabelled part; an unannotated one only can).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.core.models import Image, Mask

LABEL_KINDS = ("human", "ground_truth")  # first kind first: a human correction overrides the uploaded truth
_CHUNK = 1000  # ids per IN (...) list: far below SQLite's and PostgreSQL's limits


LIVE = Mask.reverted_at.is_(None)  # a mask whose save was not undone


def latest_mask(session: Session, image_id: int, kinds: Iterable[str]) -> Mask | None:
    """The newest mask (not undone) of the first kind in ``kinds`` that the image has."""
    for kind in kinds:
        mask = session.scalar(select(Mask).where(Mask.image_id == image_id, Mask.kind == kind, LIVE)
                              .order_by(Mask.id.desc()).limit(1))
        if mask is not None:
            return mask
    return None


def label_mask(session: Session, image_id: int) -> Mask | None:
    """The image's current label, or None when it has none (it is unannotated)."""
    return latest_mask(session, image_id, LABEL_KINDS)


def label_masks(session: Session, image_ids: Iterable[int]) -> dict[int, Mask]:
    """The current label of each of ``image_ids`` that has one (the same rule as
    :func:`label_mask`), in a few queries however many images there are."""
    ids = list(dict.fromkeys(image_ids))
    rank = {kind: i for i, kind in enumerate(LABEL_KINDS)}
    best: dict[int, Mask] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.scalars(select(Mask).where(Mask.image_id.in_(ids[start:start + _CHUNK]),
                                                  Mask.kind.in_(LABEL_KINDS), LIVE))
        for mask in rows:
            held = best.get(mask.image_id)
            if held is None or (rank[mask.kind], -mask.id) < (rank[held.kind], -held.id):
                best[mask.image_id] = mask
    return best


def annotated_image_ids(session: Session, dataset_id: int) -> set[int]:
    """Ids of the dataset's annotated images (those with a label)."""
    return set(session.scalars(select(Mask.image_id).join(Image).where(
        Image.dataset_id == dataset_id, Mask.kind.in_(LABEL_KINDS), LIVE)).all())


def annotated_count(session: Session, dataset_id: int) -> int:
    """How many of the dataset's images are annotated (have a label)."""
    return session.scalar(select(func.count(func.distinct(Mask.image_id))).join(Image).where(
        Image.dataset_id == dataset_id, Mask.kind.in_(LABEL_KINDS), LIVE)) or 0
