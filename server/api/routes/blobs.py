"""Blobs by sha256, for workers on machines without the API's disk: fetch a job's inputs,
send its results (checkpoints, pseudo-label masks, the final model). Admin and worker tokens
only (:mod:`server.api.permissions`)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import FileResponse, Response

from server.api.deps import SessionDep, SettingsDep, StoreDep
from server.api.schemas.blobs import BlobOut
from server.api.schemas.common import binary, errors
from server.core.errors import BadInput
from server.core.references import forget_blob
from server.core.storage import BlobMismatch, BlobTooLarge, BlobWriter
from server.services import blobs as svc

router = APIRouter(prefix="/blobs", tags=["blobs"])

Digest = Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="the blob's sha256, lower-case hex")]


@router.get("/{digest}", response_class=FileResponse, summary="A blob's bytes",
            responses={**binary("application/octet-stream", "The blob"), **errors(404)})
def fetch(digest: Digest, session: SessionDep, store: StoreDep):
    return FileResponse(_file(session, store, digest), media_type="application/octet-stream")


@router.head("/{digest}", status_code=200, response_class=Response,
             summary="Whether the API has a blob (200) or not (404); no body",
             responses={200: {"description": "The API has it"}, **errors(404)})
def look_up(digest: Digest, session: SessionDep, store: StoreDep):
    _file(session, store, digest)
    return Response(status_code=200)


def _file(session, store, digest: str):
    path = svc.blob_file(session, store, digest)
    if path is None:
        raise HTTPException(404, "no blob with this sha256")
    return path


@router.put("/{digest}", status_code=201, response_model=BlobOut, responses=errors(413, 422),
            summary="Send a blob (the body: its bytes); 200 when it was already stored",
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def send(digest: Digest, request: Request, settings: SettingsDep, store: StoreDep, response: Response):
    writer = await anyio.to_thread.run_sync(BlobWriter, store, digest, settings.max_checkpoint_bytes)
    try:  # the body a piece at a time, each written off the event loop
        async for chunk in request.stream():
            if chunk:
                await anyio.to_thread.run_sync(writer.write, chunk)
        _, created = await anyio.to_thread.run_sync(writer.finish)
    except BlobTooLarge as err:
        writer.abandon()
        raise BadInput(str(err), 413) from None
    except BlobMismatch:
        raise BadInput("the bytes sent do not match the sha256 in the address") from None
    except BaseException:
        writer.abandon()
        raise
    if not created:
        response.status_code = 200
    return BlobOut(sha256=digest, size=writer.size, created=created)


@router.delete("/{digest}", status_code=204, responses=errors(409),
               summary="Delete a blob nothing refers to (a superseded checkpoint)")
def delete(digest: Digest, session: SessionDep, store: StoreDep):
    if not forget_blob(session, store, digest):
        raise BadInput("an image, mask, model or job still refers to this blob", 409)
    return Response(status_code=204)
