"""Datasets, their images and masks."""

from __future__ import annotations

from pydantic import Field

from server.api.schemas.common import Answer, IsoDatetime


class Counts(Answer):
    images: int
    labelled: int = Field(description="images with a label (a human mask, else the uploaded ground truth)")
    unlabelled: int
    masks: dict[str, int] = Field(description="masks by kind: ground_truth, human, pseudo_label, prediction")


class DatasetOut(Answer):
    id: int
    name: str
    created_at: IsoDatetime
    counts: Counts
    active_model_id: int | None = Field(description="the dataset's active model, if any")


class DatasetCreated(DatasetOut):
    ignored: list[str] = Field(description="uploaded entries that are neither images/ nor masks/ files")


class ImageOut(Answer):
    id: int
    stem: str
    filename: str
    width: int
    height: int
    sha256: str
    labelled: bool


class ImagePage(Answer):
    total: int
    offset: int
    limit: int
    items: list[ImageOut]


class MaskOut(Answer):
    id: int
    image_id: int
    kind: str
    sha256: str
