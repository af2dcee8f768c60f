"""Uploaded files with a size limit, read where they lie.

Starlette keeps each uploaded file in a ``SpooledTemporaryFile`` (in memory up to 1 MiB, on
disk beyond): a zip or a checkpoint is read from there, never copied whole into memory."""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from typing import Any, BinaryIO

from fastapi import Request, Response, UploadFile
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from kmine.text import shown
from server.core.errors import BadInput


def upload_file(upload: UploadFile, limit: int) -> BinaryIO:
    """The upload's spooled file, at its start, once its size is known to be within ``limit``."""
    f = upload.file
    size = f.seek(0, os.SEEK_END)
    if size > limit:
        raise BadInput(f"{shown(upload.filename or 'the upload')}: larger than the {limit}-byte upload limit", 413)
    f.seek(0)
    return f


def read_upload(upload: UploadFile, limit: int) -> bytes:
    """A small upload (an image, a mask) as bytes, after its size is checked."""
    return upload_file(upload, limit).read()


_TOO_MANY_FILES = "Too many files"  # how Starlette's multipart parser words its refusal


class UploadRoute(APIRoute):
    """A route whose multipart form is parsed with the product's limit on files
    (``KMINE_MAX_FILES``) rather than Starlette's default of 1000; FastAPI's own parsing then
    finds the form already read. The OpenAPI schema is the plain route's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_then_handle(request: Request) -> Response:
            if request.headers.get("content-type", "").startswith("multipart/form-data"):
                await _read_form(request, request.app.state.settings.max_files)
            return await handler(request)

        return parse_then_handle


async def _read_form(request: Request, max_files: int) -> None:
    try:
        await request.form(max_files=max_files)
    except StarletteHTTPException as err:
        if err.status_code == 400 and str(err.detail).startswith(_TOO_MANY_FILES):
            raise BadInput(f"more than {max_files} files in one upload; at most {max_files} are accepted", 413) from None
        raise
    except Exception as err:  # the multipart parser's own errors (a malformed part header, …): the client's body
        raise BadInput(f"invalid request: the multipart body cannot be read ({shown(err, 200)})") from None
