"""Splits: train/val/test with a labelled/unlabelled partition of train."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from server.api.schemas.choices import SplitPart
from server.api.schemas.common import Answer, DbId, IsoDatetime, Seed


class SplitRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    val_fraction: float = Field(0.1, ge=0, lt=1, description="share of labelled images for validation")
    test_fraction: float = Field(0.1, ge=0, lt=1, description="share of labelled images held out for testing")
    labelled_fraction: float = Field(1.0, gt=0, le=1, description="share of train that keeps its labels")
    seed: Seed = 0


class MoveRequest(BaseModel):
    image_ids: list[DbId] = Field(min_length=1, max_length=10000)
    to: SplitPart


class ImageRef(Answer):
    id: int
    stem: str


class SplitSummary(Answer):
    id: int
    seed: int
    fractions: dict[str, float] = Field(description="val, test and labelled as asked for")
    created_at: IsoDatetime


class SplitOut(SplitSummary):
    dataset_id: int
    counts: dict[SplitPart, int] = Field(description="images per part")
    parts: dict[SplitPart, list[ImageRef]] = Field(description="each part's images (id, stem), by stem")
