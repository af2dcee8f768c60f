"""Splits: train/val/test with a labelled/unlabelled partition of train."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from server.api.deps import CurrentUser, SessionDep
from server.api.routes.datasets import DatasetId, dataset_or_404
from server.core.models import Split
from server.services import datasets as svc

router = APIRouter(tags=["splits"])
SplitId = Annotated[int, Path(ge=1, le=2**31 - 1, description="split id")]


class SplitRequest(BaseModel):
    val_fraction: float = Field(0.1, ge=0, lt=1, description="share of labelled images for validation")
    test_fraction: float = Field(0.1, ge=0, lt=1, description="share of labelled images held out for testing")
    labelled_fraction: float = Field(1.0, gt=0, le=1, description="share of train that keeps its labels")
    seed: int = Field(0, ge=0, le=2**31 - 1)


class MoveRequest(BaseModel):
    image_ids: list[int] = Field(min_length=1, max_length=10000)
    to: Literal["labelled", "unlabelled", "val", "test"]


def split_or_404(session, split_id: int) -> Split:
    split = session.get(Split, split_id)
    if split is None:
        raise HTTPException(404, f"split {split_id} not found")
    return split


def split_view(session, split: Split) -> dict:
    parts = svc.split_parts(session, split)
    return {"id": split.id, "dataset_id": split.dataset_id, "seed": split.seed, "fractions": split.fractions,
            "created_at": split.created_at, "counts": {k: len(v) for k, v in parts.items()}, "parts": parts}


@router.post("/datasets/{dataset_id}/splits", status_code=201, summary="Make a seeded split of a dataset")
def create_split(dataset_id: DatasetId, body: SplitRequest, session: SessionDep, _: CurrentUser):
    dataset = dataset_or_404(session, dataset_id)
    split = svc.create_split(session, dataset, body.val_fraction, body.test_fraction, body.labelled_fraction, body.seed)
    return split_view(session, split)


@router.get("/datasets/{dataset_id}/splits", summary="A dataset's splits")
def list_splits(dataset_id: DatasetId, session: SessionDep, _: CurrentUser):
    from sqlalchemy import select

    dataset_or_404(session, dataset_id)
    return [{"id": s.id, "seed": s.seed, "fractions": s.fractions, "created_at": s.created_at}
            for s in session.scalars(select(Split).where(Split.dataset_id == dataset_id).order_by(Split.id))]


@router.get("/splits/{split_id}", summary="A split's parts (image ids and stems)")
def show_split(split_id: SplitId, session: SessionDep, _: CurrentUser):
    return split_view(session, split_or_404(session, split_id))


@router.post("/splits/{split_id}/move", summary="Move images to labelled, unlabelled, val or test")
def move(split_id: SplitId, body: MoveRequest, session: SessionDep, _: CurrentUser):
    split = split_or_404(session, split_id)
    svc.move_images(session, split, body.image_ids, body.to)
    return split_view(session, split)
