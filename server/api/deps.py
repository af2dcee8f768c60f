"""Dependencies routes use: settings, a database session, the blob store, the caller's token
(``CurrentUser``; ``authorized_token`` checks its role against the route, see
:mod:`server.api.permissions`), and the dataset, image, split, job or model a path names (404
when it does not exist)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from server.api.permissions import refusal
from server.api.schemas.common import MAX_ID
from server.core.db import session_factory
from server.core.models import ApiToken, Dataset, Image, Job, Model, Split
from server.core.security import find_token, mark_used
from server.core.settings import Settings
from server.core.storage import BlobStore, local_store

T = TypeVar("T")


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    session = session_factory(settings)()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def get_store(settings: SettingsDep) -> BlobStore:
    return local_store(settings)


StoreDep = Annotated[BlobStore, Depends(get_store)]

_bearer = HTTPBearer(auto_error=False, description="API token: `Authorization: Bearer <token>`")


def current_token(session: SessionDep, settings: SettingsDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> ApiToken:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing API token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    token = find_token(session, settings, credentials.credentials)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API token", headers={"WWW-Authenticate": "Bearer"})
    if token.revoked_at is not None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "API token revoked", headers={"WWW-Authenticate": "Bearer"})
    mark_used(session, token)
    return token


CurrentUser = Annotated[ApiToken, Depends(current_token)]


def authorized_token(request: Request, token: CurrentUser) -> ApiToken:
    """The caller's token, when its role may call this route (403 otherwise): the dependency
    of every router under /api/v1."""
    path, root = request.scope["path"], request.scope.get("root_path", "")
    reason = refusal(token.role, request.method, path[len(root):] if root and path.startswith(root) else path)
    if reason is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, reason)
    return token


# ---- the resources a path names: 404 when they do not exist ----

DatasetId = Annotated[int, Path(ge=1, le=MAX_ID, description="dataset id", examples=[1])]
ImageId = Annotated[int, Path(ge=1, le=MAX_ID, description="image id", examples=[1])]
SplitId = Annotated[int, Path(ge=1, le=MAX_ID, description="split id", examples=[1])]
JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="job id", examples=[1])]
ModelId = Annotated[int, Path(ge=1, le=MAX_ID, description="model id", examples=[1])]


def _found(row: T | None, what: str, row_id: int) -> T:
    if row is None:
        raise HTTPException(404, f"{what} {row_id} not found")
    return row


def get_dataset(dataset_id: DatasetId, session: SessionDep) -> Dataset:
    return _found(session.get(Dataset, dataset_id), "dataset", dataset_id)


def get_image(dataset_id: DatasetId, image_id: ImageId, session: SessionDep) -> Image:
    image = session.get(Image, image_id)
    if image is None or image.dataset_id != dataset_id:
        raise HTTPException(404, f"image {image_id} not found in dataset {dataset_id}")
    return image


def get_split(split_id: SplitId, session: SessionDep) -> Split:
    return _found(session.get(Split, split_id), "split", split_id)


def get_job(job_id: JobId, session: SessionDep) -> Job:
    return _found(session.get(Job, job_id), "job", job_id)


def get_model(model_id: ModelId, session: SessionDep) -> Model:
    return _found(session.get(Model, model_id), "model", model_id)


DatasetDep = Annotated[Dataset, Depends(get_dataset)]
ImageDep = Annotated[Image, Depends(get_image)]
SplitDep = Annotated[Split, Depends(get_split)]
JobDep = Annotated[Job, Depends(get_job)]
ModelDep = Annotated[Model, Depends(get_model)]
