"""What sending a blob answers."""

from __future__ import annotations

from pydantic import BaseModel


class BlobOut(BaseModel):
    sha256: str
    size: int
    created: bool  # False: the store had it already
