"""Splits: train/val/test with a labelled/unlabelled partition of train."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from server.api.deps import DatasetDep, SessionDep, SplitDep
from server.api.schemas.common import errors
from server.api.schemas.splits import MoveRequest, SplitOut, SplitRequest, SplitSummary
from server.core.models import Split
from server.services import datasets as svc

router = APIRouter(tags=["splits"])


def split_out(session, split: Split) -> SplitOut:
    parts = svc.split_parts(session, split)
    return SplitOut(id=split.id, dataset_id=split.dataset_id, seed=split.seed, fractions=split.fractions,
                    created_at=split.created_at, counts={k: len(v) for k, v in parts.items()}, parts=parts)


@router.post("/datasets/{dataset_id}/splits", status_code=201, response_model=SplitOut, responses=errors(404),
             summary="Make a seeded split of a dataset")
def create_split(dataset: DatasetDep, body: SplitRequest, session: SessionDep):
    split = svc.create_split(session, dataset, body.val_fraction, body.test_fraction, body.labelled_fraction, body.seed)
    return split_out(session, split)


@router.get("/datasets/{dataset_id}/splits", response_model=list[SplitSummary], responses=errors(404),
            summary="A dataset's splits")
def list_splits(dataset: DatasetDep, session: SessionDep):
    return session.scalars(select(Split).where(Split.dataset_id == dataset.id).order_by(Split.id)).all()


@router.get("/splits/{split_id}", response_model=SplitOut, responses=errors(404),
            summary="A split's parts (image ids and stems)")
def show_split(split: SplitDep, session: SessionDep):
    return split_out(session, split)


@router.post("/splits/{split_id}/move", response_model=SplitOut, responses=errors(404, 409),
             summary="Move images to labelled, unlabelled, val or test")
def move(split: SplitDep, body: MoveRequest, session: SessionDep):
    svc.move_images(session, split, body.image_ids, body.to)
    return split_out(session, split)
