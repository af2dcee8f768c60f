"""Disagreement scores: how much a model's student and SAM prompted by it disagree on an image,
the order the Label view offers unlabelled images in. Stored per model and image content, by
the worker that trained the model (for its split's unlabelled images) or by the API (for any
other image, the first time it is ranked)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kmine.metrics import dice_iou
from kmine.predict import Prediction
from server.core.models import Disagreement

FIELDS = ("disagreement", "student_sam_dice", "student_pixels", "sam_pixels")


def disagreement_record(result: Prediction) -> dict:
    """1 − Dice(student, SAM). A student that finds nothing gives SAM no prompt; such an image
    counts as full disagreement, because it is the student's failure a label would fix first."""
    student_px = int(result.student_mask.sum())
    if result.teacher_mask is None:
        return {"disagreement": 1.0, "student_sam_dice": None, "student_pixels": student_px, "sam_pixels": None}
    dice, _ = dice_iou(result.student_mask, result.teacher_mask)
    return {"disagreement": 1.0 - float(dice), "student_sam_dice": float(dice), "student_pixels": student_px,
            "sam_pixels": int(result.teacher_mask.sum())}


def stored_scores(session: Session, model_id: int, digests: list[str]) -> dict[str, dict]:
    """The stored records of those images (by sha256) that have one for this model."""
    found: dict[str, dict] = {}
    wanted = sorted(set(digests))
    for i in range(0, len(wanted), 500):  # bounded IN lists
        rows = session.scalars(select(Disagreement).where(Disagreement.model_id == model_id,
                                                          Disagreement.sha256.in_(wanted[i:i + 500])))
        found.update({row.sha256: {f: getattr(row, f) for f in FIELDS} for row in rows})
    return found


def store_scores(session: Session, model_id: int, records: dict[str, dict]) -> None:
    """Keep new records (an image already scored for this model keeps its first record)."""
    known = stored_scores(session, model_id, list(records))
    for digest, record in records.items():
        if digest in known:
            continue
        session.add(Disagreement(model_id=model_id, sha256=digest, **{f: record[f] for f in FIELDS}))
        try:
            session.commit()
        except IntegrityError:  # another request scored it at the same time: its record stays
            session.rollback()
