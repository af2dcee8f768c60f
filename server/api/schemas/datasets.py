"""Datasets, their images and masks.

An image is *annotated* when it has a label, i.e. a mask: a person's (``human``), else the
uploaded ``ground_truth``. That is not a split's ``labelled`` / ``unlabelled`` partition of
train (see ``server.api.schemas.splits``), which says whether training uses a train image's mask.
"""

from __future__ import annotations

from pydantic import Field

from server.api.schemas.choices import MaskKind, MaskOrigin
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


class MaskRef(Answer):
    id: int
    kind: MaskKind


class MaskOut(MaskRef):
    """One stored version of an image's mask: masks are never deleted; an undone save is kept,
    marked reverted."""

    image_id: int
    sha256: str = Field(description="SHA-256 of the stored PNG")
    created_at: IsoDatetime
    saved_by: str | None = Field(description="the name of the API token that saved it (none for older masks)")
    origin: MaskOrigin | None = Field(description="what it was made from: sam, brush, student, pseudo_label, "
                                                  "file (as the saving client said) or imported (uploaded)")
    pixels: int | None = Field(description="foreground pixels (none for masks saved before they were counted)")
    reverted_at: IsoDatetime | None = Field(description="when its save was undone: it is then no label any more")
    reverted_by: str | None = Field(description="the name of the API token that undid it")


class MaskSaved(MaskOut):
    replaced: MaskRef | None = Field(description="the label this save replaced (a ground_truth one is the "
                                                 "imported truth), or none when the image had no label")


class MaskVersions(Answer):
    image_id: int
    label_id: int | None = Field(description="the version that is the image's label now, if any")
    items: list[MaskOut] = Field(description="its label versions (human and ground_truth), newest first, "
                                             "undone ones included")


class MaskUndone(Answer):
    undone: MaskOut = Field(description="the human save undone (kept, now marked reverted)")
    label: MaskOut | None = Field(description="the image's label now (the earlier version), or none")


# ---- GET …/export?format=coco: what the COCO file holds (the masks format is a zip) ----

class KmineLabel(Answer):
    """Where an exported label came from."""

    mask_id: int
    kind: MaskKind = Field(description="human (a person's save) or ground_truth (uploaded)")
    origin: MaskOrigin | None
    version: int = Field(description="its 1-based place among the image's label versions (human and ground "
                                      "truth, undone ones included, oldest first) as GET …/masks lists them")
    saved_by: str | None
    created_at: IsoDatetime


class CocoRle(Answer):
    size: list[int] = Field(description="[height, width]")
    counts: list[int] = Field(description="uncompressed RLE: run lengths in column-major order, background first")


class CocoAnnotation(Answer):
    id: int = Field(description="the mask's id")
    image_id: int
    category_id: int
    segmentation: CocoRle
    area: int = Field(description="foreground pixels")
    bbox: list[int] = Field(description="[x, y, width, height] of the foreground; zeros for an empty label")
    iscrowd: int = Field(description="1: the segmentation is RLE")
    kmine: KmineLabel


class CocoImage(Answer):
    id: int = Field(description="the image's id")
    file_name: str
    width: int
    height: int


class CocoCategory(Answer):
    id: int
    name: str
    supercategory: str


class CocoExport(Answer):
    """A dataset's current labels as COCO: every image, one annotation per annotated image."""

    info: dict[str, str]
    licenses: list[dict[str, str]]
    categories: list[CocoCategory]
    images: list[CocoImage] = Field(description="every image of the dataset, unannotated ones too")
    annotations: list[CocoAnnotation]
