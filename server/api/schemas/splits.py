"""Splits: train/val/test with a labelled/unlabelled partition of train.

The parts: ``labelled``, the train images whose masks training uses; ``unlabelled``, the train
images it uses without their masks (pseudo-labels are mined for them); ``val`` and ``test``.
Which images *have* a mask is another matter (a dataset's ``annotated`` images): every image of
labelled, val and test is annotated, while the unlabelled part may hold annotated images as well
as every unannotated one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from server.api.schemas.choices import SplitPart
from server.api.schemas.common import Answer, DbId, IsoDatetime, Seed


class SplitRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    val_fraction: float = Field(0.1, ge=0, lt=1, description="share of the annotated images (those with a mask) "
                                                              "for validation")
    test_fraction: float = Field(0.1, ge=0, lt=1, description="share of the annotated images held out for testing")
    labelled_fraction: float = Field(1.0, gt=0, le=1, description=(
        "share of the annotated train images put in the labelled part (training uses their masks); the rest, and "
        "every unannotated image, go to the unlabelled part"))
    seed: Seed = 0


class MoveRequest(BaseModel):
    image_ids: list[DbId] = Field(min_length=1, max_length=10000)
    to: SplitPart = Field(description="labelled (train, mask used), unlabelled (train, mask not used), val or "
                                      "test; every part but unlabelled takes annotated images only")


class ImageRef(Answer):
    id: int
    stem: str


class SplitSummary(Answer):
    id: int
    seed: int
    fractions: dict[str, float] = Field(description="val_fraction, test_fraction and labelled_fraction as asked "
                                                    "for, under the keys val, test and labelled")
    created_at: IsoDatetime


class SplitOut(SplitSummary):
    dataset_id: int
    counts: dict[SplitPart, int] = Field(description="images per part; labelled + unlabelled is train")
    parts: dict[SplitPart, list[ImageRef]] = Field(description="each part's images (id, stem), by stem")
