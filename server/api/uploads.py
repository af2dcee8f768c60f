"""Reading uploaded files with a size limit."""

from __future__ import annotations

from fastapi import UploadFile

from server.core.errors import BadInput


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await upload.read(1 << 20):
        size += len(chunk)
        if size > limit:
            raise BadInput(f"{upload.filename}: larger than the {limit}-byte upload limit", 413)
        chunks.append(chunk)
    return b"".join(chunks)
