"""The API's blobs as workers on other machines see them: what may be read by hash (a blob, or
an uploaded model's file)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.models import Model
from server.core.storage import BlobStore


def blob_file(session: Session, store: BlobStore, digest: str) -> Path | None:
    """The file holding ``digest``: the store's blob, or an uploaded model's checkpoint (kept
    under ``models/``, named by the same hash); None when there is none."""
    path = store.path(digest)
    if path.is_file():
        return path
    for checkpoint in session.scalars(select(Model.checkpoint_path).where(Model.sha256 == digest)):
        if checkpoint and Path(checkpoint).is_file():
            return Path(checkpoint)
    return None
