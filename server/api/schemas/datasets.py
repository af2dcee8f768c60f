"""Datasets, their images and masks.

An image is *annotated* when it has a label, i.e. a mask: a person's (``human``), else the
uploaded ``ground_truth``. That is not a split's ``labelled`` / ``unlabelled`` partition of
train (see ``server.api.schemas.splits``), which says whether training uses a train image's mask.
"""

from __future__ import annotations

from pydantic import Field

from server.api.schemas.common import Answer, IsoDatetime


class Counts(Answer):
    images: int
    annotated: int = Field(description="images with a mask (a human label or the uploaded ground truth); not a "
                                       "split's labelled part, which is the train images whose masks training uses")
    unannotated: int = Field(description="images with no mask yet: a split can put them only in its unlabelled part")
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
    annotated: bool = Field(description="whether the image has a mask (a human label or the uploaded ground "
                                        "truth); whether a split trains on that mask is the split's business")


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
