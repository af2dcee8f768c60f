"""Prediction with a trained student, alone or prompting SAM."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from sqlalchemy import select

from kmine.data import mask_png
from server.api.deps import SessionDep, SettingsDep, StoreDep
from server.api.schemas.choices import Mode, PromptChoice
from server.api.schemas.common import MAX_ID, errors
from server.api.schemas.predict import PredictOut
from server.api.uploads import read_upload
from server.core.models import Image, Mask
from server.services.predict import pick_model
from server.services.uploads import decode_image, decode_mask

router = APIRouter(tags=["predict"])


@router.post("/predict", response_model=PredictOut, response_model_exclude_unset=True,
             responses=errors(404, 409, 413), summary="Predict a mask for one image (any size)", description=(
    "Answer: `mask_png` (base64 PNG, 0/255, the input's full size), `prompts` (points and box in the input "
    "image's pixel coordinates), `model_id`, `mode`, `timings_ms` (milliseconds), `teacher_encodes` (SAM encodings "
    "run: 0 when cached, null without SAM); with a ground-truth `mask` also `dice` and "
    "`iou`. `model_id` defaults to the active model (of the dataset holding this image, else the newest active "
    "one). No model yet: 409. An image the server has seen reuses its cached SAM encoding in refine mode."))
async def predict(
    request: Request, session: SessionDep, settings: SettingsDep, store: StoreDep,
    image: Annotated[UploadFile, File(description="the image (PNG, JPEG, TIFF, BMP)")],
    mode: Annotated[Mode, Form(description="student: the student alone; refine: student prompts SAM")] = "student",
    model_id: Annotated[int | None, Form(ge=1, le=MAX_ID, description="default: the active model")] = None,
    prompts: Annotated[PromptChoice | None,
                       Form(description="prompt kinds for refine mode (default: the model's)")] = None,
    mask: Annotated[UploadFile | None, File(description="optional ground truth: adds dice and iou")] = None,
):
    data = read_upload(image, settings.max_upload_bytes)
    decoded = decode_image(data, image.filename or "image", settings, keep=True)
    truth = None
    if mask is not None:
        truth = decode_mask(read_upload(mask, settings.max_upload_bytes), mask.filename or "mask",
                            (decoded.width, decoded.height), settings)
    digest = hashlib.sha256(data).hexdigest()
    known = session.scalars(select(Image).where(Image.sha256 == digest)).all()
    model = pick_model(session, model_id, [i.dataset_id for i in known])
    answer = request.app.state.predictions.predict(model, decoded.rgb, mode, prompts, truth)
    result_mask = answer.pop("_mask")
    if known:  # remember the prediction for the images this is
        sha, _ = store.put(mask_png(result_mask))
        for row in known:
            session.add(Mask(image_id=row.id, kind="prediction", sha256=sha, model_id=model.id))
        session.commit()
        answer["image_ids"] = [row.id for row in known]
    return answer
