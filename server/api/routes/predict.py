"""Prediction with a trained student, alone or prompting SAM."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.api.deps import SessionDep, SettingsDep, StoreDep
from server.api.schemas.choices import Mode, PromptChoice
from server.api.schemas.common import MAX_ID, errors
from server.api.schemas.predict import PredictOut
from server.api.uploads import read_upload
from server.core.models import Image, Mask
from server.core.runtime import ModelFiles
from server.core.settings import Settings
from server.core.storage import BlobStore
from server.services.predict import pick_model
from server.services.uploads import decode_image, decode_mask

router = APIRouter(tags=["predict"])


@router.post("/predict", response_model=PredictOut, response_model_exclude_unset=True,
             responses=errors(404, 409, 413, 503), summary="Predict a mask for one image (any size)", description=(
    "Answer: `mask_png` (base64 PNG, 0/255, the input's full size), `prompts` (points and box in the input "
    "image's pixel coordinates), `model_id`, `mode`, `timings_ms` (milliseconds), `teacher_encodes` (SAM encodings "
    "run: 0 when cached, null without SAM); with a ground-truth `mask` also `dice` and "
    "`iou`. `model_id` defaults to the active model (of the dataset holding this image, else the newest active "
    "one). No model yet: 409. An image the server has seen reuses its cached SAM encoding in refine mode. "
    "Predictions run one batch at a time; when too many wait, the answer is 503 with `Retry-After` (seconds)."))
async def predict(
    request: Request, session: SessionDep, settings: SettingsDep, store: StoreDep,
    image: Annotated[UploadFile, File(description="the image (PNG, JPEG, TIFF, BMP)")],
    mode: Annotated[Mode, Form(description="student: the student alone; refine: student prompts SAM")] = "student",
    model_id: Annotated[int | None, Form(ge=1, le=MAX_ID, description="default: the active model")] = None,
    prompts: Annotated[PromptChoice | None,
                       Form(description="prompt kinds for refine mode (default: the model's)")] = None,
    mask: Annotated[UploadFile | None, File(description="optional ground truth: adds dice and iou")] = None,
):
    # The event loop only awaits: decoding, the database and the answer's PNG run in the thread
    # pool, the model in the inference lane.
    service = request.app.state.predictions
    rgb, truth, known, model = await run_in_threadpool(_prepare, session, settings, image, mask, model_id)
    pending = await run_in_threadpool(service.start, model, rgb, mode, prompts)
    raw = await asyncio.wrap_future(pending.future)
    answer = await run_in_threadpool(lambda: service.answer(model, rgb, mode, pending.finish(raw), truth))
    png = answer.pop("_png")
    if known:  # remember the prediction for the images this is
        await run_in_threadpool(_remember, session, store, known, model, png)
        answer["image_ids"] = known
    return answer


def _prepare(session: Session, settings: Settings, image: UploadFile, mask: UploadFile | None, model_id: int | None):
    """The image's RGB, the ground truth if sent, the ids of stored images with these bytes, the model."""
    data = read_upload(image, settings.max_upload_bytes)
    decoded = decode_image(data, image.filename or "image", settings, keep=True)
    truth = None
    if mask is not None:
        truth = decode_mask(read_upload(mask, settings.max_upload_bytes), mask.filename or "mask",
                            (decoded.width, decoded.height), settings)
    digest = hashlib.sha256(data).hexdigest()
    known = session.scalars(select(Image).where(Image.sha256 == digest)).all()
    model = pick_model(session, model_id, [i.dataset_id for i in known])
    return decoded.rgb, truth, [row.id for row in known], ModelFiles.of(model)


def _remember(session: Session, store: BlobStore, image_ids: list[int], model: ModelFiles, png: bytes) -> None:
    sha, _ = store.put(png)
    for image_id in image_ids:
        session.add(Mask(image_id=image_id, kind="prediction", sha256=sha, model_id=model.id))
    session.commit()
