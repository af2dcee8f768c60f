"""Prediction and labelling help: a student's mask (alone or refined by SAM), SAM re-prompted
with a person's clicks, and unlabelled images ranked by student/SAM disagreement."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from kmine.teacher import TEACHER_NAMES
from kmine.text import shown
from server.api.schemas.choices import Mode
from server.api.schemas.common import Answer

Coordinate = Annotated[float, Field(ge=0, le=1e5)]
Timings = dict[str, float]  # milliseconds only: counts have fields of their own


def _known_teacher(name: str | None) -> str | None:
    if name is not None and name not in TEACHER_NAMES:
        raise ValueError(f"unknown teacher {shown(name)}; choose one of {', '.join(TEACHER_NAMES)}")
    return name


class SamPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    points: list[tuple[Coordinate, Coordinate]] | None = Field(
        None, max_length=64, description="clicked points [[x, y], …] in the image's pixels")
    point_labels: list[Annotated[int, Field(ge=0, le=1)]] | None = Field(
        None, max_length=64, description="1 foreground, 0 background, per point (default 1)")
    box: tuple[Coordinate, Coordinate, Coordinate, Coordinate] | None = Field(
        None, description="[x0, y0, x1, y1] in the image's pixels, any two opposite corners")
    teacher: Annotated[str | None, AfterValidator(_known_teacher)] = Field(
        None, max_length=40, description=f"one of {', '.join(TEACHER_NAMES)}; default: the teacher of the "
                                         "dataset's active model, else mobilesam")


MAX_BOXES, MAX_POINTS = 16, 64


class SamObjectsIn(BaseModel):
    """Everything a person drew on an image: each box one object, points anywhere."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    boxes: list[tuple[Coordinate, Coordinate, Coordinate, Coordinate]] = Field(
        [], max_length=MAX_BOXES, description="[[x0, y0, x1, y1], …] in the image's pixels, any two opposite corners")
    points: list[tuple[Coordinate, Coordinate]] = Field(
        [], max_length=MAX_POINTS, description="[[x, y], …] in the image's pixels; a point joins the smallest box "
                                               "it lies in, positive points outside every box make one more object")
    point_labels: list[Annotated[int, Field(ge=0, le=1)]] = Field(
        [], max_length=MAX_POINTS, description="1 object, 0 background, one per point")
    previous: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="`logits_token` of the answer this "
                                 "request corrects: objects already there then start from their earlier logits")
    teacher: Annotated[str | None, AfterValidator(_known_teacher)] = Field(
        None, max_length=40, description=f"one of {', '.join(TEACHER_NAMES)}; default: the teacher of the "
                                         "dataset's active model, else mobilesam")

    @model_validator(mode="after")
    def _one_label_per_point(self) -> SamObjectsIn:
        if len(self.point_labels) != len(self.points):
            raise ValueError(f"point_labels must give one label per point ({len(self.points)} points, "
                             f"{len(self.point_labels)} labels)")
        return self


class SamMaskOut(Answer):
    """SAM's mask for the drawn objects, compact: the mask alone as a 1-bit PNG."""

    teacher: str
    width: int
    height: int
    mask_png: str = Field(description="base64 1-bit PNG of the mask alone (1 inside), the image's full size")
    pixels: int = Field(description="pixels in the mask")
    iou_pred: float = Field(description="SAM's own estimate of the mask's IoU")
    objects: int = Field(description="prompt sets decoded (one per box, one more for free object points)")
    reused_logits: int = Field(description="objects that started from the previous answer's logits")
    logits_token: str = Field(description="pass as `previous` with the next corrective click")
    timings_ms: Timings = Field(description="milliseconds: teacher_encode (≈0 when cached), teacher_decode")
    teacher_encodes: int = Field(description="1 when SAM's encoder ran, 0 when the encoding was cached")


class PromptOut(Answer):
    points: list[list[float]] | None = Field(description="[[x, y], …] in the image's pixels")
    point_labels: list[int] | None
    box: list[float] | None = Field(description="[x0, y0, x1, y1]")


class MaskAnswer(Answer):
    """A mask for an image, with the prompts that made it."""

    width: int
    height: int
    mask_png: str = Field(description="base64 PNG, 0/255, the image's full size")
    prompts: list[PromptOut]
    timings_ms: Timings = Field(description="milliseconds by step: student (the student's pass), teacher_encode "
                                            "(≈0 when SAM's encoding of the image was cached), teacher_decode")
    teacher_encodes: int | None = Field(description="images SAM's encoder ran for this answer: 1, or 0 when the "
                                                    "image's encoding came from the cache; null when SAM did not run "
                                                    "(student mode, or nothing to prompt it with)")


class PredictOut(MaskAnswer):
    model_id: int
    mode: Mode
    prompt_kinds: str
    refined: bool = Field(description="whether SAM refined the student's mask")
    dice: float | None = Field(None, description="against the uploaded ground truth (only with one)")
    iou: float | None = Field(None, description="against the uploaded ground truth (only with one)")
    image_ids: list[int] | None = Field(None, description="the server's images with these bytes (only when known)")


class RepromptOut(MaskAnswer):
    teacher: str
    teacher_encodes: int = Field(description="images SAM's encoder ran for this answer: 1, or 0 when the image's "
                                             "encoding came from the cache")
    iou_pred: float = Field(description="SAM's own estimate of the mask's IoU")


class Candidate(Answer):
    id: int
    stem: str
    disagreement: float = Field(description="1 − Dice(student mask, SAM's mask prompted by it); 1 when the student finds nothing")
    student_sam_dice: float | None
    student_pixels: int
    sam_pixels: int | None


class CandidatesOut(Answer):
    split_id: int
    model_id: int
    total: int
    items: list[Candidate]
