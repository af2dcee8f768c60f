"""Help for labelling: SAM re-prompted with a person's clicks, and a split's unlabelled images
ranked so the ones where the student and SAM disagree most come first."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from server.api.deps import ImageDep, SessionDep, SettingsDep, SplitDep, StoreDep
from server.api.schemas.common import MAX_ID, errors
from server.api.schemas.predict import CandidatesOut, RepromptOut, SamMaskOut, SamObjectsIn, SamPrompt
from server.core.models import Image, Model
from server.services import datasets as svc
from server.services.predict import model_teacher, pick_model, ranked

router = APIRouter(tags=["label"])


@router.post("/datasets/{dataset_id}/images/{image_id}/sam", response_model=RepromptOut, responses=errors(404, 409, 503),
             summary="Re-prompt SAM with points and/or a box",
             description="Answer: `mask_png` (base64 PNG, 0/255, the image's size), `iou_pred` (SAM's own estimate), "
                         "`prompts`, `timings_ms` (milliseconds), `teacher_encodes` (0 when the encoding was cached). "
                         "The image's SAM encoding is cached by content, so after the first "
                         "call (or a refine prediction of the same image) only the cheap decoder runs.")
def reprompt_sam(image: ImageDep, body: SamPrompt, request: Request, session: SessionDep, settings: SettingsDep,
                 store: StoreDep):
    teacher = body.teacher or _default_teacher(session, image)
    rgb = svc.image_rgb(store, settings, image)
    return request.app.state.predictions.reprompt(teacher, rgb, body.points, body.point_labels, body.box)


@router.post("/datasets/{dataset_id}/images/{image_id}/sam/mask", response_model=SamMaskOut,
             responses=errors(404, 409, 503), summary="SAM's mask for boxes and points, compact",
             description="For a labelling canvas: several `boxes` (one object each) and `points` with "
                         "`point_labels`; answers the mask alone as a 1-bit PNG. Pass the answer's "
                         "`logits_token` as `previous` with the next click: objects already there start "
                         "from their earlier logits (SAM's interactive protocol). Coordinates outside the "
                         "image, NaN or more than 16 boxes or 64 points: 422.")
def sam_mask(image: ImageDep, body: SamObjectsIn, request: Request, session: SessionDep, settings: SettingsDep,
             store: StoreDep):
    teacher = body.teacher or _default_teacher(session, image)
    rgb = svc.image_rgb(store, settings, image)
    return request.app.state.predictions.prompt_objects(teacher, rgb, f"{image.id}:{image.sha256}", body.boxes,
                                                        body.points, body.point_labels, body.previous)


def _default_teacher(session, image: Image) -> str:
    """The teacher of the dataset's active model (mobilesam without one)."""
    active = session.scalar(select(Model).where(Model.dataset_id == image.dataset_id, Model.active.is_(True)))
    return model_teacher(active)


@router.get("/splits/{split_id}/candidates", response_model=CandidatesOut, responses=errors(404, 409, 503),
            summary="Unlabelled images, most student/SAM disagreement first",
            description="Each item: `id`, `stem`, `disagreement` (1 − Dice of the student's mask and SAM's mask "
                        "prompted by it; 1 where the student finds nothing), `student_sam_dice`, `student_pixels`, "
                        "`sam_pixels`. Scores are cached per model and image content: only images not seen by this "
                        "model are predicted (in batches).")
def candidates(split: SplitDep, request: Request, session: SessionDep, settings: SettingsDep, store: StoreDep,
               model_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
               limit: Annotated[int, Query(ge=1, le=10000)] = 1000):
    model = pick_model(session, model_id, [split.dataset_id])
    members = svc.split_parts(session, split)["unlabelled"]
    rows = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_([m["id"] for m in members])))}
    images = [(rows[m["id"]].sha256, partial(svc.image_rgb, store, settings, rows[m["id"]])) for m in members]
    scores = ranked(session, request.app.state.predictions, model, images)
    items = [{"id": m["id"], "stem": m["stem"], **score} for m, score in zip(members, scores)]
    items.sort(key=lambda item: -item["disagreement"])
    return CandidatesOut(split_id=split.id, model_id=model.id, total=len(items), items=items[:limit])
