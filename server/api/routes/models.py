"""Models: one per finished training (or uploaded checkpoint); one active per dataset."""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import select, update

from server.api.deps import CurrentUser, SessionDep, SettingsDep
from server.api.uploads import read_upload
from server.core.models import Dataset, Model, clean_json
from kmine.weights import file_sha256
from server.core.errors import BadInput

router = APIRouter(prefix="/models", tags=["models"])
ModelId = Annotated[int, Path(ge=1, le=2**31 - 1, description="model id")]


def model_view(m: Model) -> dict:
    return {"id": m.id, "name": m.name, "dataset_id": m.dataset_id, "job_id": m.job_id, "active": m.active,
            "sha256": m.sha256, "checkpoint_path": m.checkpoint_path, "metrics": m.metrics, "config": m.config,
            "created_at": m.created_at}


def model_or_404(session, model_id: int) -> Model:
    model = session.get(Model, model_id)
    if model is None:
        raise HTTPException(404, f"model {model_id} not found")
    return model


@router.get("", summary="List models")
def list_models(session: SessionDep, _: CurrentUser, dataset_id: Annotated[int | None, Query(ge=1)] = None):
    query = select(Model).order_by(Model.id)
    if dataset_id:
        query = query.where(Model.dataset_id == dataset_id)
    return [model_view(m) for m in session.scalars(query)]


@router.get("/{model_id}", summary="A model: config, metrics, job, checkpoint and checksum")
def show(model_id: ModelId, session: SessionDep, _: CurrentUser):
    return model_view(model_or_404(session, model_id))


@router.post("/{model_id}/activate", summary="Make this the active model of its dataset")
def activate(model_id: ModelId, session: SessionDep, _: CurrentUser):
    model = model_or_404(session, model_id)
    session.execute(update(Model).where(Model.dataset_id == model.dataset_id).values(active=False))
    model.active = True
    session.commit()
    return model_view(model)


@router.get("/{model_id}/download", summary="The checkpoint file", response_class=FileResponse)
def download(model_id: ModelId, session: SessionDep, _: CurrentUser):
    model = model_or_404(session, model_id)
    path = FsPath(model.checkpoint_path)
    if not path.is_file():
        raise HTTPException(409, f"model {model_id}'s checkpoint is missing on this server")
    return FileResponse(path, media_type="application/octet-stream", filename=f"kmine-model-{model.id}.pt")


@router.post("", status_code=201, summary="Upload a kmine student checkpoint (loaded with weights_only=True)")
async def upload(session: SessionDep, settings: SettingsDep, _: CurrentUser,
                 checkpoint: Annotated[UploadFile, File(description="a best.pt written by kmine training")],
                 dataset_id: Annotated[int | None, Form(ge=1)] = None,
                 name: Annotated[str, Form(max_length=200)] = ""):
    import hashlib
    import os
    import tempfile

    from kmine.student import read_student_checkpoint

    if dataset_id is not None and session.get(Dataset, dataset_id) is None:
        raise BadInput(f"dataset {dataset_id} not found", 404)
    data = await read_upload(checkpoint, settings.max_checkpoint_bytes)
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=settings.models_dir, suffix=".upload")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    try:
        payload = read_student_checkpoint(tmp)  # torch.load(weights_only=True): no pickled code runs
        from kmine.student import load_student

        load_student(tmp)
    except Exception as err:
        os.unlink(tmp)
        raise BadInput(f"not a loadable kmine student checkpoint: {err.__class__.__name__}: {str(err)[:300]}") from None
    digest = hashlib.sha256(data).hexdigest()
    final = settings.models_dir / f"upload-{digest}.pt"
    os.replace(tmp, final)
    assert file_sha256(final) == digest
    extra = payload.get("extra", {})
    model = Model(dataset_id=dataset_id, name=name or checkpoint.filename or "uploaded", config=clean_json(extra.get("config", {})),
                  metrics=clean_json(extra.get("metrics", {})), checkpoint_path=str(final), sha256=digest)
    session.add(model)
    session.commit()
    return model_view(model)
