"""Models: one per finished training (or uploaded checkpoint); one active per dataset."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import select

from server.api.deps import ModelDep, SessionDep, SettingsDep, StoreDep
from server.api.schemas.common import MAX_ID, binary, errors
from server.api.schemas.models import ModelOut
from server.api.uploads import upload_file
from server.core.models import Model
from server.core.runtime import verified_checkpoint
from server.services import models as svc

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=list[ModelOut], summary="List models")
def list_models(session: SessionDep, dataset_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None):
    query = select(Model).order_by(Model.id)
    if dataset_id:
        query = query.where(Model.dataset_id == dataset_id)
    return [ModelOut.of(m) for m in session.scalars(query)]


@router.get("/{model_id}", response_model=ModelOut, responses=errors(404),
            summary="A model: config, metrics, job, checkpoint and checksum")
def show(model: ModelDep):
    return ModelOut.of(model)


@router.post("/{model_id}/activate", response_model=ModelOut, responses=errors(404),
             summary="Make this the active model of its dataset")
def activate(model: ModelDep, session: SessionDep):
    return ModelOut.of(svc.activate(session, model))


@router.get("/{model_id}/download", response_class=FileResponse, summary="The checkpoint file",
            responses={**binary("application/octet-stream", "The checkpoint (torch.save format)"), **errors(404, 409)})
def download(model: ModelDep, store: StoreDep):
    path = verified_checkpoint(model, store)
    return FileResponse(path, media_type="application/octet-stream", filename=f"kmine-model-{model.id}.pt")


@router.post("", status_code=201, response_model=ModelOut, responses=errors(404, 413, 503),
             summary="Upload a kmine student checkpoint (loaded with weights_only=True)")
def upload(session: SessionDep, settings: SettingsDep,
                 checkpoint: Annotated[UploadFile, File(description="a best.pt written by kmine training")],
                 dataset_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
                 name: Annotated[str, Form(max_length=200)] = ""):
    source = upload_file(checkpoint, settings.max_checkpoint_bytes)  # copied from the spooled file, not memory
    return ModelOut.of(svc.store_checkpoint(session, settings, source, checkpoint.filename, dataset_id, name))
