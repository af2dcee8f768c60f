"""Help for labelling: SAM re-prompted with a person's clicks, and a split's unlabelled images
ranked so the ones where the student and SAM disagree most come first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from server.api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from server.api.routes.datasets import DatasetId, ImageId, image_or_404
from server.api.routes.splits import SplitId, split_or_404
from server.core.models import Image, Model
from server.services import datasets as svc
from server.services.predict import model_teacher, pick_model

router = APIRouter(tags=["label"])
Coordinate = Annotated[float, Field(ge=0, le=1e5)]


class SamPrompt(BaseModel):
    points: list[tuple[Coordinate, Coordinate]] | None = Field(
        None, max_length=64, description="clicked points [[x, y], …] in the image's pixels")
    point_labels: list[int] | None = Field(None, max_length=64, description="1 foreground, 0 background, per point (default 1)")
    box: tuple[Coordinate, Coordinate, Coordinate, Coordinate] | None = Field(
        None, description="[x0, y0, x1, y1] in the image's pixels, any two opposite corners")
    teacher: str | None = Field(None, max_length=40, description="default: the teacher of the dataset's active model, else mobilesam")


@router.post("/datasets/{dataset_id}/images/{image_id}/sam", summary="Re-prompt SAM with points and/or a box",
             description="Answer: `mask_png` (base64 PNG, 0/255, the image's size), `iou_pred` (SAM's own estimate), "
                         "`prompts`, `timings_ms`. The image's SAM encoding is cached by content, so after the first "
                         "call (or a refine prediction of the same image) only the cheap decoder runs.")
def reprompt_sam(dataset_id: DatasetId, image_id: ImageId, body: SamPrompt, request: Request, session: SessionDep,
                 settings: SettingsDep, store: StoreDep, _: CurrentUser):
    image = image_or_404(session, dataset_id, image_id)
    teacher = body.teacher
    if teacher is None:
        active = session.scalar(select(Model).where(Model.dataset_id == dataset_id, Model.active.is_(True)))
        teacher = model_teacher(active)
    rgb = svc.image_rgb(store, settings, image)
    return request.app.state.predictions.reprompt(teacher, rgb, body.points, body.point_labels, body.box)


@router.get("/splits/{split_id}/candidates", summary="Unlabelled images, most student/SAM disagreement first",
            description="Each item: `id`, `stem`, `disagreement` (1 − Dice of the student's mask and SAM's mask "
                        "prompted by it; 1 where the student finds nothing), `student_sam_dice`, `student_pixels`, "
                        "`sam_pixels`. Scores are cached per model and image content: only images not seen by this "
                        "model are predicted (in batches).")
def candidates(split_id: SplitId, request: Request, session: SessionDep, settings: SettingsDep, store: StoreDep,
               _: CurrentUser, model_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
               limit: Annotated[int, Query(ge=1, le=10000)] = 1000):
    split = split_or_404(session, split_id)
    model = pick_model(session, model_id, [split.dataset_id])
    members = svc.split_parts(session, split)["unlabelled"]
    rows = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_([m["id"] for m in members])))}
    images = [(rows[m["id"]].sha256, lambda row=rows[m["id"]]: svc.image_rgb(store, settings, row)) for m in members]
    scores = request.app.state.predictions.disagreements(model, images)
    items = [{"id": m["id"], "stem": m["stem"], **score} for m, score in zip(members, scores)]
    items.sort(key=lambda item: -item["disagreement"])
    return {"split_id": split.id, "model_id": model.id, "total": len(items), "items": items[:limit]}
